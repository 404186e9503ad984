"""Thin wrapper: the experiment lives in sdesim.app.experiments.sgd_vs_sde (see its docstring)."""
from sdesim.app.experiments.sgd_vs_sde import main

if __name__ == "__main__":
    main()

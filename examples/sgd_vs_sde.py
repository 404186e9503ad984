"""Thin wrapper: the experiment lives in sdesim.experiments.sgd_vs_sde (see its docstring)."""
from sdesim.experiments.sgd_vs_sde import main

if __name__ == "__main__":
    main()

"""Thin wrapper: the experiment lives in sdesim.app.experiments.fast_equilibrium (see its docstring)."""
from sdesim.app.experiments.fast_equilibrium import main

if __name__ == "__main__":
    main()

"""Thin wrapper: the experiment lives in sdesim.app.experiments.norm_equilibration (see its docstring)."""
from sdesim.app.experiments.norm_equilibration import main

if __name__ == "__main__":
    main()

"""Thin wrapper: the experiment lives in sdesim.app.experiments.intrinsic_lr (see its docstring)."""
from sdesim.app.experiments.intrinsic_lr import main

if __name__ == "__main__":
    main()

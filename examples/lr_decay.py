"""Thin wrapper: the experiment lives in sdesim.app.experiments.lr_decay (see its docstring)."""
from sdesim.app.experiments.lr_decay import main

if __name__ == "__main__":
    main()

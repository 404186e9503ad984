"""The paper's checks (Li, Lyu & Arora 2020), each a module with ``run(quick, out, seed) -> summary``
(writing JSON + PNG under ``out``) and ``main(argv)`` (its command line; ``examples/<name>.py``
calls it). ``sdesim reproduce`` runs them all and writes the report (:mod:`sdesim.app.report`).
"""

NAMES = ("norm_equilibration", "intrinsic_lr", "lr_decay", "sgd_vs_sde", "fast_equilibrium", "last_decay")

__all__ = list(NAMES)

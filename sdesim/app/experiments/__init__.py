"""The paper's checks (Li, Lyu & Arora 2020), one module each: ``run(quick, out, seed) -> summary``
(writing JSON + PNG under ``out``), ``checks(summary) -> rows``, its declaration ``EXPERIMENT``
(:class:`~.experiment.Experiment`: claim, seeds, an example summary) and ``main(argv)`` (its
command line; ``examples/<name>.py`` calls it). ``sdesim reproduce`` runs them all and writes the
report (:mod:`sdesim.app.report`). A new experiment is one module plus one line below.
"""

from . import fast_equilibrium, intrinsic_lr, last_decay, lr_decay, norm_equilibration, sgd_vs_sde
from .experiment import Experiment

#: the paper's checks, in report order
EXPERIMENTS = {m.EXPERIMENT.name: m.EXPERIMENT for m in (
    norm_equilibration,
    intrinsic_lr,
    lr_decay,
    sgd_vs_sde,
    fast_equilibrium,
    last_decay,
)}
NAMES = tuple(EXPERIMENTS)

__all__ = ["EXPERIMENTS", "NAMES", "Experiment"]

"""sdesim: fast, reproducible simulation of stochastic differential equations.

Public API: :class:`SDE`, :func:`solve`, :class:`Solution`, :class:`NonFiniteError`,
:class:`BrownianPath`, :func:`brownian_path`, :func:`per_path` (per-path entries of an SDE's args), the
scheme registry :data:`SOLVERS`, and the order-fitting helpers in :mod:`sdesim.analysis`.
"""

from .analysis import fit_order, strong_error, weak_error
from .sde import NOISE_TYPES, SDE
from .solution import NonFiniteError, Solution
from .driver import solve
from .brownian import BrownianPath
from .paths import brownian_path
from .solvers import SOLVERS
from .path_args import per_path

__version__ = "0.1.0"

__all__ = ["SDE", "NOISE_TYPES", "solve", "Solution", "NonFiniteError", "BrownianPath", "brownian_path",
           "SOLVERS", "per_path", "fit_order", "strong_error", "weak_error", "__version__"]

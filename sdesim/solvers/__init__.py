"""Integration schemes, one file each; every scheme declares its orders and accepted noise."""

from .base import Solver
from .euler import Euler
from .euler_heun import EulerHeun
from .milstein import Milstein
from .sra1 import SRA1
from .srk import SRK

#: The schemes ``solve(method=...)`` knows, by name.
SOLVERS = {"euler": Euler(), "milstein": Milstein(), "euler_heun": EulerHeun(), "srk": SRK(), "sra1": SRA1()}

__all__ = ["Solver", "Euler", "EulerHeun", "Milstein", "SRA1", "SRK", "SOLVERS", "get_solver", "check_method", "schemes_for"]


def get_solver(method):
    """The scheme called ``method``; a clear error for an unknown name."""
    try:
        return SOLVERS[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(SOLVERS)}") from None


def schemes_for(calculus):
    """Names of the schemes that integrate SDEs of ``calculus`` ("ito" or "stratonovich")."""
    return tuple(n for n, s in SOLVERS.items() if calculus in s.calculus)


def check_method(method, noise, calculus="ito"):
    """The scheme called ``method``, checked to accept ``noise`` and to integrate SDEs of
    ``calculus``; the error names the schemes that do."""
    solver = get_solver(method)
    try:
        solver.check_noise(noise)
        solver.check_calculus(calculus)
    except ValueError as exc:
        others = [n for n, s in SOLVERS.items() if s.accepts(noise) and calculus in s.calculus]
        hint = "" if calculus in solver.calculus else (
            "; or convert the SDE with sde.to_ito() / sde.to_stratonovich() (needs diffusion_derivative)")
        raise ValueError(f"{exc}; methods that do: {others}{hint}") from None
    return solver

"""Integration schemes, one file each; every scheme declares its orders and accepted noise."""

from .base import Solver
from .euler import Euler
from .milstein import Milstein

#: The schemes ``solve(method=...)`` knows, by name.
SOLVERS = {"euler": Euler(), "milstein": Milstein()}

__all__ = ["Solver", "Euler", "Milstein", "SOLVERS", "get_solver", "check_method"]


def get_solver(method):
    """The scheme called ``method``; a clear error for an unknown name."""
    try:
        return SOLVERS[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(SOLVERS)}") from None


def check_method(method, noise):
    """The scheme called ``method``, checked to accept ``noise``; the error names the schemes that do."""
    solver = get_solver(method)
    try:
        solver.check_noise(noise)
    except ValueError as exc:
        others = [n for n, s in SOLVERS.items() if s.accepts(noise)]
        raise ValueError(f"{exc}; methods that do: {others}") from None
    return solver

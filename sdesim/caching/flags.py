"""Explicit fast-math flags for compiled functions that the kernel calls without inlining them."""

import numba as nb

__all__ = ["explicit_flags"]

#: Dispatchers given to an SDE without explicit fast-math flags -> the same with ``fastmath=False``.
_FLAGGED = {}


def explicit_flags(func):
    """``func`` (a Numba dispatcher) with its fast-math flags set explicitly.

    Numba compiles a called dispatcher whose ``fastmath`` is not set with the flags of its first
    caller. sdesim's kernel allows reassociation, so such a function would be compiled one way
    when the kernel compiles first and another when it was called from Python first (or when the
    kernel is loaded from the disk cache): the same seed could give results a few ulp apart.
    A dispatcher that is inlined (``inline="always"``: it takes the kernel's flags) or sets
    ``fastmath`` is returned as it is; any other is compiled again with ``fastmath=False``
    (what ``@njit`` means when called from Python).
    """
    opts = func.targetoptions
    if "fastmath" in opts or opts.get("inline") == "always":
        return func
    if func not in _FLAGGED:
        kept = {k: v for k, v in opts.items() if k not in ("nopython", "fastmath")}
        _FLAGGED[func] = nb.njit(fastmath=False, **kept)(func.py_func)
    return _FLAGGED[func]

"""Explicit fast-math flags and error model for compiled functions the kernel calls without inlining."""

import numba as nb

__all__ = ["explicit_flags"]

#: Dispatchers given to an SDE without explicit flags -> the same with the flags set (see below).
_FLAGGED = {}


def explicit_flags(func):
    """``func`` (a Numba dispatcher) with its fast-math flags and error model set explicitly.

    Numba compiles a called dispatcher whose ``fastmath`` (or ``error_model``) is not set with the
    flags of its first caller. sdesim's kernel allows reassociation, so such a function would be
    compiled one way when the kernel compiles first and another when it was called from Python
    first (or when the kernel is loaded from the disk cache): the same seed could give results a
    few ulp apart, and a division by zero could give inf in one process and raise in another. A
    dispatcher that is inlined (``inline="always"``: it takes the kernel's flags) or sets both is
    returned as it is; any other is compiled again with what it leaves unset taken as
    ``fastmath=False`` (what ``@njit`` means) and ``error_model="numpy"`` (the kernel's: ``1/0 = inf``).
    """
    opts = func.targetoptions
    if opts.get("inline") == "always" or ("fastmath" in opts and "error_model" in opts):
        return func
    if func not in _FLAGGED:
        kept = {k: v for k, v in opts.items() if k != "nopython"}
        kept.setdefault("fastmath", False)
        kept.setdefault("error_model", "numpy")
        # kept too: type declarations, the compiler pipeline and signatures fixed at decoration.
        # Not kept: cache=True (Numba's cache key ignores the flags, so the copy would share, and
        # overwrite, the entries of the original); sdesim's kernel cache holds the kernel anyway.
        sigs = () if func._can_compile else (list(func.signatures),)
        _FLAGGED[func] = nb.njit(*sigs, locals=dict(func.locals), pipeline_class=func._compiler.pipeline_class,
                                 **kept)(func.py_func)
    return _FLAGGED[func]

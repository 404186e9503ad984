"""Compiled helper: the array of a model's parameters in the precision of the state.

Models keep float64 arrays (and, where a float32 solve reads them in its inner loops, float32
copies) in their ``params``; a kernel picks the one matching the state it is handed, at compile
time, so a float32 solve runs its products in float32 (twice the SIMD lanes) and a float64 solve
is unchanged.
"""

import numba as nb
import numpy as np

__all__ = ["in_precision_of"]


def in_precision_of(like, a64, a32):
    """``a32`` when the array ``like`` is float32, else ``a64`` (in compiled code chosen at compile
    time by the overload below; this body serves interpreted runs, e.g. the CUDA simulator)."""
    return a32 if like.dtype == np.float32 else a64


@nb.extending.overload(in_precision_of)
def _in_precision_of(like, a64, a32):
    if like.dtype == nb.types.float32:
        return lambda like, a64, a32: a32
    return lambda like, a64, a32: a64

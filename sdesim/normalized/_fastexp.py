"""``exp`` over an array of non-positive numbers, in a form the compiler vectorises.

Numba calls the C library's ``exp`` once per element (about 7 ns here); the softmax of the
digits classifier takes 13,480 of them per path and step. This version splits
``x = k ln 2 + r`` with ``|r| <= ln(2)/2`` (``ln 2`` in two parts, Cody-Waite), evaluates
``e^r`` by its Taylor polynomial of degree 13 (truncation ``r^14/14! < 5e-18``) and puts ``k``
into the exponent bits. Every step is plain arithmetic on contiguous arrays, so the loops run
on SIMD lanes. Accuracy: a few units in the last place over ``[-700, 0]`` (tested against
``numpy.exp``); inputs below ``-700`` (``e^-700 < 1e-304``) give ``e^-700``; NaN gives NaN.

:func:`exp_nonpositive32` is the same in float32 (for float32 states): degree 7
(``r^8/8! < 5e-9``), ``ln 2`` split for ``|k| < 2**8``, floor ``-87`` (``e^-87`` is still a normal
float32); a few float32 ulps. :func:`exp_nonpositive_any` picks one of the two by the arrays' dtype
(at compile time in compiled code).
"""

import numba as nb
import numpy as np

from ..brownian.rng import bits_as_float, float_as_bits
from ..brownian.rng32 import bits_as_float32, float32_as_bits

__all__ = ["exp_nonpositive", "exp_nonpositive_scalar", "exp_nonpositive32", "exp_nonpositive_any"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact for |k| < 2**11
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: the low bits of v + _ROUND hold round(v)
_ROUND_BITS = np.uint64(0x4338000000000000)  # the bits of _ROUND
_EXP_SHIFT = np.uint64(52)
_LOWEST = -700.0
#: 1/j! for j = 12 .. 0: Horner's order after the leading 1/13!
_HORNER = tuple(1.0 / float(np.prod(np.arange(1, j + 1, dtype=np.float64))) for j in range(12, -1, -1))
_LEAD = 1.0 / float(np.prod(np.arange(1, 14, dtype=np.float64)))


@nb.njit(inline="always", fastmath={"contract"}, cache=True)
def exp_nonpositive_scalar(x):
    """``exp(x)`` of one float64 ``x <= 0`` (below ``-700``: ``e^-700``; NaN stays NaN); the body of
    :func:`exp_nonpositive`, for loops of other functions that should run on SIMD lanes."""
    v = _LOWEST if x < _LOWEST else x  # NaN stays NaN
    kr = v * _LOG2E + _ROUND
    if kr != kr:
        kr = _ROUND  # NaN: k = 0, so that the exponent update below leaves p's NaN alone
    k = kr - _ROUND                        # round(v / ln 2), as a float
    r = (v - k * _LN2_HI) - k * _LN2_LO    # |r| <= ln(2)/2
    p = _LEAD
    for c in _HORNER:
        p = p * r + c
    # multiply by 2**k: add k (the low bits of kr) to the exponent field
    return bits_as_float(float_as_bits(p) + ((float_as_bits(kr) - _ROUND_BITS) << _EXP_SHIFT))


@nb.njit(fastmath={"contract"}, cache=True)
def exp_nonpositive(x, out):
    """``out[i] = exp(x[i])`` for 1-d contiguous float64 arrays with ``x[i] <= 0``. ``out`` may be ``x``,
    but then the compiler's overlap check runs the scalar loop (about 3x slower): pass another array."""
    for i in range(x.size):
        out[i] = exp_nonpositive_scalar(x[i])

_F = np.float32
_LOG2E32 = _F(1.4426950408889634)
_LN2_HI32 = _F(0.693145751953125)  # 16 significant bits: k * _LN2_HI32 is exact for |k| < 2**8
_LN2_LO32 = _F(0.6931471805599453 - 0.693145751953125)
_ROUND32 = _F(12582912.0)  # 1.5 * 2**23
_ROUND_BITS32 = np.uint32(0x4B400000)
_EXP_SHIFT32 = np.uint32(23)
_LOWEST32 = _F(-87.0)
_HORNER32 = tuple(_F(1.0 / float(np.prod(np.arange(1, j + 1, dtype=np.float64)))) for j in range(6, -1, -1))
_LEAD32 = _F(1.0 / 5040.0)


@nb.njit(fastmath={"contract"}, cache=True)
def exp_nonpositive32(x, out):
    """:func:`exp_nonpositive` for 1-d contiguous float32 arrays (``x[i] <= 0``; below ``-87``:
    ``e^-87``). Pass an ``out`` that is not ``x``."""
    for i in range(x.size):
        v = _LOWEST32 if x[i] < _LOWEST32 else x[i]
        kr = v * _LOG2E32 + _ROUND32
        if kr != kr:
            kr = _ROUND32
        k = kr - _ROUND32
        r = (v - k * _LN2_HI32) - k * _LN2_LO32
        p = _LEAD32
        for c in _HORNER32:
            p = p * r + c
        out[i] = bits_as_float32(np.uint32(float32_as_bits(p) + ((float32_as_bits(kr) - _ROUND_BITS32) << _EXP_SHIFT32)))

def exp_nonpositive_any(x, out):
    """:func:`exp_nonpositive32` for float32 arrays, else :func:`exp_nonpositive`."""
    (exp_nonpositive32 if x.dtype == np.float32 else exp_nonpositive)(x, out)


@nb.extending.overload(exp_nonpositive_any)
def _exp_nonpositive_any(x, out):
    if x.dtype == nb.types.float32:
        return lambda x, out: exp_nonpositive32(x, out)
    return lambda x, out: exp_nonpositive(x, out)

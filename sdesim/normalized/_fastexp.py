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

def _make_exp_scalar(real, word, as_bits, from_bits, ln2_hi, ln2_lo, mantissa_bits, degree, lowest):
    """The scalar ``exp`` of one number ``x <= 0`` in precision ``real`` (``word``: the unsigned
    integer of its width; ``as_bits``/``from_bits``: the compiled casts between them). ``x = k ln 2 +
    r`` with ``|r| <= ln(2)/2`` (``ln 2 = ln2_hi + ln2_lo``, ``k * ln2_hi`` exact), ``e^r`` by its Taylor
    polynomial of ``degree``, ``k`` added to the exponent field; below ``lowest``: ``e^lowest``; NaN
    stays NaN."""
    log2e, hi, lo = real(1.4426950408889634), real(ln2_hi), real(ln2_lo)
    rnd = real(1.5 * 2.0**mantissa_bits)  # the low bits of v + rnd hold round(v)
    rnd_bits, shift = np.array(rnd).view(word)[()], word(mantissa_bits)
    low = real(lowest)
    inverse_factorials = [real(1.0 / float(np.prod(np.arange(1, j + 1, dtype=np.float64))))
                          for j in range(degree, -1, -1)]
    lead, horner = inverse_factorials[0], tuple(inverse_factorials[1:])  # Horner's order after 1/degree!

    @nb.njit(inline="always", fastmath={"contract"})
    def exp_scalar(x):
        v = low if x < low else x  # NaN stays NaN
        kr = v * log2e + rnd
        if kr != kr:
            kr = rnd  # NaN: k = 0, so that the exponent update below leaves p's NaN alone
        k = kr - rnd                    # round(v / ln 2), as a float
        r = (v - k * hi) - k * lo       # |r| <= ln(2)/2
        p = lead
        for c in horner:
            p = p * r + c
        # multiply by 2**k: add k (the low bits of kr) to the exponent field (wrapped to the word:
        # Numba widens 32-bit integer arithmetic)
        return from_bits(word(as_bits(p) + ((as_bits(kr) - rnd_bits) << shift)))

    return exp_scalar


#: float64 ``exp(x)``, ``x <= 0``: degree 13 (``r^14/14! < 5e-18``), ``ln 2`` split for
#: ``|k| < 2**11``, floor -700; the body of :func:`exp_nonpositive`, for loops of other functions
#: that should run on SIMD lanes.
exp_nonpositive_scalar = _make_exp_scalar(np.float64, np.uint64, float_as_bits, bits_as_float,
                                          6.93147180369123816490e-01, 1.90821492927058770002e-10, 52, 13, -700.0)
#: float32: degree 7 (``r^8/8! < 5e-9``), ``ln 2`` in 16 bits (``|k| < 2**8``), floor -87
_exp_nonpositive_scalar32 = _make_exp_scalar(np.float32, np.uint32, float32_as_bits, bits_as_float32,
                                             0.693145751953125, 0.6931471805599453 - 0.693145751953125, 23, 7, -87.0)


@nb.njit(fastmath={"contract"}, cache=True)
def exp_nonpositive(x, out):
    """``out[i] = exp(x[i])`` for 1-d contiguous float64 arrays with ``x[i] <= 0``. ``out`` may be ``x``,
    but then the compiler's overlap check runs the scalar loop (about 3x slower): pass another array."""
    for i in range(x.size):
        out[i] = exp_nonpositive_scalar(x[i])


@nb.njit(fastmath={"contract"}, cache=True)
def exp_nonpositive32(x, out):
    """:func:`exp_nonpositive` for 1-d contiguous float32 arrays (``x[i] <= 0``; below ``-87``:
    ``e^-87``). Pass an ``out`` that is not ``x``."""
    for i in range(x.size):
        out[i] = _exp_nonpositive_scalar32(x[i])


def exp_nonpositive_any(x, out):
    """:func:`exp_nonpositive32` for float32 arrays, else :func:`exp_nonpositive`."""
    (exp_nonpositive32 if x.dtype == np.float32 else exp_nonpositive)(x, out)


@nb.extending.overload(exp_nonpositive_any)
def _exp_nonpositive_any(x, out):
    if x.dtype == nb.types.float32:
        return lambda x, out: exp_nonpositive32(x, out)
    return lambda x, out: exp_nonpositive(x, out)

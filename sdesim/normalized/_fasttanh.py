"""``tanh`` over a float64 array in a form the compiler vectorises (the MLP's hidden units).

Numba calls the C library's ``tanh`` once per element (about 15 ns here); the weight-normalized
MLP takes ``n x hidden`` of them per path and step, half of its step. Here, per element and
without branches (both forms are computed and one is selected, so the loop runs on SIMD lanes):

* ``|x| < 0.4``: the odd Taylor series ``tanh x = sum_k 2^(2k) (2^(2k) - 1) B_2k x^(2k-1) / (2k)!``
  to ``x^29`` (the next term is below ``1e-17 |x|`` there);
* ``|x| >= 0.4``: ``(1 - e) / (1 + e)`` with ``e = exp(-2 |x|)`` from :mod:`._fastexp` (``e <= 0.45``,
  so ``1 - e`` cancels little);

and the sign of ``x`` is copied onto the result (``tanh(-0.0) = -0.0``). Accuracy: a few units
in the last place over the whole line (tested against ``numpy.tanh``); NaN gives NaN.
"""

from fractions import Fraction
from math import comb

import numba as nb
import numpy as np

from ._fastexp import exp_nonpositive_scalar

__all__ = ["tanh_array", "tanh_of"]

_SMALL = 0.4


def _bernoulli(n_max):
    """Bernoulli numbers ``B_0 .. B_n_max`` (``B_1 = -1/2``), exact."""
    B = [Fraction(1)]
    for n in range(1, n_max + 1):
        B.append(-sum(comb(n + 1, k) * B[k] for k in range(n)) / (n + 1))
    return B


def _tanh_series(n_terms):
    """Coefficients ``c_1 .. c_n`` of ``tanh x = sum_k c_k x^(2k - 1)``, as floats."""
    B = _bernoulli(2 * n_terms)
    out = []
    for k in range(1, n_terms + 1):
        num = Fraction(2 ** (2 * k) * (2 ** (2 * k) - 1)) * B[2 * k]
        den = 1
        for j in range(2, 2 * k + 1):
            den *= j
        out.append(float(num / den))
    return out


_SERIES = _tanh_series(15)  # x^1 .. x^29
#: Horner's order in x^2 after the leading coefficient (of x^29), down to that of x^3
_HORNER = tuple(_SERIES[-2:0:-1])
_LEAD = _SERIES[-1]


@nb.njit(inline="always", fastmath={"contract"}, error_model="numpy", cache=True)
def _tanh_scalar(x):
    a = abs(x)
    a2 = a * a
    p = _LEAD
    for c in _HORNER:
        p = p * a2 + c
    small = a + a * (a2 * p)
    e = exp_nonpositive_scalar(-2.0 * a)
    large = (1.0 - e) / (1.0 + e)
    t = small if a < _SMALL else large
    return np.copysign(t, x)


@nb.njit(fastmath={"contract"}, error_model="numpy", cache=True)  # (numpy: no division check, SIMD lanes)
def tanh_array(x, out):
    """``out[i] = tanh(x[i])`` for 1-d contiguous float64 arrays (``out`` not ``x``: an aliased
    output keeps the loop off SIMD lanes)."""
    for i in range(x.size):
        out[i] = _tanh_scalar(x[i])


@nb.njit(cache=True)
def tanh_of(x):
    """``tanh`` of a C-contiguous float64 array of any shape, as a new array (like ``np.tanh``)."""
    out = np.empty_like(x)
    tanh_array(x.reshape(x.size), out.reshape(out.size))
    return out

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

from .precision import in_precision_of
from ._fastexp import _exp_nonpositive_scalar32 as exp_nonpositive_scalar32, exp_nonpositive_scalar

__all__ = ["tanh_array", "tanh_array32", "tanh_of"]

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


def _make_tanh_scalar(real, n_terms, exp_scalar):
    """The scalar ``tanh`` in precision ``real``: the series to ``x^(2 n_terms - 1)`` below
    :data:`_SMALL`, ``(1 - e)/(1 + e)`` with ``e = exp_scalar(-2|x|)`` above, branch-free."""
    series = [real(c) for c in _tanh_series(n_terms)]
    lead, horner = series[-1], tuple(series[-2:0:-1])  # Horner's order in x^2 after the leading term
    small_limit, one, minus_two = real(_SMALL), real(1.0), real(-2.0)

    @nb.njit(inline="always", fastmath={"contract"}, error_model="numpy")
    def tanh_scalar(x):
        a = abs(x)
        a2 = a * a
        p = lead
        for c in horner:
            p = p * a2 + c
        small = a + a * (a2 * p)
        e = exp_scalar(minus_two * a)
        large = (one - e) / (one + e)
        t = small if a < small_limit else large
        return np.copysign(t, x)

    return tanh_scalar


#: float64: the series to ``x^29`` (the next term is below ``1e-17 |x|`` at ``|x| = 0.4``)
_tanh_scalar = _make_tanh_scalar(np.float64, 15, exp_nonpositive_scalar)
#: float32: to ``x^13`` (the next term is below ``1e-8 |x|`` at ``|x| = 0.4``), float32's exp
_tanh_scalar32 = _make_tanh_scalar(np.float32, 7, exp_nonpositive_scalar32)


@nb.njit(fastmath={"contract"}, error_model="numpy", cache=True)  # (numpy: no division check, SIMD lanes)
def tanh_array(x, out):
    """``out[i] = tanh(x[i])`` for 1-d contiguous float64 arrays (``out`` not ``x``: an aliased
    output keeps the loop off SIMD lanes)."""
    for i in range(x.size):
        out[i] = _tanh_scalar(x[i])


@nb.njit(fastmath={"contract"}, error_model="numpy", cache=True)
def tanh_array32(x, out):
    """:func:`tanh_array` for float32 arrays, in float32 (within a few float32 ulps)."""
    for i in range(x.size):
        out[i] = _tanh_scalar32(x[i])


@nb.njit(cache=True)
def tanh_of(x):
    """``tanh`` of a C-contiguous float64 or float32 array of any shape, as a new array of its
    precision (like ``np.tanh``)."""
    out = np.empty_like(x)
    in_precision_of(x, tanh_array, tanh_array32)(x.reshape(x.size), out.reshape(out.size))
    return out

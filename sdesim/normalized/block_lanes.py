"""Loops of the data models' block forms (:func:`.minibatch.make_data_kernels`) that run on SIMD
lanes: the softmax residual of a block of paths, in two layouts.

* :func:`residual_row` (the classifier): the logits of sample ``i`` for a block of ``P`` paths
  class-major, ``Z[i, k P + q]`` is class ``k`` of path ``q``; every loop runs over the paths,
  which are contiguous, so it runs on SIMD lanes (``K = 10`` classes alone would not fill them).
* :func:`residual_columns` (the MLP): a pass over ``rows`` samples class by class,
  ``Z[k, q rows + i]``; every loop runs over the ``P rows`` columns.

Both are inlined, so that no array is reference-counted per sample or pass (pass borrowed views).
"""

import numba as nb
import numpy as np

from ._fastexp import exp_nonpositive_any
from .precision import in_precision_of

__all__ = ["residual_row", "residual_columns", "LOGIT_BOUND_MAX"]

#: The largest logit bound (``scale |z|``) by which a row is shifted instead of by each path's
#: largest logit, per precision (float64, float32): the largest term is then at least
#: ``e^(-2 bound)``, far above the floor of the exp (``e^-700``, ``e^-87``).
LOGIT_BOUND_MAX = (300.0, 30.0)


@nb.njit(inline="always")
def residual_row(Z, i, scale, bound, Y, y_row, C, c_row, shifted, ex, inv, zmax, out):
    """``out[i, k P + q] = (softmax_k(scale Z[i, . P + q]) - Y[y_row, k]) C[c_row, q]`` for every
    path ``q`` and class ``k`` (``P = C.shape[1]``, ``K = Y.shape[1]``; ``Y`` one-hot labels).

    ``bound``: a bound on ``scale |Z[i, j]|`` over the row, by which the logits are shifted below 0
    for the exp (no pass for the maxima), used when it is below ``LOGIT_BOUND_MAX`` of the
    precision of ``Z``; else each path's largest logit is. Scratch: ``shifted``, ``ex`` of ``K P``,
    ``inv``, ``zmax`` of ``P``, in the precision of ``Z``.
    """
    real = Z.dtype.type
    K, P = Y.shape[1], C.shape[1]
    uK, uP = np.uint64(K), np.uint64(P)  # (unsigned indices: no wraparound selects, which kept
    scale_r, one = real(scale), real(1.0)  # these loops off SIMD lanes)
    if bound < in_precision_of(Z, LOGIT_BOUND_MAX[0], LOGIT_BOUND_MAX[1]):
        bound_r = real(bound)
        for j in range(K * P):
            shifted[j] = Z[i, j] * scale_r - bound_r
    else:
        for q in range(P):
            zmax[q] = Z[i, q]
        for k in range(uK):
            for q in range(uP):
                zmax[q] = max(zmax[q], Z[i, k * uP + q])
        for k in range(uK):
            for q in range(uP):
                shifted[k * uP + q] = (Z[i, k * uP + q] - zmax[q]) * scale_r
    exp_nonpositive_any(shifted, ex)  # (not in place: an aliased output keeps the loop off SIMD lanes)
    for q in range(P):
        inv[q] = 0
    for k in range(uK):
        for q in range(uP):
            inv[q] += ex[k * uP + q]
    for q in range(P):
        inv[q] = one / inv[q]
    for k in range(uK):
        yk = real(Y[y_row, k])
        for q in range(uP):
            out[i, k * uP + q] = (ex[k * uP + q] * inv[q] - yk) * C[c_row, q]


@nb.njit(inline="always")
def residual_columns(Z, scale, bound, labels, CTT, lo, rows, shifted, ex, inv, out):
    """``out[k, q rows + i] = (softmax_k(scale Z[., q rows + i]) - [k = labels[lo + i]]) CTT[q, lo + i]``
    for every class ``k``, path ``q`` and sample ``i < rows``: the weighted softmax residual of a
    pass laid out class by class (``Z``, ``out``: ``(K, N)``, C-contiguous, ``N = P rows``;
    ``labels``: the samples' classes ``(n,)``; ``CTT``: the paths' weights ``(P, n)``), in the
    precision of ``Z`` (float32 with float32's exp).
    The loops run over the ``N`` columns, on SIMD lanes.

    ``bound`` on ``scale |Z|``: the shift below 0 for the exp when it is below ``LOGIT_BOUND_MAX``
    of the precision, else each column's largest logit is. Scratch: ``shifted``, ``ex`` of ``K N``,
    ``inv`` of ``N``, in that precision."""
    real = Z.dtype.type
    K, N = Z.shape
    uK, uN, urows = np.uint64(K), np.uint64(N), np.uint64(rows)
    Zf, outf = Z.reshape(Z.size), out.reshape(out.size)
    scale_r = real(scale)
    if bound < in_precision_of(Z, LOGIT_BOUND_MAX[0], LOGIT_BOUND_MAX[1]):
        bound_r = real(bound)
        for t in range(Zf.size):
            shifted[t] = Zf[t] * scale_r - bound_r
    else:
        for c in range(uN):
            inv[c] = Zf[c]  # (each column's largest logit, for now)
        for k in range(uK):
            for c in range(uN):
                inv[c] = max(inv[c], Zf[k * uN + c])
        for k in range(uK):
            for c in range(uN):
                shifted[k * uN + c] = (Zf[k * uN + c] - inv[c]) * scale_r
    exp_nonpositive_any(shifted[:Zf.size], ex)  # (not in place: an aliased output keeps the loop off SIMD lanes)
    for c in range(uN):
        inv[c] = 0
    for k in range(uK):
        for c in range(uN):
            inv[c] += ex[k * uN + c]
    for q in range(uN // urows):
        for i in range(urows):
            c = q * urows + i
            inv[c] = CTT[q, lo + i] / inv[c]
    for k in range(uK):
        for c in range(uN):
            outf[k * uN + c] = ex[k * uN + c] * inv[c]
    for q in range(uN // urows):  # minus the one-hot label, weighted (the other classes' terms are 0)
        for i in range(urows):
            outf[np.uint64(labels[lo + i]) * uN + q * urows + i] -= CTT[q, lo + i]

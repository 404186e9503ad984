"""Loops of the data models' block forms (:func:`.minibatch.make_data_kernels`) that run on SIMD
lanes: the softmax residual of a block of paths, one sample at a time, and small linear maps of
one sample's values for every path.

The block forms lay out the logits of sample ``i`` for a block of ``P`` paths class-major:
``Z[i, k P + q]`` is class ``k`` of path ``q``. Every loop of :func:`residual_row` then runs over
the paths, which are contiguous, so it runs on SIMD lanes (``K = 10`` classes alone would not fill
them); so do those of :func:`mix_lanes`. Both are inlined, so that no array is reference-counted
per sample (pass borrowed views).
"""

import numba as nb
import numpy as np

from ._fastexp import exp_nonpositive_any
from .precision import in_precision_of

__all__ = ["residual_row", "mix_lanes", "LOGIT_BOUND_MAX"]

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
def mix_lanes(src, i, coef, dst):
    """``dst[i, o P + q] = sum_t coef[t, o] src[i, t P + q]`` for every output ``o`` and path ``q``
    (``P = dst.shape[1] // coef.shape[1]``): a small matrix ``coef`` applied to one sample's values
    of every path, the paths on SIMD lanes."""
    n_in, n_out = np.uint64(coef.shape[0]), np.uint64(coef.shape[1])
    P = np.uint64(dst.shape[1]) // n_out
    for o in range(n_out):
        for q in range(P):
            dst[i, o * P + q] = 0.0
        for t in range(n_in):
            c = coef[t, o]
            for q in range(P):
                dst[i, o * P + q] += c * src[i, t * P + q]

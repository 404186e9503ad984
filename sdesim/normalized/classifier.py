"""A normalized linear softmax classifier: ``logits = scale * X W / |W|_F``, cross-entropy loss.

``W`` is a ``(p, K)`` matrix stored row-major as ``w`` of shape ``(d,) = (p K,)``: one
scale-invariant group. Minibatch noise is exact (see :mod:`.minibatch`).
"""

from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_bool, check_int, check_real
from ._fastexp import exp_nonpositive, exp_nonpositive_any
from .data import check_dataset
from .minibatch import DataModel, make_data_kernels, make_minibatch_kernel, noise_factor_scale, paired_weights
from .precision import in_precision_of

__all__ = ["NormalizedLinearClassifier", "ClassifierParams"]


class ClassifierParams(NamedTuple):
    """What the classifier's compiled kernels read (``NormalizedLinearClassifier.params``)."""

    offsets: np.ndarray  #: group offsets, int64 ``(2,)`` (one group)
    f: float             #: minibatch noise factor (see :func:`.minibatch.noise_factor_scale`)
    scale: float         #: inverse temperature of the logits
    X: np.ndarray        #: inputs ``(n, p)``, float64
    Y: np.ndarray        #: one-hot labels ``(n, K)``
    xx: np.ndarray       #: ``|x_i|^2``, ``(n,)``
    X32: np.ndarray      #: ``X`` in float32, for the single-precision GEMMs of float32 solves


@nb.njit(cache=True, fastmath=False)
def softmax_residual(Z, Y, per=1):
    """``softmax(Z) - Y`` row by row, shape ``(n, K)`` (``Y`` one-hot; row ``i`` of ``Z`` has the
    label ``Y[i // per]``: ``per`` consecutive rows per sample, e.g. one per path of a block)."""
    n, K = Z.shape
    R = np.empty((n, K))
    for i in range(n):
        zmax = Z[i, 0]
        for k in range(1, K):
            zmax = max(zmax, Z[i, k])
        for k in range(K):
            R[i, k] = Z[i, k] - zmax
    E = np.empty((n, K))
    # vectorised exp (the softmax was a quarter of a path-step); not in place: an aliased output
    # makes the compiler's overlap check send the loop to its scalar version (3x slower)
    exp_nonpositive(R.reshape(n * K), E.reshape(n * K))
    for i in range(n):
        total = 0.0
        for k in range(K):
            total += E[i, k]
        inv = 1.0 / total
        label = i // per
        for k in range(K):
            R[i, k] = E[i, k] * inv - Y[label, k]
    return R


@nb.njit(cache=True, fastmath=False)
def _logits(wn, params, X):
    scale, Y = params.scale, params.Y
    return np.dot(X, wn.reshape((X.shape[1], Y.shape[1]))) * scale


@nb.njit(cache=True, fastmath=False)
def _raw_weighted(wn, params, c):
    X, Y, scale = params.X, params.Y, params.scale
    R = softmax_residual(_logits(wn, params, X), Y)
    for i in range(R.shape[0]):
        for k in range(R.shape[1]):
            R[i, k] *= c[i]
    return (np.dot(X.T, R) * scale).ravel()


@nb.njit(cache=True, fastmath=False)
def _raw_weighted_pair(wn, params, c0, c1, like):
    """``(sum_i c0_i M_i, sum_i c1_i M_i)`` from one forward pass and one GEMM, both GEMMs in the
    precision of the state ``like`` (float32 or float64; softmax and weights in float64)."""
    X, Y, scale = in_precision_of(like, params.X, params.X32), params.Y, params.scale
    n, K = X.shape[0], Y.shape[1]
    R = softmax_residual(_logits(wn.astype(X.dtype), params, X), Y)
    A = np.dot(X.T, paired_weights(R, c0, c1, np.empty((n, 2 * K), X.dtype))) * scale  # (p, 2K)
    return np.ascontiguousarray(A[:, :K]).ravel(), np.ascontiguousarray(A[:, K:]).ravel()


@nb.njit(cache=True, fastmath=False)
def _raw_weighted_pair_block(WN, params, c0, C1, like):
    """:func:`_raw_weighted_pair` for a block of ``P`` paths (rows of ``WN``, ``(P, d)``, and of
    ``C1``, ``(P, n)``; ``c0`` shared): the logits of all paths from one GEMM ``X (p, P K)``, the
    weighted residuals of all paths side by side, ``(n, 2 K P)``, and one GEMM ``X^T`` by them.
    A path's results depend on its own column blocks only. -> ``(G, S)``, each ``(P, d)``."""
    X, Y, scale = in_precision_of(like, params.X, params.X32), params.Y, params.scale
    n, p = X.shape
    K, P = Y.shape[1], WN.shape[0]
    # columns k-major (column k P + q: class k of path q), so that the softmax runs over paths on SIMD lanes
    Wcat = np.empty((p, K * P), X.dtype)
    for q in range(P):
        for i in range(p):
            for k in range(K):
                Wcat[i, k * P + q] = WN[q, i * K + k]
    Z = np.dot(X, Wcat)  # (n, K P): the logits of every path (before the scale)
    C1T = np.ascontiguousarray(C1.T)
    # the softmax in the logits' precision (float32 for a float32 state: its own exp, twice the lanes)
    real = X.dtype.type
    R2 = np.empty((n, 2 * K * P), X.dtype)  # [R c0 | R c1] of every path, k-major
    zmax, shifted, ex, inv = np.empty(P, X.dtype), np.empty(K * P, X.dtype), np.empty(K * P, X.dtype), np.empty(P, X.dtype)
    scale_r, one = real(scale), real(1.0)
    uK, uP = np.uint64(K), np.uint64(P)
    for i in range(n):  # row by row: the softmax residual of every path
        zi = Z[i]
        # shift the logits below 0 for exp_nonpositive: by |x_i| scale, a bound on every logit of the
        # row (|wn| = 1), where the largest term then stays far above underflow; else by each path's max
        bound = scale * np.sqrt(params.xx[i])
        if bound < in_precision_of(X, 300.0, 30.0):  # (float32: e^(-2 bound) >> its exp's floor e^-87)
            bound_r = real(bound)
            for j in range(K * P):
                shifted[j] = zi[j] * scale_r - bound_r
        else:
            for q in range(P):
                zmax[q] = zi[q]
            for k in range(1, K):
                for q in range(P):
                    zmax[q] = max(zmax[q], zi[k * P + q])
            for k in range(K):
                for q in range(P):
                    shifted[k * P + q] = (zi[k * P + q] - zmax[q]) * scale_r
        exp_nonpositive_any(shifted, ex)  # (not in place: an aliased output keeps the loop off SIMD lanes)
        for q in range(P):
            inv[q] = 0
        # (unsigned indices: no wraparound select for negative indices, which kept these loops off SIMD lanes)
        for k in range(uK):
            for q in range(uP):
                inv[q] += ex[k * uP + q]
        for q in range(P):
            inv[q] = one / inv[q]
        ri, yi, ci, c1 = R2[i], Y[i], c0[i], C1T[i]
        for k in range(uK):
            yk = real(yi[k])
            for q in range(uP):
                r = ex[k * uP + q] * inv[q] - yk
                ri[k * uP + q] = r * ci
                ri[(uK + k) * uP + q] = r * c1[q]
    A = np.dot(X.T, R2) * scale  # (p, 2 K P)
    G = np.empty((P, p * K), X.dtype)
    S = np.empty((P, p * K), X.dtype)
    for q in range(P):
        for i in range(p):
            for k in range(K):
                G[q, i * K + k] = A[i, k * P + q]
                S[q, i * K + k] = A[i, (K + k) * P + q]
    return G, S


@nb.njit(cache=True, fastmath=False)
def _raw_samples(wn, params):
    X, Y, scale = params.X, params.Y, params.scale
    n, p = X.shape
    K = Y.shape[1]
    R = softmax_residual(_logits(wn, params, X), Y)
    M = np.empty((n, p * K))
    for i in range(n):
        for a in range(p):
            for k in range(K):
                M[i, a * K + k] = scale * X[i, a] * R[i, k]
    return M


@nb.njit(cache=True, fastmath=False)
def _sample_stats(wn, params):
    X, Y, xx, scale = params.X, params.Y, params.xx, params.scale
    Z = _logits(wn, params, X)
    R = softmax_residual(Z, Y)
    n, K = R.shape
    sq = np.empty((n, 1))
    proj = np.empty((n, 1))
    for i in range(n):
        rr = 0.0
        zr = 0.0
        for k in range(K):
            rr += R[i, k] * R[i, k]
            zr += Z[i, k] * R[i, k]
        sq[i, 0] = scale * scale * xx[i] * rr  # |M_i|^2 = scale^2 |x_i|^2 |r_i|^2
        proj[i, 0] = zr                        # M_i . Wbar = scale x_i^T Wbar r_i = z_i . r_i
    return sq, proj


@nb.njit(cache=True, fastmath=False)
def _raw_subset(wn, params, idx, c):
    """``sum_b c_b M_{idx_b}`` (shape ``(d,)``) from the chosen rows only: no full forward pass."""
    X, Y, scale = params.X, params.Y, params.scale
    B, p, K = idx.size, X.shape[1], Y.shape[1]
    Xb = np.empty((B, p))
    Yb = np.empty((B, K))
    for b in range(B):
        Xb[b] = X[idx[b]]
        Yb[b] = Y[idx[b]]
    R = softmax_residual(np.dot(Xb, wn.reshape((p, K))) * scale, Yb)
    for b in range(B):
        R[b] *= c[b] * scale
    return np.dot(Xb.T, R).ravel()


_KERNELS = make_data_kernels(_raw_weighted, _raw_samples, _sample_stats, _raw_weighted_pair, _raw_weighted_pair_block)
_MINIBATCH_KERNEL = make_minibatch_kernel(_raw_subset)


class NormalizedLinearClassifier(DataModel):
    """Linear softmax classifier on normalized weights, trained with minibatch SGD.

    Parameters
    ----------
    data : :class:`~sdesim.normalized.data.Dataset`
    batch_size : int
        Minibatch size ``B`` that sets the gradient noise ``Sigma = Cov_i(g_i)/B`` (times
        ``(n-B)/(n-1)`` when ``replace=False``).
    replace : bool
        Whether minibatches are drawn with replacement.
    scale : float
        Inverse temperature: ``logits = scale * X W/|W|_F``.

    ``d = p K`` weights, one group, ``noise_dim = n`` (one Brownian component per sample).
    """

    def __init__(self, data, batch_size=32, replace=False, scale=5.0):
        data = check_dataset(data, "NormalizedLinearClassifier")
        self.replace = check_bool(replace, "replace")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.scale = check_real(scale, "scale", positive=True)
        self.data = data
        self.p, self.n_classes = data.p, data.n_classes
        self.d = self.p * self.n_classes
        self.group_offsets = np.array([0, self.d], dtype=np.int64)
        f = noise_factor_scale(data.n, self.batch_size, self.replace)
        Y = np.zeros((data.n, data.n_classes))
        Y[np.arange(data.n), data.y] = 1.0
        self.params = ClassifierParams(self.group_offsets, float(f), float(self.scale), data.X, Y,
                                       np.einsum("ij,ij->i", data.X, data.X), data.X.astype(np.float32))
        (self.grad_kernel, self.noise_product_kernel, self.noise_factor_kernel, self.noise_trace_kernel,
         self.grad_and_noise_product_kernel, self.grad_and_noise_product_block_kernel) = _KERNELS
        self._raw_samples, self._logits = _raw_samples, _logits
        self.raw_subset, self.minibatch_grad_kernel = _raw_subset, _MINIBATCH_KERNEL

    def __repr__(self):
        return (f"NormalizedLinearClassifier({self.data.name}, B={self.batch_size}, "
                f"replace={self.replace}, scale={self.scale})")

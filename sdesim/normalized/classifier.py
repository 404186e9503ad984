"""A normalized linear softmax classifier: ``logits = scale * X W / |W|_F``, cross-entropy loss.

``W`` is a ``(p, K)`` matrix stored row-major as ``w`` of shape ``(d,) = (p K,)``: one
scale-invariant group. Minibatch noise is exact (see :mod:`.minibatch`).
"""

from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_bool, check_int, check_real
from ._fastexp import exp_nonpositive
from .data import check_dataset
from .minibatch import DataModel, make_data_kernels, make_minibatch_kernel, noise_factor_scale, paired_weights
from .precision import in_precision_of
from .block_lanes import residual_row
from ..runners.borrow import borrowed, keep_alive

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
def softmax_residual(Z, Y):
    """``softmax(Z) - Y`` row by row, shape ``(n, K)`` (``Y`` one-hot labels of the rows)."""
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
        for k in range(K):
            R[i, k] = E[i, k] * inv - Y[i, k]
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


#: Samples per pass of the block form.
_ROWS = 128


@nb.njit(fastmath=False)  # (not cached on its own: it inlines block_lanes, whose edits Numba's
# per-file cache would not see; the kernels that call it are cached with the whole package's digest)
def _raw_weighted_block(WN, params, CT, like):
    """``sum_i CT[i, q] M_i(WN[q])`` for a block of ``P`` paths (rows of ``WN``, ``(P, d)``; columns
    of ``CT``, ``(n, P)``) in the precision of ``like``, in passes over :data:`_ROWS` samples: the
    logits of all paths from one GEMM ``X_rows (.., p) @ W (p, K P)``, the weighted residuals of
    all paths side by side, ``(rows, K P)``, and one GEMM ``X_rows^T`` by them, accumulated
    (``4 n p K`` flops per path in all). A path's result depends on its own columns only.
    -> ``(P, d)``."""
    X, Y, scale = in_precision_of(like, params.X, params.X32), params.Y, params.scale
    n, p = X.shape
    K, P = Y.shape[1], WN.shape[0]
    # columns k-major (column k P + q: class k of path q), so that the softmax runs over paths on SIMD lanes
    Wcat = np.empty((p, K * P), X.dtype)
    for q in range(P):
        for i in range(p):
            for k in range(K):
                Wcat[i, k * P + q] = WN[q, i * K + k]
    # the softmax in the logits' precision (float32 for a float32 state: its own exp, twice the lanes)
    owners = (np.empty(K * P, X.dtype), np.empty(K * P, X.dtype), np.empty(P, X.dtype), np.empty(P, X.dtype))
    scratch = borrowed(owners)  # the softmax's: shifted, ex, inv, zmax
    A = np.zeros((p, K * P), X.dtype)
    for lo in range(0, n, _ROWS):  # passes over _ROWS samples: their logits and residuals stay in cache
        rows = min(n, lo + _ROWS) - lo
        Xr = X[lo:lo + rows]
        Z = np.dot(Xr, Wcat)  # the logits of every path, k-major (before the scale)
        RC = np.empty((rows, K * P), X.dtype)
        # (borrowed views: binding owned arrays to the inlined function's parameters would count
        # references, atomically, for every row)
        Zb, Yb, CTb, RCb = borrowed(Z), borrowed(Y), borrowed(CT), borrowed(RC)
        for i in range(rows):
            # |logit| <= scale |x_i| (|wn| = 1): the row's shift
            residual_row(Zb, i, scale, scale * np.sqrt(params.xx[lo + i]), Yb, lo + i, CTb, lo + i,
                         scratch[0], scratch[1], scratch[2], scratch[3], RCb)
        keep_alive(Z, Y, CT, RC)
        A += np.dot(Xr.T, RC)  # (p, K P)
    keep_alive(owners)
    out = np.empty((P, p * K), X.dtype)
    for q in range(P):
        for i in range(p):
            for k in range(K):
                out[q, i * K + k] = A[i, k * P + q] * scale
    return out


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


_KERNELS = make_data_kernels(_raw_weighted, _raw_samples, _sample_stats, _raw_weighted_pair, _raw_weighted_block)
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

    #: The most paths per block of the block kernel, by precision: measured on the digits (one
    #: thread, path-steps/s): float64 1.43e4 with 8, 1.2e4 with 16 to 48; float32 2.3e4-2.4e4 with
    #: 16 to 32, 2.1e4 with 8.
    block_paths = {"float64": 8, "float32": 32}

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
         self.grad_and_noise_product_kernel, self.combined_block_kernel) = _KERNELS
        self._raw_samples, self._logits = _raw_samples, _logits
        self.raw_subset, self.minibatch_grad_kernel = _raw_subset, _MINIBATCH_KERNEL

    def __repr__(self):
        return (f"NormalizedLinearClassifier({self.data.name}, B={self.batch_size}, "
                f"replace={self.replace}, scale={self.scale})")

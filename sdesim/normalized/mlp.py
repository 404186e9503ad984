"""A two-layer net with weight-normalized hidden units and a fixed top layer: several
scale-invariant groups.

Hidden unit ``j`` has weights ``u_j`` (``p`` entries, group ``j`` of ``w``);
``h_ij = tanh(gain * x_i . u_j/|u_j|)``, ``logits_i = scale * A^T h_i`` with a fixed random
``A`` (``m x K``, rows centred over classes). The loss is invariant under ``u_j -> c_j u_j`` for each unit separately, so
each unit has its own norm, effective learning rate and equilibrium.
"""

from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_bool, check_int, check_real
from ._fasttanh import tanh_of
from .classifier import softmax_residual
from .data import check_dataset
from .precision import in_precision_of
from .block_lanes import residual_columns
from ..runners.borrow import borrowed, keep_alive
from .minibatch import DataModel, make_data_kernels, make_minibatch_kernel, noise_factor_scale, paired_weights

__all__ = ["WeightNormMLP", "MLPParams"]


class MLPParams(NamedTuple):
    """What the MLP's compiled kernels read (``WeightNormMLP.params``)."""

    offsets: np.ndarray  #: group offsets, int64 ``(m + 1,)`` (one group per hidden unit)
    f: float             #: minibatch noise factor (see :func:`.minibatch.noise_factor_scale`)
    scale: float         #: inverse temperature of the logits
    gain: float          #: pre-activation gain of the tanh units
    X: np.ndarray        #: inputs ``(n, p)``
    Y: np.ndarray        #: one-hot labels ``(n, K)``
    xx: np.ndarray       #: ``|x_i|^2``, ``(n,)``
    top: np.ndarray      #: the fixed top layer ``A``, ``(m, K)``
    labels: np.ndarray   #: the samples' classes, int64 ``(n,)`` (where ``Y`` holds its 1s)
    X32: np.ndarray      #: ``X`` in float32, for the block form of float32 solves


@nb.njit(cache=True, fastmath=False)
def _forward(wn, params, X):
    """Pre-activations ``S = X Ubar`` ``(n, m)``, hidden ``H`` ``(n, m)``, logits ``(n, K)``."""
    scale, gain, A = params.scale, params.gain, params.top
    m = A.shape[0]
    U = wn.reshape((m, X.shape[1]))
    S = np.dot(X, U.T)
    H = tanh_of(gain * S)
    return S, H, np.dot(H, A) * scale


@nb.njit(cache=True, fastmath=False)
def _logits(wn, params, X):
    return _forward(wn, params, X)[2]


@nb.njit(cache=True, fastmath=False)
def _unit_coefficients(wn, params):
    """``Q_ij = d loss_i / d (x_i . ubar_j)`` and the pre-activations ``S``; ``M_ij = Q_ij x_i``."""
    return _coefficients(wn, params, params.X, params.Y)


@nb.njit(cache=True, fastmath=False)
def _coefficients(wn, params, X, Y):
    """:func:`_unit_coefficients` on given rows ``X``, one-hot labels ``Y``."""
    scale, gain, A = params.scale, params.gain, params.top
    S, H, Z = _forward(wn, params, X)
    R = softmax_residual(Z, Y)
    Q = np.dot(R, A.T) * (scale * gain)
    for i in range(Q.shape[0]):
        for j in range(Q.shape[1]):
            Q[i, j] *= 1.0 - H[i, j] * H[i, j]
    return Q, S


@nb.njit(cache=True, fastmath=False)
def _raw_weighted(wn, params, c):
    Q, _ = _unit_coefficients(wn, params)
    for i in range(Q.shape[0]):
        for j in range(Q.shape[1]):
            Q[i, j] *= c[i]
    return np.dot(Q.T, params.X).ravel()


@nb.njit(cache=True, fastmath=False)
def _raw_weighted_pair(wn, params, c0, c1, like):
    """``(sum_i c0_i M_i, sum_i c1_i M_i)`` from one forward pass and one GEMM (float64)."""
    Q, _ = _unit_coefficients(wn, params)
    n, m = Q.shape
    A = np.dot(paired_weights(Q, c0, c1, np.empty((n, 2 * m))).T, params.X)  # (2m, p)
    return A[:m].ravel(), A[m:].ravel()


#: Samples per pass of the block form (its temporaries stay in cache: ~64 x paths x hidden values).
_ROWS = 64


@nb.njit(fastmath=False)  # (not cached on its own: it inlines block_lanes, whose edits Numba's
# per-file cache would not see; the kernels that call it are cached with the whole package's digest)
def _raw_weighted_block(WN, params, CT, like):
    """``sum_i CT[i, q] M_i(WN[q])`` for a block of ``P`` paths (rows of ``WN``, ``(P, d)``; columns
    of ``CT``, ``(n, P)``) in the precision of ``like`` (float32: ``X32``, float32's tanh and exp),
    in passes over :data:`_ROWS` samples, every product one GEMM for the whole block: the pre-activations
    ``gain U (m P, p) @ X_rows^T`` (row ``j P + q``: unit ``j`` of path ``q``), read as ``(m, P rows)``
    (column ``q rows + i``: path ``q``, sample ``i``), the logits ``A^T (K, m) @ H``, the weighted
    softmax residuals ``R`` column by column (:func:`.block_lanes.residual_columns`; the logits
    shifted by a bound on them, ``scale max_k sum_j |A_jk|``), ``Q = A R`` scaled by
    ``scale gain (1 - H^2)``, and the weighted sums accumulated by ``Q (m P, rows) @ X_rows``.
    A path's result depends on its own rows and columns only. -> ``(P, d)``."""
    X = in_precision_of(like, params.X, params.X32)
    real = X.dtype.type
    scale, gain = params.scale, params.gain
    n, p = X.shape
    m, K, P = params.top.shape[0], params.top.shape[1], WN.shape[0]
    A = params.top.astype(X.dtype)
    gain_r = real(gain)
    UT = np.empty((m * P, p), X.dtype)  # row j P + q: unit j of path q times the gain (so are the rows of H and Q)
    for q in range(P):
        for j in range(m):
            for a in range(p):
                UT[j * P + q, a] = gain_r * WN[q, j * p + a]
    # |logit_k| <= scale sum_j |A_jk| (|h_j| <= 1): every column's shift for the softmax
    bound = 0.0
    for k in range(K):
        bound = max(bound, scale * np.sum(np.abs(params.top[:, k])))
    AT, CTT = np.ascontiguousarray(A.T), np.ascontiguousarray(CT.T)
    N = P * _ROWS
    owners = (np.empty(K * N, X.dtype), np.empty(K * N, X.dtype), np.empty(N, X.dtype), np.empty(K * N, X.dtype))
    shifted, ex, inv, R_flat = borrowed(owners)  # (no reference counts per pass)
    acc = np.zeros((m * P, p), X.dtype)
    c, one = real(scale * gain), real(1.0)
    for lo in range(0, n, _ROWS):
        rows = min(n, lo + _ROWS) - lo
        Xr = X[lo:lo + rows]
        # (m P, rows): row j P + q, column i; as (m, P rows): column q rows + i, one per path and sample
        H = tanh_of(np.dot(UT, Xr.T))
        Z = np.dot(AT, H.reshape((m, P * rows)))  # the logits (K, P rows), before the scale
        R = R_flat[:K * P * rows].reshape((K, P * rows))  # the softmax residuals
        residual_columns(Z, scale, bound, params.labels, CTT, lo, rows, shifted, ex, inv, R)
        Q = np.dot(A, R)  # R A^T (m, P rows), as H
        Qf, Hf = Q.reshape(Q.size), H.reshape(H.size)
        for t in range(Qf.size):
            Qf[t] *= c * (one - Hf[t] * Hf[t])
        Q = Q.reshape((m * P, rows))
        acc += np.dot(Q, Xr)  # (m P, p)
    keep_alive(owners)
    out = np.empty((P, m * p), X.dtype)
    for q in range(P):
        for j in range(m):
            for a in range(p):
                out[q, j * p + a] = acc[j * P + q, a]
    return out


@nb.njit(cache=True, fastmath=False)
def _raw_samples(wn, params):
    X = params.X
    Q, _ = _unit_coefficients(wn, params)
    n, p = X.shape
    m = Q.shape[1]
    M = np.empty((n, m * p))
    for i in range(n):
        for j in range(m):
            for a in range(p):
                M[i, j * p + a] = Q[i, j] * X[i, a]
    return M


@nb.njit(cache=True, fastmath=False)
def _sample_stats(wn, params):
    xx = params.xx
    Q, S = _unit_coefficients(wn, params)
    n, m = Q.shape
    sq = np.empty((n, m))
    proj = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            sq[i, j] = Q[i, j] * Q[i, j] * xx[i]  # |M_ij|^2 = Q_ij^2 |x_i|^2
            proj[i, j] = Q[i, j] * S[i, j]        # M_ij . ubar_j = Q_ij x_i . ubar_j
    return sq, proj


@nb.njit(cache=True, fastmath=False)
def _raw_subset(wn, params, idx, c):
    """``sum_b c_b M_{idx_b}`` (shape ``(d,)``) from the chosen rows only: no full forward pass."""
    X, Y = params.X, params.Y
    B, K = idx.size, Y.shape[1]
    Xb = np.empty((B, X.shape[1]))
    Yb = np.empty((B, K))
    for b in range(B):
        Xb[b] = X[idx[b]]
        Yb[b] = Y[idx[b]]
    Q, _ = _coefficients(wn, params, Xb, Yb)
    for b in range(B):
        Q[b] *= c[b]
    return np.dot(Q.T, Xb).ravel()


_KERNELS = make_data_kernels(_raw_weighted, _raw_samples, _sample_stats, _raw_weighted_pair, _raw_weighted_block)
_MINIBATCH_KERNEL = make_minibatch_kernel(_raw_subset)


class WeightNormMLP(DataModel):
    """Two-layer tanh net, hidden units weight-normalized one by one, fixed random top layer.

    Parameters
    ----------
    data : :class:`~sdesim.normalized.data.Dataset`
    hidden : int
        Number of hidden units ``m`` = number of scale-invariant groups (each of ``p`` weights).
    batch_size, replace : minibatch size and sampling (see :class:`NormalizedLinearClassifier`).
    gain : float
        ``h = tanh(gain * x . ubar)``.
    scale : float
        ``logits = scale * A^T h`` with ``A`` fixed: Gaussian rows drawn with ``seed``, centred over
        classes (a constant row would leave the softmax unchanged), each of norm ``sqrt(K/m)``.

    ``d = m p``, ``n_groups = m``, ``noise_dim = n``.
    """

    #: The most paths per block of the block kernel, by precision: measured on the digits with
    #: 8 hidden units (one thread, 480 paths, path-steps/s): float64 7.9e3-8.0e3 with 16, 7.8e3
    #: with 12, 7.3e3 with 8 or 24; float32 8.0e3 with 16, 7.6e3 with 8 or 32.
    block_paths = {"float64": 16, "float32": 16}

    def __init__(self, data, hidden=8, batch_size=32, replace=False, gain=1.0, scale=5.0, seed=0):
        data = check_dataset(data, "WeightNormMLP")
        hidden = check_int(hidden, "hidden", minimum=1)
        self.replace = check_bool(replace, "replace")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.gain, self.scale = check_real(gain, "gain", positive=True), check_real(scale, "scale", positive=True)
        seed = check_int(seed, "seed", minimum=0)
        self.data, self.hidden = data, hidden
        self.p, self.n_classes = data.p, data.n_classes
        self.d = hidden * self.p
        self.group_offsets = np.arange(0, self.d + 1, self.p, dtype=np.int64)
        f = noise_factor_scale(data.n, self.batch_size, self.replace)
        Y = np.zeros((data.n, data.n_classes))
        Y[np.arange(data.n), data.y] = 1.0
        rng = np.random.default_rng(seed)
        top = rng.normal(size=(hidden, data.n_classes))
        top -= top.mean(axis=1, keepdims=True)  # a row constant over classes would not change the softmax
        self.top = top / np.linalg.norm(top, axis=1, keepdims=True) * np.sqrt(data.n_classes / hidden)
        self.params = MLPParams(self.group_offsets, float(f), float(self.scale), float(self.gain), data.X, Y,
                                np.einsum("ij,ij->i", data.X, data.X), self.top, data.y,
                                data.X.astype(np.float32))
        (self.grad_kernel, self.noise_product_kernel, self.noise_factor_kernel,
         self.noise_trace_kernel, self.grad_and_noise_product_kernel, self.combined_block_kernel) = _KERNELS
        self._raw_samples, self._logits = _raw_samples, _logits
        self.raw_subset, self.minibatch_grad_kernel = _raw_subset, _MINIBATCH_KERNEL

    def __repr__(self):
        return (f"WeightNormMLP({self.data.name}, hidden={self.hidden}, B={self.batch_size}, "
                f"replace={self.replace}, gain={self.gain}, scale={self.scale})")

"""Exact minibatch gradient noise for models trained on a finite data set.

With per-sample gradients ``g_i`` (``i < n``) and minibatches of ``B`` samples, the minibatch
gradient has mean ``gbar`` and covariance

    Sigma = (1/B) Cov_i(g_i)                      (with replacement)
    Sigma = (1/B) Cov_i(g_i) (n - B) / (n - 1)    (without replacement)

(``Cov_i`` the population covariance over the ``n`` samples). Its factor
``S = f [g_1 - gbar, ..., g_n - gbar]`` with ``f = sqrt(c / (B n))`` has shape ``(d, n)`` and
``S S^T = Sigma``; ``S dB`` is applied as one weighted sum over samples, never as a ``d x d``
square root.

A data model supplies compiled primitives that work on the group-normalized weights ``wn``:

* ``raw_weighted(wn, params, c)`` -> ``sum_i c_i M_i`` (shape ``(d,)``), where ``M_i`` is the
  gradient of sample ``i``'s loss with respect to ``wn`` (before the tangent projection);
* ``raw_samples(wn, params)`` -> all ``M_i``, shape ``(n, d)``;
* ``sample_stats(wn, params)`` -> ``(|M_ij|^2, M_ij . wn_j)``, each ``(n, k)`` per sample and group;
* ``raw_subset(wn, params, idx, c)`` -> ``sum_b c_b M_{idx_b}`` from the chosen rows only (what
  discrete SGD needs per step: no pass over all ``n`` samples);

and :func:`make_data_kernels` turns them into the model interface of :mod:`.models`;
:func:`make_minibatch_kernel` turns ``raw_subset`` into the minibatch gradient of discrete SGD. The
gradient with respect to ``w`` is ``(M_ij - (M_ij . wn_j) wn_j) / |w_j|`` for group ``j``.
``params.offsets`` holds the group offsets (int64) and ``params.f`` the noise factor ``f``; the
models' own fields (``X``, ``Y``, ``xx``, ...) are read by name by their primitives.
"""

import numba as nb
import numpy as np

from ..caching import disk_cached
from ._checks import check_int, check_point, check_real
from .models import normalize_groups, tangent_per_group

__all__ = ["noise_factor_scale", "paired_weights", "make_data_kernels", "make_minibatch_kernel"]


def noise_factor_scale(n, batch_size, replace):
    """``f = sqrt(c / (B n))`` with ``c = 1`` (with replacement) or ``(n - B)/(n - 1)`` (without)."""
    B = check_int(batch_size, "batch_size")
    if not 1 <= B <= n:
        raise ValueError(f"batch_size must lie in [1, n = {n}] (n training samples), got {B}")
    if not replace and B == n:
        raise ValueError("batch_size == n without replacement gives no gradient noise; use a smaller batch")
    c = 1.0 if replace else (n - B) / (n - 1)
    return np.sqrt(c / (B * n))


@nb.njit(cache=True, fastmath=False)
def _centred(dB):
    """``dB - mean(dB)`` (float64): ``sum_i (g_i - gbar) dB_i = sum_i g_i (dB_i - mean dB)``."""
    n = dB.size
    mean = 0.0
    for i in range(n):
        mean += dB[i]
    mean /= n
    c = np.empty(n)
    for i in range(n):
        c[i] = dB[i] - mean
    return c


@nb.njit(cache=True, fastmath=False)
def paired_weights(Q, c0, c1, out):
    """``out = [Q * c0[:, None], Q * c1[:, None]]`` side by side, shape ``(n, 2 m)`` (any float
    dtype): one GEMM then gives two weighted sums of per-sample terms (``raw_weighted_pair``)."""
    n, m = Q.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = Q[i, j] * c0[i]
            out[i, m + j] = Q[i, j] * c1[i]
    return out


def make_data_kernels(raw_weighted, raw_samples, sample_stats, raw_weighted_pair, raw_weighted_block=None):
    """Build ``(grad, noise_product, noise_factor, noise_trace, grad_and_noise_product,
    combined_block)`` kernels from a model's primitives (``raw_weighted_pair(wn, params, c0, c1,
    like)`` gives two weighted sums from one forward pass; ``like`` is the state, whose dtype a
    model may compute in). ``raw_weighted_block(WN, params, CT, like)``, if the model has it, gives
    one weighted sum per path for a block of paths at once (``sum_i CT[i, q] M_i(WN[q])`` for the
    rows ``q`` of ``WN``, ``(P, d)``, the weights of path ``q`` in column ``q`` of ``CT``, ``(n, P)``:
    one GEMM per pass for the whole block); else the block kernel is None."""

    @nb.njit(fastmath=False)
    def grad_kernel(w, params, out):
        offsets = params.offsets
        wn, norms = normalize_groups(w, offsets)
        n = params.X.shape[0]
        c = np.full(n, 1.0 / n)
        tangent_per_group(raw_weighted(wn, params, c), wn, offsets, norms, 1.0, out)

    @nb.njit(fastmath=False)
    def noise_product_kernel(w, params, dB, out):
        offsets, f = params.offsets, params.f
        wn, norms = normalize_groups(w, offsets)
        tangent_per_group(raw_weighted(wn, params, _centred(dB)), wn, offsets, norms, f, out)

    @nb.njit(fastmath=False)
    def noise_factor_kernel(w, params, out):
        offsets, f = params.offsets, params.f
        wn, norms = normalize_groups(w, offsets)
        M = raw_samples(wn, params)
        n, d = M.shape
        Mbar = np.zeros(d)
        for i in range(n):
            for a in range(d):
                Mbar[a] += M[i, a] / n
        col = np.empty(d)
        v = np.empty(d)
        for i in range(n):
            for a in range(d):
                v[a] = M[i, a] - Mbar[a]
            tangent_per_group(v, wn, offsets, norms, f, col)
            for a in range(d):
                out[a, i] = col[a]

    @nb.njit(fastmath=False)
    def noise_trace_kernel(w, params, out):
        # tr Sigma_jj = f^2 / |w_j|^2 sum_i |P_j(M_ij - Mbar_j)|^2 and, with P_j the projection
        # off wn_j, sum_i |P_j(M_ij - Mbar_j)|^2 = sum_i (|M_ij|^2 - (M_ij.wn_j)^2) - n |P_j Mbar_j|^2.
        offsets, f = params.offsets, params.f
        wn, norms = normalize_groups(w, offsets)
        sq, proj = sample_stats(wn, params)
        n = sq.shape[0]
        Mbar = raw_weighted(wn, params, np.full(n, 1.0 / n))
        for j in range(offsets.size - 1):
            acc = 0.0
            for i in range(n):
                acc += sq[i, j] - proj[i, j] * proj[i, j]
            m2 = 0.0
            mp = 0.0
            for a in range(offsets[j], offsets[j + 1]):
                m2 += Mbar[a] * Mbar[a]
                mp += Mbar[a] * wn[a]
            acc -= n * (m2 - mp * mp)
            out[j] = f * f * max(acc, 0.0) / (norms[j] * norms[j])

    @nb.njit(fastmath=False)
    def grad_and_noise_product_kernel(w, params, dB, grad_out, noise_out):
        # grad L and S dB at the same w share the forward pass (what Euler-Maruyama needs per step)
        offsets, f = params.offsets, params.f
        wn, norms = normalize_groups(w, offsets)
        n = dB.size
        g, s = raw_weighted_pair(wn, params, np.full(n, 1.0 / n), _centred(dB), w)
        tangent_per_group(g, wn, offsets, norms, 1.0, grad_out)
        tangent_per_group(s, wn, offsets, norms, f, noise_out)

    # (compiled on their own when the SDE's functions are checked in Python: shared and cached)
    kernels = tuple(disk_cached(k) for k in (grad_kernel, noise_product_kernel, noise_factor_kernel,
                                             noise_trace_kernel, grad_and_noise_product_kernel))
    block = None if raw_weighted_block is None else disk_cached(_make_combined_block_kernel(raw_weighted_block))
    return kernels + (block,)


def _make_combined_block_kernel(raw_weighted_block):
    """``combined_block(W, params, dB, a, b, out)``: ``out[q] = a[q] grad L(W[q]) + b[q] S(W[q]) dB[q]``
    for the rows of ``W`` and ``dB`` (paths; ``a``, ``b``: one weight per path, in the precision of
    ``W``), from the model's ``raw_weighted_block``.

    Both terms are tangent projections of weighted sums of the same per-sample terms ``M_i``
    (weights ``1/n`` and ``f (dB_i - mean dB)``), so their combination is one weighted sum, with
    weights ``a/n + b f (dB_i - mean dB)``: one forward pass and one GEMM back for the whole
    block, where the gradient and the noise product apart would need two. An Euler step needs
    only this combination (``a = -h eta``, ``b = eta``)."""

    @nb.njit(fastmath=False)
    def combined_block(W, params, dB, a, b, out):
        # the per-path steps of normalize_groups, _centred and tangent_per_group, inline
        offsets = params.offsets
        P, n, k = W.shape[0], dB.shape[1], offsets.size - 1
        real = W.dtype.type
        WN, norms, CT = np.empty(W.shape, W.dtype), np.empty((P, k), W.dtype), np.empty((n, P), W.dtype)
        means = np.zeros(P)
        for q in range(P):
            for j in range(k):
                acc = 0.0
                for i in range(offsets[j], offsets[j + 1]):
                    acc += W[q, i] * W[q, i]
                norms[q, j] = np.sqrt(acc)
                for i in range(offsets[j], offsets[j + 1]):
                    WN[q, i] = W[q, i] / norms[q, j]
        for i in range(n):  # (the paths side by side: independent sums, each in the order of _centred's)
            for q in range(P):
                means[q] += dB[q, i]
        for q in range(P):
            means[q] /= n
        c_mean, c_noise, mean_r = np.empty(P, W.dtype), np.empty(P, W.dtype), np.empty(P, W.dtype)
        for q in range(P):
            c_mean[q], c_noise[q], mean_r[q] = real(a[q] / n), real(b[q] * params.f), real(means[q])
        for i in range(n):  # (CT row by row, in the state's precision: the stores of a row share a cache line)
            for q in range(P):
                CT[i, q] = c_mean[q] + c_noise[q] * (dB[q, i] - mean_r[q])
        M = raw_weighted_block(WN, params, CT, W)
        for q in range(P):
            for j in range(k):
                dot = 0.0
                for i in range(offsets[j], offsets[j + 1]):
                    dot += M[q, i] * WN[q, i]
                for i in range(offsets[j], offsets[j + 1]):
                    out[q, i] = (M[q, i] - dot * WN[q, i]) / norms[q, j]

    return combined_block


def make_minibatch_kernel(raw_subset):
    """``minibatch_grad_kernel(w, params, idx, c, out)``: ``out = sum_b c_b g_{idx_b}(w)``, the
    weighted sum of the chosen samples' gradients with respect to ``w`` (``c_b = 1/B``: the
    minibatch gradient). Costs ``O(len(idx) d)``, independent of ``n``."""

    @nb.njit(nogil=True, fastmath=False)
    def minibatch_grad_kernel(w, params, idx, c, out):
        offsets = params.offsets
        wn, norms = normalize_groups(w, offsets)
        tangent_per_group(raw_subset(wn, params, idx, c), wn, offsets, norms, 1.0, out)

    return disk_cached(minibatch_grad_kernel)


class DataModel:
    """Shared NumPy-side methods of the data models (per-sample gradients, Sigma, traces, accuracy).

    Subclasses set ``data``, ``batch_size``, ``replace``, ``d``, ``group_offsets``, ``params``,
    the four kernels, ``_raw_samples`` and ``_logits(wn, params, X)`` (compiled).
    """

    sgd_kind = "data"  # discrete SGD draws real minibatches (see normalized.contract)

    def _check_w(self, w):
        return check_point(w, self.d, self.group_offsets)

    def _check_X(self, X):
        X = np.asarray(X)
        if X.dtype.kind not in "iuf":
            raise TypeError(f"X must be a real array, got dtype {X.dtype}")
        if X.ndim != 2 or X.shape[1] != self.p:
            raise ValueError(f"X must have shape (m, {self.p}) (bias column included), got {X.shape}")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or inf")
        return X

    def _check_labels(self, y, m):
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.shape != (m,):
            raise ValueError(f"y must be {m} integer labels (one per row of X), got {y.dtype} of shape {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes})")
        return y

    @property
    def n_groups(self):
        """Number of scale-invariant groups."""
        return len(self.group_offsets) - 1

    @property
    def noise_dim(self):
        """One Brownian component per training sample."""
        return self.data.n

    def logits(self, w, X=None):
        """Logits ``(m, K)`` on ``X`` (default: the training features)."""
        w = self._check_w(w)
        wn, _ = normalize_groups(w, self.group_offsets)
        X = self.data.X if X is None else self._check_X(X)
        return self._logits(wn, self.params, X)

    def _labels(self, X, y):
        if X is None and y is None:
            return self.data.y
        if X is None or y is None:
            raise ValueError("give both X and y, or neither (the training set)")
        return self._check_labels(y, np.shape(X)[0])

    def sample_losses(self, w, X=None, y=None):
        """Cross-entropy of each sample, shape ``(m,)`` (default: the training set)."""
        z = self.logits(w, X)
        y = self._labels(X, y)
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        return lse - z[np.arange(len(y)), y]

    def loss(self, w):
        """Mean training cross-entropy ``L(w)``."""
        return float(self.sample_losses(w).mean())

    def accuracy(self, w, X=None, y=None):
        """Fraction of samples whose largest logit is the label (default: training set)."""
        z = self.logits(w, X)
        return float(np.mean(np.argmax(z, axis=1) == self._labels(X, y)))

    def grad(self, w):
        """Full-batch gradient ``grad L(w)``, shape ``(d,)``."""
        out = np.empty(self.d)
        self.grad_kernel(self._check_w(w), self.params, out)
        return out

    def minibatch_grad(self, w, idx):
        """Mean gradient of the samples ``idx`` (repeats count repeatedly), shape ``(d,)``."""
        w = self._check_w(w)
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu" or idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= self.data.n:
            raise ValueError(f"idx must be a non-empty 1-d array of sample indices in [0, {self.data.n})")
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        out = np.empty(self.d)
        self.minibatch_grad_kernel(w, self.params, idx, np.full(idx.size, 1.0 / idx.size), out)
        return out

    def per_sample_grads(self, w):
        """Gradient of each training sample's loss, shape ``(n, d)``."""
        w = self._check_w(w)
        wn, norms = normalize_groups(w, self.group_offsets)
        M = self._raw_samples(wn, self.params)
        out = np.empty_like(M)
        for i in range(M.shape[0]):
            tangent_per_group(M[i], wn, self.group_offsets, norms, 1.0, out[i])
        return out

    def noise_cov(self, w):
        """Minibatch-gradient covariance Sigma(w), ``(d, d)`` (for checks; never used to simulate)."""
        g = self.per_sample_grads(w)
        c = self.data.n * self.params.f ** 2 * self.batch_size  # (n - B)/(n - 1) or 1
        centred = g - g.mean(axis=0)
        return c / self.batch_size * centred.T @ centred / self.data.n

    def noise_traces(self, w):
        """tr of each group's block of Sigma(w), shape ``(k,)``."""
        out = np.empty(self.n_groups)
        self.noise_trace_kernel(self._check_w(w), self.params, out)
        return out

    def random_init(self, n_inits=None, norm=1.0, seed=0):
        """Gaussian initial weights with every group of norm ``norm``: ``(d,)`` or ``(n_inits, d)``."""
        n = 1 if n_inits is None else check_int(n_inits, "n_inits", minimum=1)
        norm = check_real(norm, "norm", positive=True)
        rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
        w = rng.normal(size=(n, self.d))
        for a, b in zip(self.group_offsets[:-1], self.group_offsets[1:]):
            w[:, a:b] *= norm / np.linalg.norm(w[:, a:b], axis=1, keepdims=True)
        return w[0] if n_inits is None else w

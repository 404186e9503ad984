"""Scale-invariant models: the interface every model follows, group helpers, and the sphere model.

A model's parameter vector ``w`` (shape ``(d,)``) is split into ``k`` contiguous groups
(``group_offsets``, shape ``(k + 1,)``); the loss is invariant under ``w_j -> c w_j`` for every
group ``j`` and ``c > 0``. Every model exposes:

* ``d``, ``noise_dim``, ``n_groups``, ``group_offsets``, ``params`` (a tuple of arrays passed to
  the compiled kernels and appended to the SDE's args);
* NumPy methods ``loss(w)``, ``grad(w)``, ``noise_cov(w)`` (Sigma(w), ``(d, d)``, for checks) and
  ``noise_traces(w)`` (``(k,)``: tr of each group's diagonal block of Sigma(w));
* compiled kernels ``grad_kernel(w, params, out)``, ``noise_product_kernel(w, params, dB, out)``
  (``out = S(w) dB`` with ``S S^T = Sigma``, ``S`` of shape ``(d, noise_dim)``, never formed),
  ``noise_factor_kernel(w, params, out)`` (the full ``S``, for Milstein and checks) and
  ``noise_trace_kernel(w, params, out)`` (writes the ``k`` group traces of Sigma(w)).

For discrete SGD (:mod:`.sgd`) the sphere model also has a compiled ``loss_kernel(w, params)``;
the data models have ``minibatch_grad_kernel(w, params, idx, c, out)`` (see :mod:`.minibatch`).
"""

import numba as nb
import numpy as np

__all__ = ["SphereModel", "group_norms", "normalize_groups"]


@nb.njit
def normalize_groups(w, offsets):
    """``(wn, norms)``: each group of ``w`` divided by its norm (float64 copies)."""
    k = offsets.size - 1
    wn = np.empty(w.size)
    norms = np.empty(k)
    for j in range(k):
        acc = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            acc += w[i] * w[i]
        r = np.sqrt(acc)
        norms[j] = r
        for i in range(offsets[j], offsets[j + 1]):
            wn[i] = w[i] / r
    return wn, norms


@nb.njit
def tangent_per_group(v, wn, offsets, norms, factor, out):
    """``out_j = factor (v_j - (v_j . wn_j) wn_j) / norms_j`` for every group ``j``.

    Maps a gradient taken with respect to the unit-normalized groups ``wn`` to the gradient
    with respect to ``w`` (chain rule through ``w_j / |w_j|``).
    """
    for j in range(offsets.size - 1):
        dot = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            dot += v[i] * wn[i]
        for i in range(offsets[j], offsets[j + 1]):
            out[i] = factor * (v[i] - dot * wn[i]) / norms[j]


def group_norms(w, offsets):
    """Norm of each group of ``w`` (shape ``(..., d)`` -> ``(..., k)``)."""
    w = np.asarray(w)
    return np.stack([np.linalg.norm(w[..., a:b], axis=-1) for a, b in zip(offsets[:-1], offsets[1:])], axis=-1)


@nb.njit(inline="always")
def _norm(w):
    acc = 0.0
    for i in range(w.size):
        acc += w[i] * w[i]
    return np.sqrt(acc)


@nb.njit(inline="always")
def _sphere_grad(w, params, out):
    """grad of L(w) = 1/2 wbar^T H wbar: (1/|w|) (I - wbar wbar^T) H wbar."""
    H = params[0]
    d = w.size
    r = _norm(w)
    if H.shape[0] == 0:
        for i in range(d):
            out[i] = 0.0
        return
    proj = 0.0
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += H[i, j] * w[j]
        out[i] = acc / r
        proj += out[i] * w[i]
    proj /= r
    for i in range(d):
        out[i] = (out[i] - proj * w[i] / r) / r


@nb.njit
def _sphere_loss(w, params):
    """L(w) = 1/2 wbar^T H wbar (0 for a flat model)."""
    H = params[0]
    if H.shape[0] == 0:
        return 0.0
    r2 = 0.0
    for i in range(w.size):
        r2 += w[i] * w[i]
    acc = 0.0
    for i in range(w.size):
        row = 0.0
        for j in range(w.size):
            row += H[i, j] * w[j]
        acc += w[i] * row
    return 0.5 * acc / r2


@nb.njit(inline="always")
def _sphere_noise_product(w, params, dB, out):
    """S(w) dB with S = (s / |w|) (I - wbar wbar^T)  (a projector, so S S^T = Sigma)."""
    s = params[1][0]
    r = _norm(w)
    dot = 0.0
    for i in range(w.size):
        dot += w[i] * dB[i]
    for i in range(w.size):
        out[i] = s / r * (dB[i] - dot * w[i] / (r * r))


@nb.njit
def _sphere_noise_factor(w, params, out):
    """The full factor S(w) = (s / |w|) (I - wbar wbar^T), shape (d, d)."""
    s = params[1][0]
    r = _norm(w)
    for i in range(w.size):
        for j in range(w.size):
            out[i, j] = s / r * ((1.0 if i == j else 0.0) - w[i] * w[j] / (r * r))


@nb.njit(inline="always")
def _sphere_noise_trace(w, params, out):
    """tr Sigma(w) = s^2 (d - 1) / |w|^2 (one group)."""
    r = _norm(w)
    s = params[1][0]
    out[0] = s * s * (w.size - 1) / (r * r)


class SphereModel:
    """``L(w) = 1/2 wbar^T H wbar`` with isotropic tangent noise ``Sigma(w) = (s^2/|w|^2)(I - wbar wbar^T)``.

    Parameters: ``d`` (dimension), ``s`` (noise scale), ``H`` (``(d, d)`` symmetric, or None
    for a flat loss). ``tr Sigma(wbar) = tau = s^2 (d - 1)``, so every closed form of
    :mod:`sdesim.normalized.theory` holds exactly.
    """

    n_groups = 1  # one scale-invariant group: the whole vector

    def __init__(self, d, s=1.0, H=None):
        if int(d) < 2:
            raise ValueError("SphereModel needs d >= 2")
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"s must be positive, got {s}")
        self.d, self.s = int(d), float(s)
        if H is None:
            self.H = np.zeros((0, 0))
        else:
            H = np.asarray(H, dtype=np.float64)
            if H.shape != (d, d) or not np.allclose(H, H.T):
                raise ValueError(f"H must be a symmetric ({d}, {d}) matrix")
            self.H = H
        self.params = (self.H, np.array([self.s]))
        self.grad_kernel = _sphere_grad
        self.noise_product_kernel = _sphere_noise_product
        self.noise_trace_kernel = _sphere_noise_trace
        self.noise_factor_kernel = _sphere_noise_factor
        self.loss_kernel = _sphere_loss  # compiled L(w), used by discrete SGD to record the loss
        self.noise_dim = self.d
        self.group_offsets = np.array([0, self.d], dtype=np.int64)

    @property
    def tau(self):
        """tr Sigma at the unit sphere: s^2 (d - 1)."""
        return self.s**2 * (self.d - 1)

    def loss(self, w):
        if self.H.size == 0:
            return 0.0
        wb = w / np.linalg.norm(w)
        return 0.5 * wb @ self.H @ wb

    def grad(self, w):
        out = np.empty(self.d)
        _sphere_grad(np.asarray(w, dtype=np.float64), self.params, out)
        return out

    def noise_cov(self, w):
        r = np.linalg.norm(w)
        wb = w / r
        return self.s**2 / r**2 * (np.eye(self.d) - np.outer(wb, wb))

    def noise_traces(self, w):
        """``[tr Sigma(w)] = [tau / |w|^2]``, shape ``(1,)``."""
        return np.array([self.tau / np.dot(w, w)])

    def __repr__(self):
        return f"SphereModel(d={self.d}, s={self.s}, H={'none' if self.H.size == 0 else 'given'})"

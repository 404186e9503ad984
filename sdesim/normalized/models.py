"""Scale-invariant models: the interface every model follows, group helpers, and the sphere model.

A model's parameter vector ``w`` (shape ``(d,)``) is split into ``k`` contiguous groups
(``group_offsets``, shape ``(k + 1,)``); the loss is invariant under ``w_j -> c w_j`` for every
group ``j`` and ``c > 0``. Every model exposes:

* ``d``, ``noise_dim``, ``n_groups``, ``group_offsets``, ``params`` (a NamedTuple of arrays and numbers passed to
  the compiled kernels, which read it by name; the SDE builders hand it over as ``args.params``);
* NumPy methods ``loss(w)``, ``grad(w)``, ``noise_cov(w)`` (Sigma(w), ``(d, d)``, for checks) and
  ``noise_traces(w)`` (``(k,)``: tr of each group's diagonal block of Sigma(w));
* compiled kernels ``grad_kernel(w, params, out)``, ``noise_product_kernel(w, params, dB, out)``
  (``out = S(w) dB`` with ``S S^T = Sigma``, ``S`` of shape ``(d, noise_dim)``, never formed),
  ``noise_factor_kernel(w, params, out)`` (the full ``S``, for Milstein and checks) and
  ``noise_trace_kernel(w, params, out)`` (writes the ``k`` group traces of Sigma(w)).

For discrete SGD (:mod:`.sgd`) the sphere model also has a compiled ``loss_kernel(w, params)``;
the data models have ``minibatch_grad_kernel(w, params, idx, c, out)`` (see :mod:`.minibatch`).
"""

from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_int, check_point, check_real
from .precision import in_precision_of

__all__ = ["SphereModel", "SphereParams", "group_norms", "normalize_groups"]


class SphereParams(NamedTuple):
    """What the sphere model's compiled kernels read (``SphereModel.params``)."""

    H: np.ndarray    #: the ``(d, d)`` symmetric Hessian of the quadratic loss; shape ``(0, 0)`` for a flat loss
    s: float         #: the noise scale
    H32: np.ndarray  #: ``H`` in float32, read by float32 solves (their products run in float32)


@nb.njit(cache=True, fastmath=False)
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


@nb.njit(cache=True, fastmath=False)
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
    """Norm of each group of ``w`` (shape ``(..., d)`` -> ``(..., k)``); ``offsets`` (``(k + 1,)``,
    from 0 to ``d``, increasing) as in ``model.group_offsets``."""
    w = np.asarray(w)
    if w.dtype.kind not in "iuf" or w.ndim < 1:
        raise TypeError(f"w must be a real array of shape (..., d), got dtype {w.dtype} and shape {w.shape}")
    off = np.asarray(offsets)
    if (off.dtype.kind not in "iu" or off.ndim != 1 or off.size < 2 or off[0] != 0
            or off[-1] != w.shape[-1] or np.any(np.diff(off) <= 0)):
        raise ValueError(f"offsets must be increasing integers from 0 to d = {w.shape[-1]} (model.group_offsets), "
                         f"got {offsets!r}")
    return np.stack([np.linalg.norm(w[..., a:b], axis=-1) for a, b in zip(offsets[:-1], offsets[1:])], axis=-1)


@nb.njit(inline="always", cache=True)
def _norm(w):
    acc = w.dtype.type(0.0)  # (the sphere's kernels compute in the state's precision)
    for i in range(w.size):
        acc += w[i] * w[i]
    return np.sqrt(acc)


@nb.njit(inline="always", cache=True)
def _sphere_grad(w, params, out):
    """grad of L(w) = 1/2 wbar^T H wbar: (1/|w|) (I - wbar wbar^T) H wbar."""
    H = in_precision_of(w, params.H, params.H32)
    d = w.size
    if H.shape[0] == 0:
        for i in range(d):
            out[i] = 0.0
        return
    r = _norm(w)
    proj = w.dtype.type(0.0)
    for i in range(d):
        acc = w.dtype.type(0.0)
        for j in range(d):
            acc += H[i, j] * w[j]
        out[i] = acc / r
        proj += out[i] * w[i]
    proj /= r
    for i in range(d):
        out[i] = (out[i] - proj * w[i] / r) / r


@nb.njit(cache=True, fastmath=False)
def _sphere_loss(w, params):
    """L(w) = 1/2 wbar^T H wbar (0 for a flat model)."""
    H = params.H
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


@nb.njit(inline="always", cache=True)
def _sphere_noise_product(w, params, dB, out):
    """S(w) dB with S = (s / |w|) (I - wbar wbar^T)  (a projector, so S S^T = Sigma)."""
    s = w.dtype.type(params.s)
    # |w|^2 and w . dB in one loop: two independent chains of additions side by side (the same sums,
    # in the same order, as in _norm: the same bits, about half the latency at small d)
    acc = w.dtype.type(0.0)
    dot = w.dtype.type(0.0)
    for i in range(w.size):
        acc += w[i] * w[i]
        dot += w[i] * dB[i]
    r = np.sqrt(acc)
    for i in range(w.size):
        out[i] = s / r * (dB[i] - dot * w[i] / (r * r))


@nb.njit(cache=True, fastmath=False)
def _sphere_noise_factor(w, params, out):
    """The full factor S(w) = (s / |w|) (I - wbar wbar^T), shape (d, d)."""
    s = params.s
    r = _norm(w)
    for i in range(w.size):
        for j in range(w.size):
            out[i, j] = s / r * ((1.0 if i == j else 0.0) - w[i] * w[j] / (r * r))


@nb.njit(inline="always", cache=True)
def _sphere_noise_trace(w, params, out):
    """tr Sigma(w) = s^2 (d - 1) / |w|^2 (one group)."""
    r = _norm(w)
    s = params.s
    out[0] = s * s * (w.size - 1) / (r * r)


def _check_H(H, d):
    """``H`` as a finite symmetric ``(d, d)`` float64 matrix (symmetrised exactly: the gradient
    kernel uses ``H wbar``, the gradient of ``1/2 wbar^T H wbar`` only for a symmetric ``H``)."""
    H = np.asarray(H)
    if H.dtype.kind not in "iuf":
        raise TypeError(f"H must be a real ({d}, {d}) matrix, got dtype {H.dtype}")
    if H.shape != (d, d):
        raise ValueError(f"H must be a symmetric ({d}, {d}) matrix, got shape {H.shape}")
    H = H.astype(np.float64)
    if not np.all(np.isfinite(H)):
        raise ValueError("H contains NaN or inf")
    asym = float(np.max(np.abs(H - H.T))) if d else 0.0
    if asym > 1e-10 * max(float(np.max(np.abs(H))), np.finfo(float).tiny):
        raise ValueError(f"H must be symmetric; max |H - H^T| = {asym:.3g}")
    return np.ascontiguousarray(0.5 * (H + H.T))


class SphereModel:
    """``L(w) = 1/2 wbar^T H wbar`` with isotropic tangent noise ``Sigma(w) = (s^2/|w|^2)(I - wbar wbar^T)``.

    Parameters: ``d`` (dimension), ``s`` (noise scale), ``H`` (``(d, d)`` symmetric, or None
    for a flat loss). ``tr Sigma(wbar) = tau = s^2 (d - 1)``, so every closed form of
    :mod:`sdesim.normalized.theory` holds exactly.
    """

    n_groups = 1  # one scale-invariant group: the whole vector
    sgd_kind = "gaussian"  # discrete SGD: g = grad L + S z (see normalized.contract)

    def __init__(self, d, s=1.0, H=None):
        self.d = check_int(d, "d", minimum=2)
        self.s = check_real(s, "s", positive=True)
        self.H = np.zeros((0, 0)) if H is None else _check_H(H, self.d)
        self.H.setflags(write=False)  # (read by the kernels in float64 and, as a float32 copy, by float32 solves)
        self.params = SphereParams(self.H, float(self.s), self.H.astype(np.float32))
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

    def _check_w(self, w):
        return check_point(w, self.d, self.group_offsets)

    def loss(self, w):
        """``L(w) = 1/2 wbar^T H wbar``."""
        w = self._check_w(w)
        if self.H.size == 0:
            return 0.0
        wb = w / np.linalg.norm(w)
        return 0.5 * wb @ self.H @ wb

    def grad(self, w):
        """``grad L(w)``, shape ``(d,)``."""
        out = np.empty(self.d)
        _sphere_grad(self._check_w(w), self.params, out)
        return out

    def noise_cov(self, w):
        """Sigma(w), ``(d, d)``."""
        w = self._check_w(w)
        r = np.linalg.norm(w)
        wb = w / r
        return self.s**2 / r**2 * (np.eye(self.d) - np.outer(wb, wb))

    def noise_traces(self, w):
        """``[tr Sigma(w)] = [tau / |w|^2]``, shape ``(1,)``."""
        w = self._check_w(w)
        return np.array([self.tau / np.dot(w, w)])

    def __repr__(self):
        return f"SphereModel(d={self.d}, s={self.s}, H={'none' if self.H.size == 0 else 'given'})"

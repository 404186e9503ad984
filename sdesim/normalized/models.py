"""Scale-invariant models: loss, gradient and gradient-noise factor, all invariant under w -> c w.

Every model exposes, for a parameter vector ``w`` (shape ``(d,)``):

* ``loss(w)``, ``grad(w)`` (NumPy, for checks and discrete SGD);
* ``noise_cov(w)``: the gradient-noise covariance Sigma(w), shape ``(d, d)`` (for checks);
* ``noise_trace_unit(wbar)``: tr Sigma at the unit vector;
* compiled kernels ``grad_kernel(w, params, out)``, ``noise_product_kernel(w, params, dB, out)``
  (``out = S(w) dB`` with ``S S^T = Sigma``, ``S`` of shape ``(d, noise_dim)``),
  ``noise_factor_kernel(w, params, out)`` (the full ``S``) and ``noise_trace_kernel(w, params)``;
  ``params`` is a tuple of arrays (``model.params``), used by the SDE builders.
"""

import numba as nb
import numpy as np

__all__ = ["SphereModel"]


@nb.njit(inline="always")
def _norm(w):
    acc = 0.0
    for i in range(w.size):
        acc += w[i] * w[i]
    return np.sqrt(acc)


@nb.njit
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


@nb.njit
def _sphere_noise_trace(w, params):
    """tr Sigma(w) = s^2 (d - 1) / |w|^2."""
    r = _norm(w)
    s = params[1][0]
    return s * s * (w.size - 1) / (r * r)


class SphereModel:
    """``L(w) = 1/2 wbar^T H wbar`` with isotropic tangent noise ``Sigma(w) = (s^2/|w|^2)(I - wbar wbar^T)``.

    Parameters: ``d`` (dimension), ``s`` (noise scale), ``H`` (``(d, d)`` symmetric, or None
    for a flat loss). ``tr Sigma(wbar) = tau = s^2 (d - 1)``, so every closed form of
    :mod:`sdesim.normalized.theory` holds exactly.
    """

    groups = None  # one scale-invariant group: the whole vector

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
        self.noise_dim = self.d

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

    def noise_trace_unit(self, wbar=None):
        return self.tau

    def __repr__(self):
        return f"SphereModel(d={self.d}, s={self.s}, H={'none' if self.H.size == 0 else 'given'})"

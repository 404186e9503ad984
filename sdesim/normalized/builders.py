"""The paper's SDE for scale-invariant models, in full form and in direction/norm (polar) form.

Time is in SGD steps. With learning rate ``eta(t)`` and weight decay ``lam(t)``:

full:   dW = -eta (grad L(W) + lam W) dt + eta S(W) dB                   (state W, shape (d,))

polar:  dWbar = -G^{-1/2} grad L(Wbar) dt + G^{-1/2} Sbar^{1/2} dB - 1/2 G^{-1} tr(Sbar) Wbar dt
        dG    = (-4 lam_e G + 2 tr Sbar) dt,   G = |W|^4 / eta^2,  lam_e = eta lam
        (state (Wbar, G, eta_now), shape (d + 2,); the last entry records the learning rate in
        force so that at a learning-rate change G is rescaled by (eta_old / eta_new)^2 inside the
        compiled loop, keeping |W|^4 = G eta^2 continuous).
"""

import numba as nb
import numpy as np

from ..sde import SDE
from .schedules import as_schedule, schedule_value

__all__ = ["sgd_sde", "polar_sde", "polar_state", "full_from_polar"]


def _schedule_args(model, lr, wd):
    lr, wd = as_schedule(lr, "lr"), as_schedule(wd, "wd")
    return tuple(model.params) + (lr.times, lr.values, wd.times, wd.values)


def _schedule_slots(model):
    """Positions of (lr times, lr values, wd times, wd values) in the SDE's args."""
    p = len(model.params)
    return p, p + 1, p + 2, p + 3


def _cached(model, key, build):
    """Compiled SDE functions per model, so that new rates reuse the compiled kernels."""
    cache = model.__dict__.setdefault("_sde_functions", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def sgd_sde(model, lr, wd):
    """``dW = -eta (grad L + lam W) dt + eta Sigma^{1/2} dB`` as an :class:`sdesim.SDE` (general noise).

    ``lr``/``wd``: numbers or :class:`~sdesim.normalized.Schedule`. Euler-Maruyama uses the
    matrix-free noise product; the full diffusion (``(d, noise_dim)``) is there for Milstein.
    """
    drift, diffusion, product = _cached(model, "sgd", lambda: _sgd_functions(model))
    return SDE(drift, diffusion, dim=model.d, noise_dim=model.noise_dim, noise="general",
               args=_schedule_args(model, lr, wd), diffusion_product=product, name=f"sgd_sde({model!r})")


def _sgd_functions(model):
    d, n = model.d, model.noise_dim
    iLT, iLV, iWT, iWV = _schedule_slots(model)
    grad, product, factor = model.grad_kernel, model.noise_product_kernel, model.noise_factor_kernel

    @nb.njit
    def drift(t, y, args, out):
        eta = schedule_value(t, args[iLT], args[iLV])
        lam = schedule_value(t, args[iWT], args[iWV])
        grad(y, args, out)
        for i in range(d):
            out[i] = -eta * (out[i] + lam * y[i])

    @nb.njit
    def diffusion(t, y, args, out):
        eta = schedule_value(t, args[iLT], args[iLV])
        factor(y, args, out)
        for i in range(d):
            for j in range(n):
                out[i, j] *= eta

    @nb.njit
    def noise_product(t, y, args, dB, out):
        eta = schedule_value(t, args[iLT], args[iLV])
        product(y, args, dB, out)
        for i in range(d):
            out[i] *= eta

    return drift, diffusion, noise_product


def polar_sde(model, lr, wd, *, project=False):
    """The direction/norm SDE; state ``(Wbar, G, eta_now)``, shape ``(d + 2,)``.

    ``project=True`` maps ``Wbar`` back to the unit sphere after every step (plain EM lets
    ``|Wbar|`` drift by O(dt) per unit time). Build the initial state with :func:`polar_state`.
    """
    drift, diffusion, product, on_step = _cached(model, ("polar", bool(project)),
                                                 lambda: _polar_functions(model, bool(project)))
    return SDE(drift, diffusion, dim=model.d + 2, noise_dim=model.noise_dim, noise="general",
               args=_schedule_args(model, lr, wd), diffusion_product=product, projection=on_step,
               name=f"polar_sde({model!r}, project={project})")


def _polar_functions(model, project):
    d, n = model.d, model.noise_dim
    iLT, iLV, iWT, iWV = _schedule_slots(model)
    grad, product, trace = model.grad_kernel, model.noise_product_kernel, model.noise_trace_kernel
    model_factor = model.noise_factor_kernel

    @nb.njit
    def drift(t, y, args, out):
        eta = schedule_value(t, args[iLT], args[iLV])
        lam = schedule_value(t, args[iWT], args[iWV])
        wb = y[:d]
        G = y[d]
        tr = trace(wb, args)
        grad(wb, args, out[:d])
        rg = 1.0 / np.sqrt(G)
        for i in range(d):
            out[i] = -rg * out[i] - 0.5 * tr / G * wb[i]
        out[d] = -4.0 * eta * lam * G + 2.0 * tr
        out[d + 1] = 0.0

    @nb.njit
    def noise_product(t, y, args, dB, out):
        product(y[:d], args, dB, out[:d])
        rg = 1.0 / np.sqrt(y[d])
        for i in range(d):
            out[i] *= rg
        out[d] = 0.0
        out[d + 1] = 0.0

    @nb.njit
    def diffusion(t, y, args, out):
        factor = out[:d]
        model_factor(y[:d], args, factor)
        rg = 1.0 / np.sqrt(y[d])
        for i in range(d):
            for j in range(n):
                out[i, j] *= rg
        for j in range(n):
            out[d, j] = 0.0
            out[d + 1, j] = 0.0


    @nb.njit
    def on_step(t, y, args):
        eta = schedule_value(t, args[iLT], args[iLV])
        if eta != y[d + 1]:
            ratio = y[d + 1] / eta
            y[d] *= ratio * ratio
            y[d + 1] = eta
        if project:
            r = 0.0
            for i in range(d):
                r += y[i] * y[i]
            r = np.sqrt(r)
            for i in range(d):
                y[i] /= r

    return drift, diffusion, noise_product, on_step


def polar_state(w0, lr, t0=0.0):
    """Polar initial state ``(w0/|w0|, |w0|^4/eta^2, eta)`` from full parameters ``w0`` (shape (d,) or (P, d))."""
    w0 = np.asarray(w0, dtype=np.float64)
    eta = float(as_schedule(lr, "lr")(t0))
    r = np.linalg.norm(w0, axis=-1, keepdims=True)
    G = r**4 / eta**2
    return np.concatenate([w0 / r, G, np.full_like(G, eta)], axis=-1)


def full_from_polar(y):
    """``W = Wbar |W|`` with ``|W| = (G eta^2)^{1/4}`` from polar states ``(..., d + 2)``."""
    d = y.shape[-1] - 2
    norm = (y[..., d] * y[..., d + 1] ** 2) ** 0.25
    return y[..., :d] * norm[..., None]

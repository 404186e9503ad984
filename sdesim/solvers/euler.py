"""Euler-Maruyama: ``y_{n+1} = y_n + f(t_n, y_n) h + g(t_n, y_n) dW_n``.

Strong order 0.5 (1.0 for additive noise), weak order 1.0; every noise structure.
"""

import numba as nb

from ._terms import diffusion_view, make_noise_product
from .base import Solver

__all__ = ["Euler"]


class Euler(Solver):
    name = "euler"
    strong_order = {"scalar": 0.5, "diagonal": 0.5, "additive": 1.0, "commutative": 0.5, "general": 0.5}
    weak_order = dict.fromkeys(strong_order, 1.0)

    def uses_dense_diffusion(self, sde):
        return sde.diffusion_product is None

    def work_size(self, sde):
        # matrix-free noise needs the drift and g dW only: O(dim) per path, never (dim, noise_dim)
        return sde.dim + (_g_size(sde) if self.uses_dense_diffusion(sde) else sde.dim)

    def make_step(self, sde):
        dim = sde.dim
        drift, diffusion = sde.drift, sde.diffusion
        gdw = make_noise_product(sde.noise, dim, sde.noise_dim)
        view = diffusion_view(sde.noise, dim, sde.noise_dim)
        g_end = dim + _g_size(sde)
        if sde.diffusion_product is not None:
            return _make_product_step(sde)

        @nb.njit(inline="always")
        def step(t, h, y, dW, area, args, work, y_out):
            a = work[:dim]
            g = work[dim:g_end]
            drift(t, y, args, a)
            diffusion(t, y, args, view(g))
            for i in range(dim):
                y_out[i] = y[i] + a[i] * h + gdw(g, dW, i)

        return step


def _g_size(sde):
    return sde.dim if sde.noise in ("scalar", "diagonal") else sde.dim * sde.noise_dim


def _make_product_step(sde):
    """Euler-Maruyama with a matrix-free ``diffusion_product`` (g dW written directly)."""
    dim = sde.dim
    drift, product = sde.drift, sde.diffusion_product
    if sde.drift_and_product is not None:
        both = sde.drift_and_product

        @nb.njit(inline="always")
        def fused_step(t, h, y, dW, area, args, work, y_out):
            a = work[:dim]
            gdw = work[dim:2 * dim]
            both(t, y, args, dW, a, gdw)
            hs = y.dtype.type(h)  # (the update in the state's precision)
            for i in range(dim):
                y_out[i] = y[i] + a[i] * hs + gdw[i]

        return fused_step

    @nb.njit(inline="always")
    def step(t, h, y, dW, area, args, work, y_out):
        a = work[:dim]
        gdw = work[dim:2 * dim]
        drift(t, y, args, a)
        product(t, y, args, dW, gdw)
        hs = y.dtype.type(h)
        for i in range(dim):
            y_out[i] = y[i] + a[i] * hs + gdw[i]

    return step

"""Euler-Heun, a Stratonovich scheme: the diffusion averaged over the start and an Euler predictor,

    ``ybar = y_n + f(t_n, y_n) h + g(t_n, y_n) dW``,
    ``y_{n+1} = y_n + f(t_n, y_n) h + (g(t_n, y_n) + g(t_n, ybar)) dW / 2``.

Converges to the Stratonovich solution. Strong order 1.0 for scalar, diagonal, additive and
commutative noise (the average reproduces the Stratonovich Milstein term with the symmetric
integrals ``dW_j dW_k / 2``, which is exact when the noise commutes), 0.5 for general noise (no
Levy areas); weak order 1.0. Two diffusion evaluations per step.
"""

import numba as nb

from ._terms import diffusion_view, make_noise_product
from .base import Solver
from .euler import _g_size

__all__ = ["EulerHeun"]


class EulerHeun(Solver):
    name = "euler_heun"
    strong_order = {"scalar": 1.0, "diagonal": 1.0, "additive": 1.0, "commutative": 1.0, "general": 0.5}
    weak_order = dict.fromkeys(strong_order, 1.0)
    calculus = ("stratonovich",)

    def work_size(self, sde):
        return 2 * sde.dim + 2 * _g_size(sde)

    def make_step(self, sde):
        dim = sde.dim
        drift, diffusion = sde.drift, sde.diffusion
        gdw = make_noise_product(sde.noise, dim, sde.noise_dim)
        view = diffusion_view(sde.noise, dim, sde.noise_dim)
        gs = _g_size(sde)
        a0, yb0, g0, gb0, end = 0, dim, 2 * dim, 2 * dim + gs, 2 * dim + 2 * gs

        @nb.njit(inline="always")
        def step(t, h, y, dW, area, args, work, y_out):
            a = work[a0:yb0]
            ybar = work[yb0:g0]
            g = work[g0:gb0]
            gbar = work[gb0:end]
            drift(t, y, args, a)
            diffusion(t, y, args, view(g))
            for i in range(dim):
                ybar[i] = y[i] + a[i] * h + gdw(g, dW, i)
            diffusion(t, ybar, args, view(gbar))
            for i in range(dim):
                y_out[i] = y[i] + a[i] * h + 0.5 * (gdw(g, dW, i) + gdw(gbar, dW, i))

        return step

"""SRA1 (Roessler 2010), for additive noise: strong order 1.5, weak order 1.5.

For ``dY = f(t, Y) dt + g(t) dW`` (``g`` independent of the state), with ``dW`` the step's
increment and ``H`` its space-time Levy area (:mod:`sdesim.brownian.areas`), ``u = dW / 2 + H``
(that is ``I_(1,0) / h``, the time average of ``W - W(t)``) and ``v = dW - u``:

    ``z = y + (3/4) f(t, y) h + (3/2) g(t) u``,
    ``y_{n+1} = y + (f(t, y) + 2 f(t + 3h/4, z)) h / 3 + g(t) u + g(t + h) v``.

The noise term is ``int g(s) dW(s)`` to ``O(h**2)`` (``g(t + h) - g(t) = g' h + O(h**2)`` times
``I_(0,1) / h = v``); the stage's random shift makes ``f(z)`` carry ``f' g I_(1,0)`` and, in mean,
the ``g g^T f'' / 2`` part of the ``h**2`` term. Two drift and two diffusion evaluations per step,
plus the space-time areas: ``p`` sub-points of the same Brownian tree per step
(:func:`time_area_substeps`).
"""

import math

import numba as nb

from ._terms import diffusion_view, make_noise_product
from .base import Solver

__all__ = ["SRA1", "make_additive_step", "additive_work_size", "time_area_substeps"]


class SRA1(Solver):
    name = "sra1"
    strong_order = {"additive": 1.5}
    weak_order = {"additive": 1.5}

    def needs_space_time_area(self, noise):
        return True

    def default_substeps(self, noise, dt):
        return time_area_substeps(dt)

    def uses_dense_diffusion(self, sde):
        return sde.diffusion_product is None

    def work_size(self, sde):
        return additive_work_size(sde)

    def make_step(self, sde):
        return make_additive_step(sde)


def time_area_substeps(dt):
    """Default sub-steps per step for the space-time areas: the power of two ``p >= 2 / sqrt(dt)``
    (at least 2). The area's error has variance ``dt / (12 p**2)`` per step and enters as
    ``f' g dt`` times it, a global mean-square error ``O(dt**2 / p**2) = O(dt**3)``: strong order
    1.5, with the constant halved by the factor 2."""
    return 2 ** max(1, math.ceil(math.log2(2.0 / math.sqrt(dt))))


def additive_work_size(sde):
    g = sde.dim * sde.noise_dim if sde.diffusion_product is None else 0
    return 5 * sde.dim + 2 * sde.noise_dim + g


def _make_g_times(sde):
    """Compiled ``g_times(t, y, args, v, gbuf, out)``: ``out = g(t) v``, by the matrix-free
    ``diffusion_product`` when given, else from the dense ``diffusion`` in ``gbuf``."""
    dim = sde.dim
    if sde.diffusion_product is not None:
        product = sde.diffusion_product

        @nb.njit(inline="always")
        def g_times(t, y, args, v, gbuf, out):
            product(t, y, args, v, out)
        return g_times
    diffusion = sde.diffusion
    gdw = make_noise_product(sde.noise, dim, sde.noise_dim)
    view = diffusion_view(sde.noise, dim, sde.noise_dim)

    @nb.njit(inline="always")
    def g_times(t, y, args, v, gbuf, out):
        diffusion(t, y, args, view(gbuf))
        for i in range(dim):
            out[i] = gdw(gbuf, v, i)
    return g_times


def make_additive_step(sde):
    """The SRA1 step for ``sde`` (additive noise)."""
    dim, m = sde.dim, sde.noise_dim
    drift = sde.drift
    g_times = _make_g_times(sde)
    f0_, f1_, z_, gu_, gv_, u_, v_, g_, end = (0, dim, 2 * dim, 3 * dim, 4 * dim, 5 * dim, 5 * dim + m,
                                               5 * dim + 2 * m, additive_work_size(sde))

    @nb.njit(inline="always")
    def step(t, h, y, dW, area, args, work, y_out):
        f0 = work[f0_:f1_]
        f1 = work[f1_:z_]
        z = work[z_:gu_]
        gu = work[gu_:gv_]
        gv = work[gv_:u_]
        u = work[u_:v_]
        v = work[v_:g_]
        gbuf = work[g_:end]
        for j in range(m):
            u[j] = 0.5 * dW[j] + area[0, j]
            v[j] = dW[j] - u[j]
        drift(t, y, args, f0)
        g_times(t, y, args, u, gbuf, gu)
        for i in range(dim):
            z[i] = y[i] + 0.75 * h * f0[i] + 1.5 * gu[i]
        drift(t + 0.75 * h, z, args, f1)
        g_times(t + h, y, args, v, gbuf, gv)
        for i in range(dim):
            y_out[i] = y[i] + h * (f0[i] + 2.0 * f1[i]) / 3.0 + gu[i] + gv[i]

    return step

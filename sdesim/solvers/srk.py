"""SRK: a stochastic Runge-Kutta method of strong order 1.5 for scalar, diagonal and additive noise.

Additive noise: the SRA1 step (:mod:`.sra1`). Scalar and diagonal noise: Roessler's (2010)
four-stage SRI scheme (the coefficients of his strong order 1.5 method SRI2, whose drift part is
the three-stage Runge-Kutta method of order 3), with the iterated integrals of each noise
component ``k`` (``dW = dW_k``, ``H = H_k`` its space-time Levy area, :mod:`sdesim.brownian.areas`):

    ``I_k = dW``, ``I_kk = (dW**2 - h) / 2``, ``I_k0 / h = dW / 2 + H``, ``I_kkk = (dW**3 - 3 h dW) / 6``.

Drift stages ``Z0`` and diffusion stages ``Z1``, with ``f_s = f(t + c0_s h, Z0_s)`` and
``g_s = g(t + c1_s h, Z1_s)`` (elementwise products, ``s`` = ``h**0.5``)::

    Z0_0 = Z1_0 = y
    Z0_1 = y + f_0 h                                   (c0 = 1)
    Z1_1 = y + f_0 h / 4 - g_0 s / 2                    (c1 = 1/4)
    Z0_2 = y + (f_0 + f_1) h / 4 + (g_0 + g_1 / 2) I_k0 / h   (c0 = 1/2)
    Z1_2 = y + f_0 h + g_0 s                           (c1 = 1)
    Z1_3 = y + f_2 h / 4 + (2 g_0 - g_1 + g_2 / 2) s    (c1 = 1/4)
    y_{n+1} = y + (f_0 + f_1 + 4 f_2) h / 6 + sum_s g_s (b1_s I_k + b2_s I_kk / s + b3_s I_k0 / h + b4_s I_kkk / h)

with ``b1 = (-1, 4/3, 2/3, 0)``, ``b2 = (1, -4/3, 1/3, 0)``, ``b3 = (2, -4/3, -2/3, 0)``,
``b4 = (-2, 5/3, -2/3, 1)``. Diagonal noise needs ``g_i`` to depend on ``y_i`` only (checked by
solve). Three drift and four diffusion evaluations per step, plus the space-time areas (``p``
sub-points of the same Brownian tree per step). Ito SDEs only.
"""

import math

import numba as nb

from .base import Solver
from .sra1 import additive_work_size, make_additive_step, time_area_substeps

__all__ = ["SRK"]


class SRK(Solver):
    name = "srk"
    strong_order = {"scalar": 1.5, "diagonal": 1.5, "additive": 1.5}
    weak_order = dict(strong_order)

    def needs_space_time_area(self, noise):
        return True

    def default_substeps(self, noise, dt):
        return time_area_substeps(dt)

    def uses_dense_diffusion(self, sde):
        return sde.noise != "additive" or sde.diffusion_product is None

    def work_size(self, sde):
        if sde.noise == "additive":
            return additive_work_size(sde)
        return 8 * sde.dim

    def make_step(self, sde):
        if sde.noise == "additive":
            return make_additive_step(sde)
        return _make_elementwise_step(sde)


def _make_elementwise_step(sde):
    dim = sde.dim
    drift, diffusion = sde.drift, sde.diffusion
    diagonal = sde.noise == "diagonal"
    third, two3, four3, five3 = 1.0 / 3.0, 2.0 / 3.0, 4.0 / 3.0, 5.0 / 3.0

    @nb.njit(inline="always")
    def step(t, h, y, dW, area, args, work, y_out):
        f0 = work[0:dim]
        f1 = work[dim:2 * dim]
        f2 = work[2 * dim:3 * dim]
        g0 = work[3 * dim:4 * dim]
        g1 = work[4 * dim:5 * dim]
        g2 = work[5 * dim:6 * dim]
        g3 = work[6 * dim:7 * dim]
        z = work[7 * dim:8 * dim]
        s = math.sqrt(h)
        drift(t, y, args, f0)
        diffusion(t, y, args, g0)
        for i in range(dim):
            z[i] = y[i] + h * f0[i]
        drift(t + h, z, args, f1)
        for i in range(dim):
            z[i] = y[i] + 0.25 * h * f0[i] - 0.5 * s * g0[i]
        diffusion(t + 0.25 * h, z, args, g1)
        for i in range(dim):
            k = i if diagonal else 0
            u = 0.5 * dW[k] + area[0, k]  # I_k0 / h
            z[i] = y[i] + 0.25 * h * (f0[i] + f1[i]) + (g0[i] + 0.5 * g1[i]) * u
        drift(t + 0.5 * h, z, args, f2)
        for i in range(dim):
            z[i] = y[i] + h * f0[i] + s * g0[i]
        diffusion(t + h, z, args, g2)
        for i in range(dim):
            z[i] = y[i] + 0.25 * h * f2[i] + s * (2.0 * g0[i] - g1[i] + 0.5 * g2[i])
        diffusion(t + 0.25 * h, z, args, g3)
        for i in range(dim):
            k = i if diagonal else 0
            w = dW[k]
            u = 0.5 * w + area[0, k]  # I_k0 / h
            i11 = 0.5 * (w * w - h) / s  # I_kk / sqrt(h)
            i111 = w * (w * w - 3.0 * h) / (6.0 * h)  # I_kkk / h
            y_out[i] = (y[i] + h * (f0[i] + f1[i] + 4.0 * f2[i]) / 6.0
                        + g0[i] * (-w + i11 + 2.0 * u - 2.0 * i111)
                        + g1[i] * (four3 * (w - i11 - u) + five3 * i111)
                        + g2[i] * (two3 * (w - u - i111) + third * i11)
                        + g3[i] * i111)

    return step

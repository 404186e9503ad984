"""Milstein: Euler-Maruyama plus the iterated-integral term, strong order 1.0, weak order 1.0.

``y_{n+1} = y_n + f h + g dW + sum_{j,k} (L^j g_k) I_jk``,  ``L^j = sum_l g_lj d/dy_l``,
with the iterated Ito integrals ``I_jk = int_t^{t+h} (W_j(s) - W_j(t)) dW_k(s)``.

* scalar / diagonal noise: ``I_jj = (dW_j**2 - h) / 2`` is exact and only ``j = k`` terms
  appear (diagonal: ``g_i`` must depend on ``y_i`` only). Cost per step: one extra
  diffusion evaluation.
* commutative noise: ``L^j g_k = L^k g_j`` lets ``I_jk`` be replaced by its symmetric part
  ``(dW_j dW_k - delta_jk h) / 2``, again exact. Cost: ``noise_dim`` extra diffusion
  evaluations (derivative-free) or one derivative evaluation, plus ``O(dim noise_dim**2)``.
* general noise: ``I_jk = (dW_j dW_k - delta_jk h) / 2 + A_jk`` with the Levy area ``A``
  taken from ``p`` sub-steps of the *same* Brownian tree (:func:`sdesim.brownian.tree.levy_area`),
  ``p >= 1 / h`` by default so that the area error is ``O(h**3)`` in mean square and strong
  order 1 holds. Cost per step: ``p * noise_dim`` normals and ``O(p noise_dim**2)`` flops for
  the area, plus the commutative-case cost; i.e. ``O(noise_dim**2 / h)`` per step.
* additive noise: the correction vanishes; this is Euler-Maruyama, strong order 1.

For a Stratonovich SDE (``SDE(..., calculus="stratonovich")``) the scheme is the same with the
Stratonovich integrals ``J_jk = dW_j dW_k / 2 + A_jk`` (no ``- delta_jk h / 2``), with the same
orders; for additive noise the two calculi coincide.

Without ``SDE.diffusion_derivative`` the derivative is replaced by the finite difference
``L^j g_k ~ (g_k(y + f h + g_j sqrt(h)) - g_k(y)) / sqrt(h)`` (Kloeden & Platen's
derivative-free form), which keeps strong order 1. Its ``O(sqrt(h))`` error multiplies ``I_jk``,
whose mean is 0; ``J_jj`` has mean ``h / 2``, so in Stratonovich form that error would add up to
``O(sqrt(h))``: there the central difference ``(g_k(y + g_j sqrt(h)) - g_k(y - g_j sqrt(h))) /
(2 sqrt(h))`` (error ``O(h)``) is used, one more diffusion evaluation per noise component.
"""

import math

import numba as nb

from ._terms import diffusion_view, make_noise_product
from .base import Solver
from .euler import Euler, _g_size

__all__ = ["Milstein"]


class Milstein(Solver):
    name = "milstein"
    strong_order = dict.fromkeys(("scalar", "diagonal", "additive", "commutative", "general"), 1.0)
    weak_order = dict.fromkeys(strong_order, 1.0)
    calculus = ("ito", "stratonovich")

    def needs_levy_area(self, noise):
        return noise == "general"

    def default_substeps(self, noise, dt):
        """General noise: the power of two ``p >= 1 / dt``, so the area's mean-square error
        ``O(dt**2 / p)`` is ``O(dt**3)`` (strong order 1)."""
        return 2 ** max(0, math.ceil(math.log2(1.0 / dt))) if noise == "general" else None

    def area_size(self, sde):
        # the matrix step reads area[j, k] for commutative noise too (zeros there)
        return sde.noise_dim if sde.noise in ("commutative", "general") else 1

    def uses_dense_diffusion(self, sde):
        return sde.noise != "additive" or Euler().uses_dense_diffusion(sde)

    def work_size(self, sde):
        if sde.noise == "additive":  # the Euler step
            return Euler().work_size(sde)
        g = _g_size(sde)
        d = 0
        if sde.diffusion_derivative is not None:
            d = {"diagonal": sde.dim, "scalar": sde.dim * sde.dim}.get(
                sde.noise, sde.dim * sde.noise_dim * sde.dim)
        central = sde.calculus == "stratonovich" and sde.diffusion_derivative is None
        return 3 * sde.dim + (3 if central else 2) * g + d

    def make_step(self, sde):
        if sde.noise == "additive":
            return Euler().make_step(sde)
        if sde.noise in ("scalar", "diagonal"):
            return _make_elementwise_step(sde)
        return _make_matrix_step(sde)


@nb.njit(fastmath=False)
def _no_derivative(t, y, args, out):
    pass


def _make_elementwise_step(sde):
    """Scalar or diagonal noise: ``y_i += ... + c_i (dW**2 - h) / 2`` with ``c = L g``."""
    dim, noise = sde.dim, sde.noise
    drift, diffusion, deriv = sde.drift, sde.diffusion, sde.diffusion_derivative
    analytic = deriv is not None
    deriv = deriv if analytic else _no_derivative
    diagonal = noise == "diagonal"
    a0, g0, yb0, gb0, d0 = 0, dim, 2 * dim, 3 * dim, 4 * dim
    d_shape = ((dim,) if diagonal else (dim, dim)) if analytic else ((0,) if diagonal else (0, 0))
    d_end = d0 + (dim if diagonal else dim * dim) * analytic
    ito = 1.0 if sde.calculus == "ito" else 0.0  # I_jj = (dW**2 - h) / 2, J_jj = dW**2 / 2
    central = not ito and not analytic  # (see the module docstring)
    gm0 = d_end
    gm_end = gm0 + dim * central

    @nb.njit(inline="always")
    def step(t, h, y, dW, area, args, work, y_out):
        a = work[a0:g0]
        g = work[g0:yb0]
        drift(t, y, args, a)
        diffusion(t, y, args, g)
        c = work[yb0:gb0]  # reused: first ybar, then c = L g
        gbar = work[gb0:d0]
        gminus = work[gm0:gm_end]  # (empty unless central differences)
        d = work[d0:d_end].reshape(d_shape)
        sq = math.sqrt(h)
        if analytic:
            deriv(t, y, args, d)
            for i in range(dim):
                if diagonal:
                    c[i] = g[i] * d[i]
                else:
                    acc = 0.0
                    for k in range(dim):
                        acc += d[i, k] * g[k]
                    c[i] = acc
        elif central:
            for i in range(dim):
                c[i] = y[i] + g[i] * sq
            diffusion(t, c, args, gbar)
            for i in range(dim):
                c[i] = y[i] - g[i] * sq
            diffusion(t, c, args, gminus)
            for i in range(dim):
                c[i] = (gbar[i] - gminus[i]) / (2.0 * sq)
        else:
            for i in range(dim):
                c[i] = y[i] + a[i] * h + g[i] * sq
            diffusion(t, c, args, gbar)
            for i in range(dim):
                c[i] = (gbar[i] - g[i]) / sq
        for i in range(dim):
            w = dW[i] if diagonal else dW[0]
            y_out[i] = y[i] + a[i] * h + g[i] * w + 0.5 * c[i] * (w * w - ito * h)

    return step


def _make_matrix_step(sde):
    """Commutative or general noise: the ``sum_{j,k} (L^j g_k) I_jk`` term with a full ``I``."""
    dim, m = sde.dim, sde.noise_dim
    drift, diffusion, deriv = sde.drift, sde.diffusion, sde.diffusion_derivative
    analytic = deriv is not None
    deriv = deriv if analytic else _no_derivative
    gdw = make_noise_product(sde.noise, dim, m)
    view = diffusion_view(sde.noise, dim, m)
    gs = dim * m
    a0, g0, yb0, gb0, t0_, d0 = 0, dim, dim + gs, 2 * dim + gs, 2 * dim + 2 * gs, 3 * dim + 2 * gs
    d_shape = (dim, m, dim) if analytic else (0, 0, 0)
    d_end = d0 + dim * m * dim * analytic
    ito = sde.calculus == "ito"
    central = not ito and not analytic  # (see the module docstring)
    gm0 = d_end
    gm_end = gm0 + gs * central

    @nb.njit(inline="always")
    def step(t, h, y, dW, area, args, work, y_out):
        a = work[a0:g0]
        g = work[g0:yb0]
        drift(t, y, args, a)
        diffusion(t, y, args, view(g))
        term = work[t0_:d0]
        for i in range(dim):
            term[i] = 0.0
        d = work[d0:d_end].reshape(d_shape)
        ybar = work[yb0:gb0]
        gbar = work[gb0:t0_]
        gminus = work[gm0:gm_end]  # (empty unless central differences)
        sq = math.sqrt(h)
        if analytic:
            deriv(t, y, args, d)
        for j in range(m):
            if central:
                for i in range(dim):
                    ybar[i] = y[i] + g[i * m + j] * sq
                diffusion(t, ybar, args, view(gbar))
                for i in range(dim):
                    ybar[i] = y[i] - g[i * m + j] * sq
                diffusion(t, ybar, args, view(gminus))
            elif not analytic:
                for i in range(dim):
                    ybar[i] = y[i] + a[i] * h + g[i * m + j] * sq
                diffusion(t, ybar, args, view(gbar))
            for k in range(m):
                i_jk = 0.5 * dW[j] * dW[k] + area[j, k]
                if ito and j == k:  # (Stratonovich: J_jk = dW_j dW_k / 2 + A_jk)
                    i_jk -= 0.5 * h
                for i in range(dim):
                    if analytic:
                        ljg = 0.0
                        for l in range(dim):
                            ljg += g[l * m + j] * d[i, k, l]
                    elif central:
                        ljg = (gbar[i * m + k] - gminus[i * m + k]) / (2.0 * sq)
                    else:
                        ljg = (gbar[i * m + k] - g[i * m + k]) / sq
                    term[i] += ljg * i_jk
        for i in range(dim):
            y_out[i] = y[i] + a[i] * h + gdw(g, dW, i) + term[i]

    return step

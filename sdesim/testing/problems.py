"""SDEs with exact solutions as functions of the Brownian path, built from given coefficients.

Each builder returns an :class:`ExactProblem`: the :class:`sdesim.SDE`, an initial state and
``exact(ts, ws)``, the solution at the times ``ts`` (shape ``(T,)``) on the Brownian values
``ws = W(ts) - W(ts[0])`` (shape ``(T, n_paths, noise_dim)``, what ``solve(..., save_brownian=True)``
returns), shape ``(T, n_paths, dim)``, for solves starting at ``ts[0] = 0``. Coefficients are
run-time arguments of functions compiled once per family, so problems of one family and dimension
share their compiled kernels.

Families (time in the solve's units):

* :func:`linear_problem`: ``dY = A Y dt + sum_k B_k Y dW_k`` with ``A = Q diag(a) Q^T`` and
  ``B_k = Q diag(b_k) Q^T`` (``Q`` orthogonal, so all commute): ``Y_t = Q exp(diag((a - c/2 sum_k
  b_k**2) t + sum_k b_k W_k)) Q^T Y_0`` (``c = 1`` Ito, ``0`` Stratonovich). Scalar noise (one
  ``B``) or commutative noise.
* :func:`gbm_problem`: ``dY_i = mu_i Y_i dt + s_i Y_i dW_i`` (diagonal noise).
* :func:`additive_problem`: ``dY = (beta / sqrt(1 + t) - Y / (2 (1 + t))) dt + C / sqrt(1 + t) dW``
  (additive, time-dependent): ``Y_t = (Y_0 + beta t + C W_t) / sqrt(1 + t)``; both calculi agree.
* :func:`arctan_problem`: ``Y_t = arctan(a W_t + tan Y_0)``, Ito drift ``-a**2 sin Y cos**3 Y``,
  diffusion ``a cos**2 Y`` (scalar, Kloeden & Platen 4.4).
* :func:`sinh_problem`: ``Y_t = sinh(a W_t + asinh Y_0)``, Ito drift ``a**2 Y / 2``, diffusion
  ``a sqrt(1 + Y**2)`` (scalar).
"""

from dataclasses import dataclass
from typing import Callable

import numba as nb
import numpy as np

from ..reference import additive_diffusion, additive_drift, gbm_diffusion, gbm_drift
from ..sde import SDE

__all__ = ["ExactProblem", "linear_problem", "gbm_problem", "additive_problem", "arctan_problem", "sinh_problem"]


@dataclass(frozen=True)
class ExactProblem:
    """An SDE, an initial state ``y0`` (``(dim,)``) and its exact solution ``exact(ts, ws)``."""

    sde: SDE
    y0: np.ndarray
    exact: Callable
    name: str

    def __repr__(self):
        return f"ExactProblem({self.name}, dim={self.sde.dim}, noise={self.sde.noise!r}, calculus={self.sde.calculus!r})"


def _ito(calculus):
    if calculus not in ("ito", "stratonovich"):
        raise ValueError(f"calculus must be 'ito' or 'stratonovich', got {calculus!r}")
    return 1.0 if calculus == "ito" else 0.0


# --- linear, commuting matrices ----------------------------------------------------------------
@nb.njit(inline="always")
def _linear_drift(t, y, args, out):
    A = args[0]
    for i in range(y.size):
        acc = 0.0
        for j in range(y.size):
            acc += A[i, j] * y[j]
        out[i] = acc


@nb.njit(inline="always")
def _linear_scalar_diffusion(t, y, args, out):
    B = args[1][0]
    for i in range(y.size):
        acc = 0.0
        for j in range(y.size):
            acc += B[i, j] * y[j]
        out[i] = acc


@nb.njit(inline="always")
def _linear_matrix_diffusion(t, y, args, out):
    Bs = args[1]
    for k in range(Bs.shape[0]):
        for i in range(y.size):
            acc = 0.0
            for j in range(y.size):
                acc += Bs[k, i, j] * y[j]
            out[i, k] = acc


def linear_problem(a, b, q, y0, calculus="ito"):
    """``a``: ``(dim,)`` drift eigenvalues; ``b``: ``(m, dim)`` noise eigenvalues (``m = 1``: scalar
    noise, else commutative); ``q``: ``(dim, dim)`` orthogonal; ``y0``: ``(dim,)``."""
    a, b, q, y0 = (np.asarray(x, dtype=np.float64) for x in (a, b, q, y0))
    c = _ito(calculus)
    A = q @ np.diag(a) @ q.T
    Bs = np.stack([q @ np.diag(bk) @ q.T for bk in b])
    m, dim = b.shape
    if m == 1:
        sde = SDE(_linear_drift, _linear_scalar_diffusion, dim=dim, noise="scalar", args=(A, Bs),
                  name="linear_scalar", calculus=calculus)
    else:
        sde = SDE(_linear_drift, _linear_matrix_diffusion, dim=dim, noise_dim=m, noise="commutative",
                  args=(A, Bs), name="linear_commutative", calculus=calculus)
    z0 = q.T @ y0

    def exact(ts, ws):
        ts = np.asarray(ts, dtype=np.float64)[:, None, None]
        expo = (a - 0.5 * c * (b**2).sum(axis=0)) * ts + np.einsum("tpk,ki->tpi", ws, b)
        return (np.exp(expo) * z0) @ q.T

    return ExactProblem(sde, y0, exact, f"linear(dim={dim}, m={m})")


# --- geometric Brownian motion, diagonal noise --------------------------------------------------
def gbm_problem(mu, s, y0, calculus="ito"):
    """``mu``, ``s``, ``y0``: ``(dim,)``."""
    mu, s, y0 = (np.asarray(x, dtype=np.float64) for x in (mu, s, y0))
    c = _ito(calculus)
    sde = SDE(gbm_drift, gbm_diffusion, dim=mu.size, noise="diagonal", args=(mu, s), name="gbm",
              calculus=calculus)

    def exact(ts, ws):
        return y0 * np.exp((mu - 0.5 * c * s**2) * np.asarray(ts)[:, None, None] + s * ws)

    return ExactProblem(sde, y0, exact, f"gbm(dim={mu.size})")


# --- additive, time-dependent -------------------------------------------------------------------
def additive_problem(beta, C, y0, calculus="ito"):
    """``beta``, ``y0``: ``(dim,)``; ``C``: ``(dim, m)``."""
    beta, C, y0 = (np.asarray(x, dtype=np.float64) for x in (beta, C, y0))
    _ito(calculus)
    sde = SDE(additive_drift, additive_diffusion, dim=beta.size, noise_dim=C.shape[1], noise="additive",
              args=(beta, C), name="additive", calculus=calculus)

    def exact(ts, ws):
        t = np.asarray(ts)[:, None, None]
        return (y0 + beta * t + np.einsum("ik,tpk->tpi", C, ws)) / np.sqrt(1.0 + t)

    return ExactProblem(sde, y0, exact, f"additive(dim={beta.size}, m={C.shape[1]})")


# --- scalar nonlinear (Kloeden & Platen 4.4) ----------------------------------------------------
@nb.njit(inline="always")
def _arctan_drift(t, y, args, out):
    a, c = args[0], args[1]
    out[0] = -c * a * a * np.sin(y[0]) * np.cos(y[0]) ** 3


@nb.njit(inline="always")
def _arctan_diffusion(t, y, args, out):
    out[0] = args[0] * np.cos(y[0]) ** 2


def arctan_problem(a, y0, calculus="ito"):
    """``a``: a number; ``y0``: a number in ``(-pi/2, pi/2)``."""
    c = _ito(calculus)
    y0 = np.array([float(y0)])
    sde = SDE(_arctan_drift, _arctan_diffusion, dim=1, noise="scalar", args=(float(a), c), name="arctan",
              calculus=calculus)

    def exact(ts, ws):
        return np.arctan(a * ws + np.tan(y0))

    return ExactProblem(sde, y0, exact, "arctan")


@nb.njit(inline="always")
def _sinh_drift(t, y, args, out):
    out[0] = 0.5 * args[1] * args[0] ** 2 * y[0]


@nb.njit(inline="always")
def _sinh_diffusion(t, y, args, out):
    out[0] = args[0] * np.sqrt(1.0 + y[0] * y[0])


def sinh_problem(a, y0, calculus="ito"):
    """``a``, ``y0``: numbers."""
    c = _ito(calculus)
    y0 = np.array([float(y0)])
    sde = SDE(_sinh_drift, _sinh_diffusion, dim=1, noise="scalar", args=(float(a), c), name="sinh",
              calculus=calculus)

    def exact(ts, ws):
        return np.sinh(a * ws + np.arcsinh(y0))

    return ExactProblem(sde, y0, exact, "sinh")

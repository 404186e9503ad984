"""Sample the Brownian paths that :func:`sdesim.solve` uses, on their own."""

from typing import Optional

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from .sde import SDE
from .driver import solve

__all__ = ["brownian_path"]

_ZERO_SDES = {}


@nb.njit
def _zero_drift(t, y, args, out):
    out[0] = 0.0


@nb.njit
def _zero_diffusion(t, y, args, out):
    for j in range(out.shape[1]):
        out[0, j] = 0.0


def brownian_path(ts: ArrayLike, *, noise_dim: int = 1, n_paths: int = 1, seed: int = 0,
                  dt: Optional[float] = None, brownian_dt: Optional[float] = None) -> np.ndarray:
    """Values ``W(ts) - W(ts[0])``, shape ``(T, n_paths, noise_dim)``.

    Exactly the path :func:`sdesim.solve` gives path ``i`` for the same ``seed``, ``ts[0]``,
    ``brownian_dt`` and ``noise_dim`` (``dt`` defaults to ``brownian_dt``, which defaults to
    the smallest gap of ``ts``; the values do not depend on ``dt``).
    """
    ts = np.asarray(ts, dtype=np.float64)
    if brownian_dt is None:
        brownian_dt = float(np.min(np.diff(ts))) if dt is None else dt
    dt = brownian_dt if dt is None else dt
    if noise_dim not in _ZERO_SDES:
        _ZERO_SDES[noise_dim] = SDE(_zero_drift, _zero_diffusion, dim=1, noise_dim=noise_dim,
                                    noise="additive", name="brownian")
    sol = solve(_ZERO_SDES[noise_dim], np.zeros(1), ts, dt=dt, n_paths=n_paths, seed=seed,
                save_brownian=True, brownian_dt=brownian_dt)
    return sol.ws

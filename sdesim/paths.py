"""Sample the Brownian paths that :func:`sdesim.solve` uses, on their own."""

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from .brownian.path import BrownianPath

__all__ = ["brownian_path"]


def brownian_path(ts: ArrayLike, *, noise_dim: int = 1, n_paths: int = 1, seed=0,
                  dt: Optional[float] = None, brownian_dt: Optional[float] = None,
                  dtype: str = "float64") -> np.ndarray:
    """Values ``W(ts) - W(ts[0])``, shape ``(T, n_paths, noise_dim)``.

    The ``ws`` that :func:`sdesim.solve` gives paths ``0 .. n_paths - 1`` (to the rounding of their
    sums: about 1e-15 for a float64 path, 1e-6 for a float32 one, whose solves sum in float32) for the same
    ``seed``, ``noise_dim`` and a step ``dt`` (or any ``dt * 2**k``): the paths of
    ``BrownianPath(seed, noise_dim, unit=dt, dtype=dtype)`` (``dtype="float32"``: the path a solve
    with ``brownian_dtype="float32"`` reads). ``dt`` defaults to ``brownian_dt`` (deprecated
    name), then to the smallest gap of ``ts``.
    """
    ts = np.asarray(ts, dtype=np.float64)
    if dt is None:
        dt = brownian_dt if brownian_dt is not None else float(np.min(np.diff(ts)))
    bm = BrownianPath(seed, noise_dim, unit=dt, dtype=dtype)
    return bm.values(ts, np.arange(n_paths), dt=dt)

"""Order estimation and error measures for convergence studies."""

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["fit_order", "strong_error", "weak_error"]


def strong_error(y: ArrayLike, y_ref: ArrayLike) -> Tuple[float, float]:
    """Root-mean-square pathwise error ``sqrt(E |y - y_ref|^2)`` and its standard error.

    ``y``, ``y_ref``: arrays ``(n_paths, dim)`` (or ``(n_paths,)``) from the same Brownian
    paths. The standard error comes from the delta method on the mean squared error.
    """
    y = np.asarray(y, dtype=np.float64)
    y_ref = np.asarray(y_ref, dtype=np.float64)
    sq = np.sum((y - y_ref).reshape(len(y), -1) ** 2, axis=1)
    mse = sq.mean()
    se_mse = sq.std(ddof=1) / np.sqrt(len(sq))
    rmse = np.sqrt(mse)
    return rmse, se_mse / (2 * rmse) if rmse > 0 else 0.0


def weak_error(samples: ArrayLike, exact: float) -> Tuple[float, float]:
    """``|mean(samples) - exact|`` and the standard error of the mean."""
    samples = np.asarray(samples, dtype=np.float64)
    return abs(samples.mean() - exact), samples.std(ddof=1) / np.sqrt(samples.size)


def fit_order(steps: ArrayLike, errors: ArrayLike,
              weights: Optional[ArrayLike] = None) -> Tuple[float, float, float]:
    """Least-squares slope of ``log(error)`` against ``log(step)``: the convergence order.

    Returns ``(order, constant, stderr_of_order)`` with ``error ~ constant * step**order``.
    """
    x = np.log(np.asarray(steps, dtype=np.float64))
    yv = np.log(np.asarray(errors, dtype=np.float64))
    if x.size < 2:
        raise ValueError("need at least two step sizes to fit an order")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    A = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
    coef, res, *_ = np.linalg.lstsq(A, yv * np.sqrt(w), rcond=None)
    n = x.size
    if n > 2:
        resid = yv - (coef[0] * x + coef[1])
        s2 = np.sum(w * resid**2) / (n - 2)
        cov = s2 * np.linalg.inv(A.T @ A)
        se = float(np.sqrt(cov[0, 0]))
    else:
        se = float("nan")
    return float(coef[0]), float(np.exp(coef[1])), se

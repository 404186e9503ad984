"""Do two independent ensembles come from the same law? Moment z-scores and Kolmogorov-Smirnov.

Used to check sdesim against another library on the same SDE and the same scheme (the two
laws are then equal, so every difference is Monte Carlo noise).

* :func:`moment_z`: for each quantity, ``(mean_a - mean_b) / sqrt(se_a^2 + se_b^2)`` and the same
  for the sample variance, whose standard error is estimated from the fourth central moment:
  ``Var(s^2) ~ (m4 - (n - 3)/(n - 1) s^4) / n``.
* :func:`ks`: two-sample Kolmogorov-Smirnov statistic and p-value (SciPy).
"""

import numpy as np

__all__ = ["moment_z", "ks", "agreement_table", "compare"]


def _se_mean_var(x):
    n = x.shape[0]
    mean = x.mean(axis=0)
    dev = x - mean
    var = (dev**2).sum(axis=0) / (n - 1)
    m4 = (dev**4).mean(axis=0)
    se_var2 = np.maximum(m4 - (n - 3) / (n - 1) * var**2, 0.0) / n
    return mean, var, var / n, se_var2


def _z(diff, se2):
    se = np.sqrt(se2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
    return z


def moment_z(a, b):
    """Z-scores of the difference of means and of variances of two samples.

    ``a`` ``(n_a, ...)`` and ``b`` ``(n_b, ...)``: independent samples along axis 0 (same trailing
    shape). Returns ``(z_mean, z_var)``, each of the trailing shape. Quantities constant in both
    samples (e.g. the initial state) get z = 0 when equal, inf otherwise.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"samples have different shapes {a.shape[1:]} and {b.shape[1:]}")
    if a.shape[0] < 4 or b.shape[0] < 4:
        raise ValueError("need at least 4 samples on each side")
    ma, va, sma, sva = _se_mean_var(a)
    mb, vb, smb, svb = _se_mean_var(b)
    return _z(ma - mb, sma + smb), _z(va - vb, sva + svb)


def ks(a, b):
    """Two-sample Kolmogorov-Smirnov test of 1-d samples: ``(statistic, p_value)``."""
    from scipy.stats import ks_2samp

    res = ks_2samp(np.ravel(a), np.ravel(b))
    return float(res.statistic), float(res.pvalue)


def agreement_table(a, b, names):
    """Rows ``{"quantity", "z_mean", "z_var"}`` for samples ``a``, ``b`` of shape ``(n, len(names))``."""
    zm, zv = moment_z(a, b)
    return [{"quantity": q, "z_mean": float(m), "z_var": float(v)} for q, m, v in zip(names, zm, zv)]


def compare(a, b, quantities, ks_quantities=None, first=1):
    """Compare two ensembles ``(T, n, dim)`` through functionals of the state.

    ``quantities``: ``{name: fn}`` with ``fn(ys) -> (T, n, k)`` (or ``(T, n)``); every component
    at every save time from index ``first`` on gets mean and variance z-scores.
    ``ks_quantities``: names whose first component at the last save time gets a two-sample KS
    test (default: all). Returns ``{name: {"max_abs_z_mean", "max_abs_z_var", "ks_stat", "ks_p",
    "n_compared"}}`` (KS entries only where asked).
    """
    ks_quantities = list(quantities) if ks_quantities is None else ks_quantities
    out = {}
    for name, fn in quantities.items():
        qa, qb = np.asarray(fn(a), dtype=np.float64), np.asarray(fn(b), dtype=np.float64)
        if qa.ndim == 2:
            qa, qb = qa[..., None], qb[..., None]
        zm, zv = moment_z(np.moveaxis(qa[first:], 1, 0), np.moveaxis(qb[first:], 1, 0))
        row = {"max_abs_z_mean": float(np.max(np.abs(zm))), "max_abs_z_var": float(np.max(np.abs(zv))),
               "n_compared": int(zm.size)}
        if name in ks_quantities:
            row["ks_stat"], row["ks_p"] = ks(qa[-1, :, 0], qb[-1, :, 0])
        out[name] = row
    return out

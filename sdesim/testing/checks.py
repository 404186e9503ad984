"""Statistical assertions with a stated confidence, for tests of SDE code.

* :func:`assert_strong_order`: the fitted strong order of a scheme on an exact problem is the
  declared one, within ``max(tol, z * standard error)``.
* :func:`assert_same_distribution`: two samples agree in distribution (two-sample Kolmogorov-Smirnov
  per component, Bonferroni-corrected, at significance ``alpha``).
* :func:`assert_mean_close`: a sample mean equals a target within ``z`` standard errors.
"""

import numpy as np

from ..analysis import fit_order, strong_error
from ..driver import solve
from ..solvers import check_method

__all__ = ["fitted_strong_order", "assert_strong_order", "assert_same_distribution", "assert_mean_close"]

#: Step sizes of the order fits: 2**-4 .. 2**-8 (T = 1: 16 to 256 steps; at coarser steps the
#: slopes on GBM-type problems are still visibly pre-asymptotic, e.g. Milstein 0.8).
DEFAULT_DTS = tuple(2.0**-k for k in range(4, 9))


def fitted_strong_order(problem, method, *, dts=DEFAULT_DTS, n_paths=500, seed=0, t_end=1.0, **solve_kw):
    """``(order, standard_error, errors)``: the slope of log RMS error at ``t_end`` against log dt,
    every ``dt`` on the same Brownian paths (one seed), errors against ``problem.exact``."""
    ts = np.array([0.0, t_end])
    errs = []
    for dt in dts:
        sol = solve(problem.sde, problem.y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed,
                    save_brownian=True, **solve_kw)
        errs.append(strong_error(sol.ys[-1], problem.exact(sol.ts, sol.ws)[-1])[0])
    order, _, se = fit_order(list(dts), errs)
    return order, se, errs


def assert_strong_order(problem, method, order=None, *, tol=0.15, z=3.0, at_least=False, **kw):
    """Assert that ``method`` converges on ``problem`` with strong order ``order`` (default: the
    order the scheme declares for the problem's noise), within ``max(tol, z * SE)`` of the fitted
    slope; ``at_least=True`` accepts any slope above ``order - tol`` (a scheme may do better on a
    special problem: SRA1 reaches 2 on linear additive ones). Returns the fitted ``(order, SE)``."""
    solver = check_method(method, problem.sde.noise, problem.sde.calculus)
    target = solver.strong_order[problem.sde.noise] if order is None else order
    slope, se, errs = fitted_strong_order(problem, method, **kw)
    band = max(tol, z * se)
    ok = slope > target - band if at_least else abs(slope - target) <= band
    assert ok, (f"{method} on {problem!r}: fitted strong order {slope:.3f} +- {se:.3f}, expected "
                f"{'at least ' if at_least else ''}{target} within {band:.3f}; errors {errs}")
    return slope, se


def assert_same_distribution(x, y, alpha=1e-3):
    """Assert that samples ``x`` and ``y`` (``(n,)`` or ``(n, k)``: ``k`` components compared one by
    one) come from one continuous distribution: every two-sample KS test has p-value
    ``>= alpha / k``, so a true equality fails with probability at most ``alpha``."""
    from scipy.stats import ks_2samp
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x2, y2 = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x2.shape[1] != y2.shape[1]:
        raise ValueError(f"samples have {x2.shape[1]} and {y2.shape[1]} components")
    k = x2.shape[1]
    for c in range(k):
        p = ks_2samp(x2[:, c], y2[:, c]).pvalue
        assert p >= alpha / k, f"component {c}: KS p-value {p:.2e} < {alpha / k:.2e}"


def assert_mean_close(x, target, z=4.0, target_se=0.0):
    """Assert ``|mean(x) - target| <= z * sqrt(SE**2 + target_se**2)`` componentwise (``x``: ``(n,)``
    or ``(n, k)``; ``target_se``: the standard error of an estimated target; ``z = 4``: a true
    mean fails with probability ~6e-5 per component, normal approximation). A sample without
    spread must equal the target to rounding (8 ulp)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    se = np.hypot(x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]), target_se)
    rounding = 8 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), np.abs(target))
    dev = np.abs(mean - target)
    assert np.all(dev <= np.maximum(z * se, rounding)), (
        f"mean {mean} vs {target}: {dev / np.maximum(se, 1e-300)} standard errors > {z}")

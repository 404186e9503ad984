"""Weak order of Euler-Maruyama, Ornstein-Uhlenbeck moments, and the on-the-fly reduction."""

import numba as nb
import numpy as np

import sdesim
from sdesim.analysis import fit_order
from sdesim.reference import OU_SIGMA, OU_THETA, gbm, gbm_exact, ou


def test_euler_weak_order_one_on_linear_sde():
    """E[Y_T] = y0 exp(mu T) for GBM; EM's weak error ~ h. The bias E[Y_h] - E[Y] is estimated
    without bias and with small variance as the mean of Y_h - Y(W) over paths, Y(W) the exact
    solution on the same Brownian path; every bias must exceed 10 standard errors."""
    y0 = np.array([1.0, 1.0])
    ts = np.array([0.0, 1.0])
    dts = [2.0**-k for k in range(1, 5)]
    errs = []
    for dt in dts:
        sol = sdesim.solve(gbm, y0, ts, dt=dt, n_paths=100_000, seed=1, save_brownian=True)
        diff = sol.ys[-1, :, 0] - gbm_exact(sol.ts, sol.ws, y0)[-1, :, 0]
        err, se = abs(diff.mean()), diff.std(ddof=1) / np.sqrt(diff.size)
        assert err > 10 * se, (dt, err, se)
        errs.append(err)
    slope, _, s = fit_order(dts, errs)
    assert abs(slope - 1.0) < 0.15, (slope, errs)


def test_ou_moments_match_the_exact_em_recursion_and_the_stationary_law():
    """Start at 0. EM's variance after N steps is sigma^2 h (1 - r^{2N}) / (1 - r^2), r = 1 - theta h;
    it tends to sigma^2 / (2 theta) as h -> 0. Means and variances within 4 standard errors."""
    h, n_paths, T = 2.0**-7, 40_000, 6.0
    ts = np.array([0.0, 1.0, T])
    sol = sdesim.solve(ou, np.zeros(3), ts, dt=h, n_paths=n_paths, seed=12, reduce=True)
    r = 1.0 - OU_THETA * h
    n = np.round(ts / h)
    var_em = OU_SIGMA**2 * h * (1 - r ** (2 * n)) / (1 - r**2)
    se_mean = np.sqrt(var_em[1:] / n_paths)
    se_var = var_em[1:] * np.sqrt(2.0 / (n_paths - 1))
    assert np.all(np.abs(sol.mean[1:]) < 4 * se_mean[:, None])
    assert np.all(np.abs(sol.var[1:] - var_em[1:, None]) < 4 * se_var[:, None])
    # stationary law of the SDE; the EM bias at this h is 1/(2 - theta h) - 1/2 ~ 0.6% relative
    stat = OU_SIGMA**2 / (2 * OU_THETA)
    bias = abs(var_em[-1] - stat)
    assert np.all(np.abs(sol.var[-1] - stat) < 4 * se_var[-1] + bias)


@nb.njit
def _square_and_sum(t, y, args, out):
    out[0] = y[0] * y[0]
    out[1] = y[0] + y[1]


def test_reduce_mode_equals_moments_of_stored_paths():
    y0 = np.array([1.0, 0.5])
    ts = np.linspace(0, 1, 6)
    kw = dict(dt=2.0**-5, n_paths=3000, seed=3)
    full = sdesim.solve(gbm, y0, ts, **kw)
    red = sdesim.solve(gbm, y0, ts, reduce=True, **kw)
    np.testing.assert_allclose(red.mean, full.ys.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(red.var, full.ys.var(axis=1, ddof=1), rtol=1e-10)
    assert red.ys is None and np.all(red.count == 3000)
    f = sdesim.solve(gbm, y0, ts, reduce=True, functional=_square_and_sum, functional_dim=2, **kw)
    vals = np.stack([full.ys[..., 0] ** 2, full.ys[..., 0] + full.ys[..., 1]], axis=-1)
    np.testing.assert_allclose(f.mean, vals.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(f.var, vals.var(axis=1, ddof=1), rtol=1e-10)


def test_float32_agrees_with_float64_to_single_precision():
    y0 = np.array([1.0, 0.5])
    ts = np.linspace(0, 1, 3)
    kw = dict(dt=2.0**-5, n_paths=500, seed=3)
    a = sdesim.solve(gbm, y0, ts, **kw)
    b = sdesim.solve(gbm, y0, ts, dtype="float32", **kw)
    assert b.ys.dtype == np.float32
    np.testing.assert_allclose(b.ys, a.ys, rtol=2e-5, atol=1e-6)

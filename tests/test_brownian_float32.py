"""The float32 Brownian path (``BrownianPath(..., dtype="float32")``, ``solve(brownian_dtype=...)``).

The same properties as the float64 path (tests/test_brownian_path.py, whose continuation property
and split properties run in both precisions): every dyadic step reads one path, the public
object reads what the solver read; its law; strong orders with only the seed fixed. Where values
are sums of float32 increments the tolerance is the worst-case rounding bound of those sums
(``2 N eps32`` times the largest value, ``N`` the number of terms), not a tuned constant.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sdesim
from sdesim import BrownianPath
from sdesim.analysis import fit_order, strong_error
from sdesim.reference import gbm, gbm_exact

from test_brownian_path import BM, UNITS

EPS32 = float(np.finfo(np.float32).eps)


def _solve(ts, dt, m=2, n_paths=3, seed=7, dtype="float32", **kw):
    return sdesim.solve(BM[m], np.zeros(m), ts, dt=dt, n_paths=n_paths, seed=seed, save_brownian=True,
                        dtype=dtype, brownian_dtype="float32", **kw)


def _rounding_bound(n_terms, *values):
    """Worst-case error of a sum of ``n_terms`` float32 roundings of numbers up to the largest of ``values``."""
    return 2 * n_terms * EPS32 * max(float(np.max(np.abs(v))) for v in values) + 1e-30


@settings(max_examples=10, deadline=None)
@given(unit=st.sampled_from(UNITS), k=st.integers(-3, 2), refine=st.integers(1, 3), g0=st.integers(-40, 40),
       n=st.integers(1, 30), m=st.sampled_from([1, 3]))
def test_every_dyadic_step_reads_the_same_float32_path(unit, k, refine, g0, n, m):
    """dt and dt / 2**refine see the same W at the grid points, and so does the public object, up to
    the rounding of the float32 sums (the nodes themselves are the same numbers)."""
    dt = unit * 2.0**k
    ts = (g0 + np.arange(n + 1)) * dt
    coarse = _solve(ts, dt, m).ws
    fine = _solve(ts, dt / 2**refine, m).ws
    tol = _rounding_bound(n * 2**refine + 60, coarse, fine)  # (+60: the nodes above the steps)
    np.testing.assert_allclose(fine, coarse, rtol=0, atol=tol)
    bm = BrownianPath(7, m, unit=unit, dtype="float32")
    np.testing.assert_allclose(bm.values(ts, np.arange(3), dt=dt), coarse, rtol=0, atol=tol)


def test_the_float32_path_is_its_own_path_and_states_of_either_dtype_read_it():
    """A float32 path is not the float64 one (another stream: its values are uncorrelated with
    the float64 path's); a float64 state reading it sees the same W as a float32 state; the
    Solution hands it back and ``bm=`` reads it again."""
    ts = np.linspace(0.0, 4.0, 9)
    p32 = _solve(ts, 0.25, n_paths=3000, seed=5)
    p64 = sdesim.solve(BM[2], np.zeros(2), ts, dt=0.25, n_paths=3000, seed=5, save_brownian=True)
    a, b = p32.ws[-1].ravel(), p64.ws[-1].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)
    wide = _solve(ts, 0.25, n_paths=3000, seed=5, dtype="float64")
    np.testing.assert_array_equal(wide.ws, p32.ws)  # (W is summed in the path's precision, whatever the state's)
    assert p32.brownian == BrownianPath(5, 2, unit=0.25, dtype="float32") != BrownianPath(5, 2, unit=0.25)
    assert "float32" in repr(p32.brownian)
    np.testing.assert_allclose(sdesim.brownian_path(ts, noise_dim=2, n_paths=3000, seed=5, dt=0.25, dtype="float32"),
                               p32.ws, rtol=0, atol=_rounding_bound(20, p32.ws))
    again = sdesim.solve(BM[2], np.zeros(2), ts, dt=0.125, n_paths=3, bm=p32.brownian, save_brownian=True,
                         dtype="float32")
    np.testing.assert_allclose(again.ws, p32.ws[:, :3], rtol=0, atol=_rounding_bound(40, p32.ws))


def test_float32_increments_have_the_law_of_brownian_motion():
    """Increments of the float32 path over intervals across top nodes, at negative times and off
    every grid: mean 0, variance = length, uncorrelated, each within 4 standard errors (4.5 for
    the 72 correlations, family-wise rate < 1e-3)."""
    n = 20000
    bm = BrownianPath(123, 1, unit=1.0, dtype="float32")
    ts = np.array([-4100.3, -4095.9, -0.7, 0.0, 1e-3, 0.4, 4095.95, 4096.07, 2 * 4096 + 0.3, 3 * 4096 + 1.7])
    z = bm.increments(ts, np.arange(n))[:, :, 0] / np.sqrt(np.diff(ts))[:, None]
    assert np.all(np.abs(z.mean(axis=1)) < 4 / np.sqrt(n))
    assert np.all(np.abs(z.var(axis=1, ddof=1) - 1) < 4 * np.sqrt(2 / (n - 1)))
    c = np.corrcoef(z)
    assert np.all(np.abs(c[~np.eye(len(ts) - 1, dtype=bool)]) < 4.5 / np.sqrt(n))


@pytest.mark.parametrize("method,order", [("euler", 0.5), ("milstein", 1.0)])
def test_float32_strong_orders_with_only_the_seed_fixed(method, order):
    """GBM (diagonal noise), float32 state and path, dt = 2**-3 .. 2**-7, 1500 paths, only the seed
    fixed: the fitted order within 0.15 of the scheme's (as for float64); the errors stay far above
    float32 rounding (1e-6)."""
    ts, y0, errs, dts = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.7]), [], [2.0**-k for k in range(3, 8)]
    for dt in dts:
        sol = sdesim.solve(gbm, y0, ts, method=method, dt=dt, n_paths=1500, seed=11, save_brownian=True,
                           dtype="float32", brownian_dtype="float32")
        errs.append(strong_error(sol.ys[-1].astype(np.float64), gbm_exact(sol.ts, sol.ws, y0)[-1])[0])
    slope, _, se = fit_order(dts, errs)
    assert abs(slope - order) < 0.15, (method, slope, se, errs)
    assert min(errs) > 100 * EPS32


def test_bad_float32_path_arguments_are_refused():
    with pytest.raises(ValueError, match="dtype"):
        BrownianPath(1, 2, dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        BrownianPath(1, 2, dtype="complex")
    ts = np.arange(3) * 0.1
    with pytest.raises(ValueError, match="brownian_dtype"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, bm=BrownianPath(1, 2, unit=0.1), brownian_dtype="float32")
    with pytest.raises(ValueError, match="dtype"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, brownian_dtype="int8")
    with pytest.raises(ValueError, match="device='cpu' only"):  # (GPUUnsupportedError, with or without a GPU)
        sdesim.solve(gbm, np.ones(2), ts, dt=0.1, device="cuda", brownian_dtype="float32")

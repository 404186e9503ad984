"""The Brownian path as users expect it: one path per (seed, path index), a function of absolute time.

Properties (hypothesis) over step refinements, start times, interval splits, path splits and
thread counts; the public BrownianPath against the solver; its law (covariances, Levy areas);
seeds as NumPy users expect; failed paths keep their true Brownian values.
"""

import warnings

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sdesim
from sdesim import BrownianPath
from sdesim.brownian.tree import TOP_LEVEL
from sdesim.reference import gbm

#: Units from different binades and mantissas (0.1 and 0.3 are not dyadic).
UNITS = [0.1, 0.3, 1.0, 2.5, 7.0]


@nb.njit
def _zero_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = 0.0


@nb.njit
def _unit_diffusion(t, y, args, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = 1.0 if i == j else 0.0


def _bm_sde(m):
    """dY = dW (additive): ys and ws are both the Brownian path."""
    return sdesim.SDE(_zero_drift, _unit_diffusion, dim=m, noise_dim=m, noise="additive", name=f"W{m}")


BM = {m: _bm_sde(m) for m in (1, 2, 3)}


def _ws(ts, dt, m=2, n_paths=3, seed=7, **kw):
    return sdesim.solve(BM[m], np.zeros(m), ts, dt=dt, n_paths=n_paths, seed=seed, save_brownian=True,
                        **kw).ws


@settings(max_examples=12, deadline=None)
@given(unit=st.sampled_from(UNITS), k=st.integers(-3, 2), refine=st.integers(1, 4), g0=st.integers(-40, 40),
       n=st.integers(1, 40), m=st.sampled_from([1, 2, 3]))
def test_every_dyadic_step_reads_the_same_path(unit, k, refine, g0, n, m):
    """dt and dt / 2**refine (any start on the grid, any length) see the same W at the grid points."""
    dt = unit * 2.0**k
    ts = (g0 + np.arange(n + 1)) * dt
    coarse = _ws(ts, dt, m)
    fine = _ws(ts, dt / 2**refine, m)
    scale = np.sqrt(max(ts[-1] - ts[0], dt))
    np.testing.assert_allclose(fine, coarse, rtol=0, atol=1e-12 * scale)
    bm = BrownianPath(7, m, unit=unit)
    np.testing.assert_allclose(bm.values(ts, np.arange(3), dt=dt), coarse, rtol=0, atol=1e-12 * scale)


@settings(max_examples=25, deadline=None)
@given(unit=st.sampled_from(UNITS), a=st.integers(-30, 30), split=st.integers(1, 30), rest=st.integers(1, 30),
       threads=st.integers(1, 3), dtype=st.sampled_from(["float64", "float32"]))
def test_a_continuation_continues_the_path_bitwise(unit, a, split, rest, threads, dtype):
    """solve [a, b] then [b, c] from the end state == solve [a, c] (Euler on GBM, same seed), in
    float64 and in native float32 (state and Brownian path; its W sums carry float32 rounding)."""
    dt = unit / 4
    ts = (a + np.arange(split + rest + 1)) * dt
    y0 = np.array([1.0, 0.7])
    kw = dict(dt=dt, n_paths=5, seed=3, save_brownian=True, n_threads=threads, dtype=dtype, brownian_dtype=dtype)
    whole = sdesim.solve(gbm, y0, ts, **kw)
    first = sdesim.solve(gbm, y0, ts[:split + 1], **kw)
    second = sdesim.solve(gbm, first.ys[-1], ts[split:], **kw)
    assert whole.ys.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(first.ys, whole.ys[:split + 1])
    np.testing.assert_array_equal(second.ys, whole.ys[split:])
    tol = 1e-12 if dtype == "float64" else 4 * (split + rest + 60) * np.finfo(np.float32).eps * np.abs(whole.ws).max()
    np.testing.assert_allclose(second.ws, whole.ws[split:] - whole.ws[split], rtol=0, atol=tol)


@settings(max_examples=20, deadline=None)
@given(n_paths=st.integers(2, 60), head=st.integers(1, 60), threads=st.integers(1, 3), seed=st.integers(0, 2**64 - 1),
       dtype=st.sampled_from(["float64", "float32"]))
def test_path_splits_and_thread_counts_change_no_bit(n_paths, head, threads, seed, dtype):
    """In float64 and in native float32 (state and path): bitwise; BrownianPath reads the same W
    (float32: up to the rounding of the float32 sums, 2 N eps32 of the largest value)."""
    head = min(head, n_paths)
    ts = np.array([0.0, 0.3, 1.0, 2.0])  # 0.3 is off the grid of dt = 0.25: bridged
    kw = dict(dtype=dtype, brownian_dtype=dtype)
    whole = _ws(ts, 0.25, n_paths=n_paths, seed=seed, n_threads=1, **kw)
    part = _ws(ts, 0.25, n_paths=head, seed=seed, n_threads=threads, **kw)
    np.testing.assert_array_equal(part, whole[:, :head])
    bm = BrownianPath(seed, 2, unit=0.25, dtype=dtype)
    picked = np.arange(n_paths)[::-1][:head]
    tol = 1e-12 if dtype == "float64" else 2 * 80 * np.finfo(np.float32).eps * max(np.abs(whole).max(), 1.0)
    np.testing.assert_allclose(bm.values(ts, picked, dt=0.25), whole[:, picked], rtol=0, atol=tol)


@settings(max_examples=20, deadline=None)
@given(unit=st.sampled_from(UNITS), start=st.floats(-50, 50), gaps=st.lists(st.floats(0.01, 3.0), min_size=1,
                                                                          max_size=5))
def test_off_grid_times_read_the_same_path_at_every_step(unit, start, gaps):
    """Arbitrary start and save times (off the grid: shortened steps, bridged values) give the
    values BrownianPath gives at those times, for dt and dt / 4."""
    ts = start + np.cumsum([0.0] + gaps)
    bm = BrownianPath(7, 2, unit=unit)
    ref = bm.values(ts, np.arange(3))
    for dt in (unit, unit / 4):  # (snapping does not depend on dt: no exception near the grid)
        np.testing.assert_allclose(_ws(ts, dt), ref, rtol=0, atol=1e-11)


@pytest.mark.parametrize("offset", [1e-11, 3e-10, -2e-10, 1e-14, -5e-17, 2.0**-45])
def test_a_time_near_the_grid_reads_the_same_value_at_every_dt(offset):
    """Found by the property suite: a time within 1e-9 dt of the grid of dt (but not of dt / 8's)
    was snapped by one solve and not the other, which then read W a few 1e-6 apart. Snapping now
    depends on the time alone: every dt reads BrownianPath's value, and float noise
    (|offset| <= 1e-12) still lands on the grid."""
    ts = np.array([offset, 0.5 + offset, 1.0 - offset])
    ref = BrownianPath(7, 2, unit=0.25).values(ts, np.arange(3))
    for dt in (0.25, 0.25 / 8, 0.25 / 64):
        np.testing.assert_allclose(_ws(ts, dt), ref, rtol=0, atol=1e-12)
    if abs(offset) <= 1e-12:  # snapped: the grid values themselves
        np.testing.assert_array_equal(BrownianPath(7, 2, unit=0.25).coordinates(ts), [0.0, 0.5, 1.0])


def test_solution_hands_back_its_path_and_bm_reads_it_again():
    ts = np.linspace(0.0, 3.0, 7)
    sol = sdesim.solve(gbm, np.array([1.0, 0.7]), ts, dt=0.125, n_paths=4, seed=11, save_brownian=True)
    assert sol.brownian == BrownianPath(11, 2, unit=0.5)  # the same family: the same path
    again = sdesim.solve(gbm, np.array([1.0, 0.7]), ts, dt=0.0625, n_paths=4, bm=sol.brownian, save_brownian=True)
    np.testing.assert_allclose(again.ws, sol.ws, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sol.brownian.values(ts, np.arange(4), dt=sol.dt), sol.ws, rtol=0, atol=1e-12)


def test_absolute_values_and_increments_agree():
    bm = BrownianPath(5, 3, unit=1.0)
    ts = np.array([-7000.5, -3.0, 0.0, 0.25, 4095.0, 4096.0, 9000.125])
    w = bm(ts, [0, 9])
    np.testing.assert_allclose(bm(np.array([0.0]), [0, 9]), 0.0, atol=0)
    np.testing.assert_allclose(bm.increments(ts, [0, 9]), np.diff(w, axis=0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(bm.values(ts, [0, 9]), w - w[0], rtol=0, atol=1e-10)


def test_increments_have_the_law_of_brownian_motion_across_the_tree():
    """Increments over intervals that straddle top nodes, start at negative times and sit off
    every grid: independent, mean 0, variance = length. Tolerances: 4 standard errors
    (variance: sd = var sqrt(2 / (n - 1)); correlation: sd = 1 / sqrt(n))."""
    n = 20000
    bm = BrownianPath(123, 1, unit=1.0)
    ts = np.array([-4100.3, -4095.9, -0.7, 0.0, 1e-3, 0.4, 4095.95, 4096.07, 2 * 4096 + 0.3, 3 * 4096 + 1.7])
    inc = bm.increments(ts, np.arange(n))[:, :, 0]
    lengths = np.diff(ts)
    z = inc / np.sqrt(lengths)[:, None]
    assert np.all(np.abs(z.mean(axis=1)) < 4 / np.sqrt(n))
    assert np.all(np.abs(z.var(axis=1, ddof=1) - 1) < 4 * np.sqrt(2 / (n - 1)))
    c = np.corrcoef(z)
    off = c[~np.eye(len(lengths), dtype=bool)]
    assert np.all(np.abs(off) < 4.5 / np.sqrt(n))  # 72 correlations: 4.5 sd keeps the family-wise rate < 1e-3


def test_levy_area_has_its_law():
    """Discrete Levy area over [s, s + h] from p pieces: mean 0 and variance h**2 / 4 (1 - 1/p**2)
    (the exact variance of the polygon area of a p-step Brownian walk; -> h**2 / 4 as p grows)."""
    n, h, p = 20000, 0.5, 16
    bm = BrownianPath(4, 2, unit=0.5)
    a = bm.levy_area(3.0, 3.0 + h, np.arange(n), substeps=p)
    assert a.shape == (n, 2, 2)
    np.testing.assert_array_equal(a[:, 0, 1], -a[:, 1, 0])
    x = a[:, 0, 1]
    expect = h**2 / 4 * (1 - 1 / p**2)
    assert abs(x.mean()) < 4 * np.sqrt(expect / n)
    # the area is not Gaussian (kurtosis 5, Levy): sd of the sample variance sqrt((k - 1) / n) var
    assert abs(x.var() - expect) < 4 * np.sqrt(4.0 / n) * expect


def test_seeds_as_numpy_users_expect():
    ts = np.arange(5) * 0.5
    a = _ws(ts, 0.5, seed=42)
    b = _ws(ts, 0.5, seed=np.random.SeedSequence(42))
    np.testing.assert_array_equal(a, b)
    kids = np.random.SeedSequence(42).spawn(2)
    k0 = _ws(ts, 0.5, n_paths=4000, seed=kids[0])
    k1 = _ws(ts, 0.5, n_paths=4000, seed=kids[1])
    assert not np.any(k0[-1, :3] == a[-1])
    r = np.corrcoef(k0[-1].ravel(), k1[-1].ravel())[0, 1]
    assert abs(r) < 4 / np.sqrt(k0[-1].size)
    with pytest.raises(TypeError, match="SeedSequence"):
        _ws(ts, 0.5, seed=1.5)


def test_failed_paths_keep_their_true_brownian_values():
    @nb.njit
    def blowup(t, y, args, out):
        out[0] = 3.0 * y[0] * y[0]

    @nb.njit
    def one(t, y, args, out):
        out[0] = 1.0

    sde = sdesim.SDE(blowup, one, dim=1, noise="scalar", name="blowup")
    ts = np.linspace(0.0, 2.0, 9)
    sol = sdesim.solve(sde, np.ones(1), ts, dt=0.01, n_paths=8, seed=2, save_brownian=True, on_nonfinite="flag")
    assert sol.failed.size > 0
    np.testing.assert_allclose(sol.ws, sol.brownian.values(ts, np.arange(8), dt=0.01), rtol=0, atol=1e-12)
    assert np.all(sol.ws[-1, sol.failed] != 0.0)


def test_steps_wider_than_a_top_node():
    """dt = 3 * 4096 (coarse: a step sums top nodes): the same path as dt / 8, law N(0, t)."""
    unit = 3.0
    dt = unit * 2.0**TOP_LEVEL
    ts = np.arange(4) * dt
    np.testing.assert_allclose(_ws(ts, dt), _ws(ts, dt / 8), rtol=1e-12, atol=0)
    w = _ws(ts, dt, m=1, n_paths=4000)[-1, :, 0] / np.sqrt(ts[-1])
    assert abs(w.var(ddof=1) - 1) < 4 * np.sqrt(2 / 3999)
    with pytest.raises(ValueError, match="off the step grid|grid of dt"):
        _ws(np.array([0.0, 1.5 * dt]), dt)


def test_bad_brownian_arguments_are_refused():
    ts = np.arange(3) * 0.1
    with pytest.raises(ValueError, match="power of two"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.03, bm=BrownianPath(1, 2, unit=0.1))
    with pytest.raises(ValueError, match="noise_dim"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, bm=BrownianPath(1, 3, unit=0.1))
    with pytest.raises(ValueError, match="either seed or bm"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, seed=1, bm=BrownianPath(1, 2, unit=0.1))
    with pytest.raises(TypeError, match="BrownianPath"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, bm="path")
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="unit"):
            BrownianPath(1, 2, unit=bad)
    with pytest.raises(ValueError, match="noise_dim"):
        BrownianPath(1, 0)
    with pytest.raises(ValueError, match="paths"):
        BrownianPath(1, 2).values([0.0, 1.0], [-1])
    with pytest.warns(DeprecationWarning, match="brownian_dt"):
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1, brownian_dt=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sdesim.solve(BM[2], np.zeros(2), ts, dt=0.1)

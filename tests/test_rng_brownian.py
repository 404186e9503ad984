"""Random numbers and Brownian paths: known answers, distribution, reproducibility, refinement."""

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

import sdesim
from sdesim.brownian.rng import normal_at, normals_range, philox4x32, seed_to_key
from sdesim.reference import gbm, noncommutative

U = np.uint64


@pytest.mark.parametrize("ctr,key,expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(ctr, key, expected):
    """Random123's published known-answer vectors for Philox4x32-10."""
    a, b = philox4x32(*[U(c) for c in ctr], *[U(k) for k in key])
    got = (int(a) & 0xFFFFFFFF, int(a) >> 32, int(b) & 0xFFFFFFFF, int(b) >> 32)
    assert got == expected


@nb.njit
def _block(k0, k1, n):
    out = np.empty(n)
    tmp = np.empty(1000)
    for i in range(n // 1000):
        normals_range(k0, k1, 3, 0, 1000, i, 17, tmp)
        out[i * 1000:(i + 1) * 1000] = tmp
    return out


def test_normals_are_standard_normal():
    z = _block(*seed_to_key(2024), 400_000)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the tails (ziggurat base strip and tail algorithm) carry the right mass
    tail = np.mean(np.abs(z) > 3.0)
    p = 2 * stats.norm.sf(3.0)
    assert abs(tail - p) < 4 * np.sqrt(p * (1 - p) / n)


@nb.njit
def _range_vs_at(k0, k1, tag, start, count, cell, path):
    out = np.empty(count)
    normals_range(k0, k1, tag, start, count, cell, path, out)
    wide = np.zeros((count, 2))
    normals_range(k0, k1, tag, start, count, cell, path, wide[:, 1])  # a strided view: plain 64-bit stores
    ref = np.empty(count)
    for i in range(count):
        ref[i] = normal_at(k0, k1, tag, start + i, cell, path)
    return out, wide[:, 1].copy(), ref


@settings(max_examples=40, deadline=None)
@given(tag=st.integers(0, 40), start=st.integers(0, 2**40), count=st.integers(1, 300),
       cell=st.integers(0, 2**32 - 1), path=st.integers(0, 2**32 - 1), seed=st.integers(0, 2**64 - 1))
def test_block_draws_equal_random_access_draws(tag, start, count, cell, path, seed):
    out, strided, ref = _range_vs_at(*seed_to_key(seed), tag, start, count, cell, path)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(strided, ref)


TS = np.array([0.0, 0.3, 0.5, 0.77, 1.0])


def test_increments_are_independent_normal_with_variance_dt():
    dt = 2.0**-6
    ts = np.arange(0, 65) * dt
    w = sdesim.brownian_path(ts, noise_dim=3, n_paths=2000, seed=3)
    inc = np.diff(w, axis=0).ravel() / np.sqrt(dt)
    assert stats.kstest(inc, "norm").pvalue > 1e-3
    # distinct components and steps are uncorrelated
    flat = np.diff(w, axis=0).reshape(64, 2000, 3)
    c = np.corrcoef(flat[:, :, 0].ravel(), flat[:, :, 1].ravel())[0, 1]
    assert abs(c) < 4 / np.sqrt(flat[:, :, 0].size)


@pytest.mark.parametrize("dt", [2.0**-4, 0.3 / 4])
def test_off_grid_values_have_brownian_covariance(dt):
    """W at non-dyadic times (bridged to the tree's leaves) has Cov(W_s, W_t) = min(s, t)."""
    w = sdesim.brownian_path(TS, n_paths=20000, seed=9, dt=dt)[:, :, 0]
    cov = np.cov(w[1:])
    expect = np.minimum.outer(TS[1:], TS[1:])
    se = np.sqrt((expect**2 + np.outer(TS[1:], TS[1:])) / w.shape[1])  # sd of a sample covariance
    assert np.all(np.abs(cov - expect) < 4 * se)


def test_refinement_same_path_and_coarse_increments_are_sums_of_fine():
    B = 2.0**-2
    ws = [sdesim.brownian_path(TS, noise_dim=2, n_paths=50, seed=4, dt=B / 2**j) for j in range(5)]
    for w in ws[1:]:
        np.testing.assert_allclose(w, ws[0], rtol=0, atol=1e-13)
    # dyadic grid: the coarse increment is the sum of the fine ones
    grid_c = np.arange(0, 9) * B / 2
    grid_f = np.arange(0, 33) * B / 8
    wc = sdesim.brownian_path(grid_c, n_paths=20, seed=4, dt=B)
    wf = sdesim.brownian_path(grid_f, n_paths=20, seed=4, dt=B)
    np.testing.assert_allclose(np.diff(wc, axis=0), np.diff(wf, axis=0).reshape(8, 4, 20, 1).sum(1),
                               rtol=0, atol=1e-13)


def test_path_depends_on_seed_and_index_only():
    y0 = np.array([1.0, 0.7])
    kw = dict(dt=2.0**-5, seed=21, save_brownian=True)
    full = sdesim.solve(gbm, y0, TS, n_paths=300, n_threads=2, **kw)
    one_thread = sdesim.solve(gbm, y0, TS, n_paths=300, n_threads=1, **kw)
    fewer = sdesim.solve(gbm, y0, TS, n_paths=77, n_threads=2, **kw)
    np.testing.assert_array_equal(full.ys, one_thread.ys)
    np.testing.assert_array_equal(full.ys[:, :77], fewer.ys)
    np.testing.assert_array_equal(full.ws[:, :77], fewer.ws)
    other = sdesim.solve(gbm, y0, TS, n_paths=300, n_threads=2, **{**kw, "seed": 22})
    assert not np.any(other.ys[-1] == full.ys[-1])


def test_per_path_y0_blocks_give_the_same_paths():
    rng = np.random.default_rng(0)
    y0 = rng.uniform(0.5, 1.5, size=(200, 2))
    kw = dict(dt=2.0**-4, seed=2)
    whole = sdesim.solve(gbm, y0, TS, **kw)
    head = sdesim.solve(gbm, y0[:130], TS, **kw)
    np.testing.assert_array_equal(whole.ys[:, :130], head.ys)


def test_general_noise_results_do_not_depend_on_threads():
    y0 = np.array([0.3, 0.0])
    kw = dict(method="milstein", dt=2.0**-3, n_paths=150, seed=8)
    a = sdesim.solve(noncommutative, y0, TS, n_threads=1, **kw)
    b = sdesim.solve(noncommutative, y0, TS, n_threads=2, **kw)
    np.testing.assert_array_equal(a.ys, b.ys)


@pytest.mark.parametrize("method", ["euler", "milstein"])
def test_block_increments_equal_the_step_by_step_walk(method):
    """With every save time on the grid and no Levy areas, the kernel makes the increments of a
    block of steps together (one draw per tree depth). One extra off-grid save time after the grid
    turns that off for the whole solve (the walk then gives each step's node); every earlier state
    and Brownian value must be bitwise the same."""
    from sdesim.normalized import SphereModel, sgd_sde

    sphere = sgd_sde(SphereModel(6), 0.1, 0.01)
    for sde, y0 in ((gbm, np.array([1.0, 0.7])), (sphere, np.full(6, 0.8))):
        if method == "milstein" and sde is sphere:
            continue  # general noise: Milstein needs Levy areas, hence the tree anyway
        ts = np.arange(9) * 0.25
        kw = dict(method=method, dt=0.25, n_paths=7, seed=5, save_brownian=True, n_threads=1)
        direct = sdesim.solve(sde, y0, ts, **kw)
        tree = sdesim.solve(sde, y0, np.append(ts, 2.1), **kw)
        np.testing.assert_array_equal(direct.ys, tree.ys[:-1])
        np.testing.assert_array_equal(direct.ws, tree.ws[:-1])

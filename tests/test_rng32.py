"""Float32 normals four per Philox call (sdesim.brownian.rng32): the float32 Box-Muller transform
against the exact one in float64, block draws equal random access, standard normal law (moments
with standard errors, KS, both tails), no correlation between the four normals of a block or
between neighbours."""

import numba as nb
import numpy as np
from hypothesis import given, settings, strategies as st
from scipy import stats

from sdesim.brownian.rng import normals_range, seed_to_key
from sdesim.brownian.rng32 import _pair, normal32_at, normals_range32


@nb.njit(error_model="numpy")
def _pairs(words):
    out = np.empty((words.size, 2), np.float32)
    for i in range(words.size):
        out[i, 0], out[i, 1] = _pair(words[i])
    return out


def test_the_float32_transform_is_box_muller_to_float32_accuracy():
    """Every word pair: the float32 polynomials give ``R cos``/``R sin`` of the exact float64
    transform of the same words within 4 float32 ulps of ``R`` (measured: 2.5; the ``ln``, ``sqrt``, the angle
    reduction, the two series and the products each add about one), over 200,000 random words and
    the extremes (u at its least and its largest, the angle at every quarter turn)."""
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**64, 200_000, dtype=np.uint64)
    low = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint64)
    high = np.array([0, 1 << 8, 1 << 30, 1 << 31, 3 << 30, 2**32 - 256, 2**32 - 1], dtype=np.uint64)
    words = np.concatenate([words, (high[:, None] << np.uint64(32) | low[None, :]).ravel()])
    got = _pairs(words).astype(np.float64)
    a = (words & np.uint64(0xFFFFFFFF)).astype(np.float64)
    b = (words >> np.uint64(40)).astype(np.float64)
    # u as the generator forms it, in float32 (r is sensitive to u's rounding near u = 1)
    u = (a.astype(np.float32) * np.float32(2.0**-32) + np.float32(2.0**-33)).astype(np.float64)
    r = np.sqrt(-2 * np.log(u))
    theta = 2 * np.pi * b * 2.0**-24
    tol = 4 * np.spacing(np.float32(np.maximum(r, 1e-3))).astype(np.float64)
    assert np.all(np.abs(got[:, 0] - r * np.cos(theta)) <= tol)
    assert np.all(np.abs(got[:, 1] - r * np.sin(theta)) <= tol)
    assert np.all(np.isfinite(got)) and np.max(r) < 6.77


@nb.njit(error_model="numpy")
def _range_vs_at(k0, k1, tag, start, count, cell, path):
    out = np.empty(count, np.float32)
    normals_range32(k0, k1, tag, start, count, cell, path, out)
    ref = np.empty(count, np.float32)
    for i in range(count):
        ref[i] = normal32_at(k0, k1, tag, start + i, cell, path)
    return out, ref


@settings(max_examples=40, deadline=None)
@given(tag=st.integers(0, 40), start=st.integers(0, 2**40), count=st.integers(1, 300),
       cell=st.integers(0, 2**32 - 1), path=st.integers(0, 2**32 - 1), seed=st.integers(0, 2**64 - 1))
def test_block_draws_equal_random_access_draws(tag, start, count, cell, path, seed):
    out, ref = _range_vs_at(*seed_to_key(seed), tag, start, count, cell, path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


@nb.njit(error_model="numpy")
def _many(k0, k1, n_cells, m):
    out = np.empty(n_cells * m, np.float32)
    row = np.empty(m, np.float32)
    for c in range(n_cells):
        normals_range32(k0, k1, 3, 0, m, c, 17, row)
        out[c * m:(c + 1) * m] = row
    return out


def test_float32_normals_are_standard_normal():
    """1e6 normals: each moment within 4 of its standard errors (mean 1/sqrt(n), variance sqrt(2/n),
    kurtosis sqrt(24/n)), KS p > 1e-3, and the mass beyond 2, 3 and 4 (the tails the log's
    polynomial serves) within 4 binomial SE of the normal's."""
    z = _many(*seed_to_key(2026), 1000, 1000).astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(z, fisher=False) - 3) < 4 * np.sqrt(24 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    for edge in (2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(edge)
        assert abs(np.mean(np.abs(z) > edge) - p) < 4 * np.sqrt(p * (1 - p) / n), edge
    assert abs(np.mean(z > 0) - 0.5) < 4 * np.sqrt(0.25 / n)


def test_the_normals_of_a_block_and_neighbours_are_uncorrelated():
    """The four normals of a block (two Box-Muller pairs: cos and sin of one angle and radius) and
    neighbouring blocks: every correlation within 4 standard errors of 0, and so is the correlation
    of the squares within a pair (independence beyond correlation: R^2 cos^2 and R^2 sin^2)."""
    z = _many(*seed_to_key(5), 2500, 400).astype(np.float64).reshape(-1, 4)  # rows: the four words of a block
    n = z.shape[0]
    c = np.corrcoef(z.T)
    assert np.all(np.abs(c[np.triu_indices(4, 1)]) < 4 / np.sqrt(n))
    sq = np.corrcoef(z[:, 0] ** 2, z[:, 1] ** 2)[0, 1]  # (independent: SE 1/sqrt(n), any law with 4 moments)
    assert abs(sq) < 4 / np.sqrt(n)
    flat = z.ravel()
    assert abs(np.corrcoef(flat[:-4], flat[4:])[0, 1]) < 4 / np.sqrt(flat.size)  # the next block


@nb.njit(error_model="numpy")
def _both(k0, k1, n):
    z32 = np.empty(4 * n, np.float32)
    z64 = np.empty(2 * n)
    normals_range32(k0, k1, 0, 0, 4 * n, 9, 4, z32)
    normals_range(k0, k1, 0, 0, 2 * n, 9, 4, z64)
    return z32, z64


def test_the_float32_stream_is_independent_of_the_float64_one():
    """Same key, tag, cell and path: float32 normal 4g and float64 normal 2g come from different
    Philox blocks (the stream bit), so they are uncorrelated, and so are their signs."""
    z32, z64 = _both(*seed_to_key(11), 100_000)
    a, b = z32[::4].astype(np.float64), z64[::2]
    n = a.size
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(n)
    assert abs(np.mean(np.sign(a) == np.sign(b)) - 0.5) < 4 * np.sqrt(0.25 / n)


def test_every_partial_group_equals_random_access_draws():
    # every way a range can start and end inside a group of four (one group, two cut groups, ...)
    k0, k1 = seed_to_key(77)
    for start in range(1000, 1008):
        for count in range(0, 14):
            out, ref = _range_vs_at(k0, k1, 5, start, count, 3, 9)
            np.testing.assert_array_equal(out, ref)

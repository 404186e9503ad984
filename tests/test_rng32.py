"""Float32 normals four per Philox call (sdesim.brownian.rng32): block draws equal random access,
standard normal law (moments with standard errors, KS, both tails), no correlation between the four
words of a block or between neighbours."""

import numba as nb
import numpy as np
from hypothesis import given, settings, strategies as st
from scipy import stats

from sdesim.brownian.rng import normals_range, seed_to_key
from sdesim.brownian.rng32 import normal32_at, normals_range32


@nb.njit
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


@nb.njit
def _many(k0, k1, n_cells, m):
    out = np.empty(n_cells * m, np.float32)
    row = np.empty(m, np.float32)
    for c in range(n_cells):
        normals_range32(k0, k1, 3, 0, m, c, 17, row)
        out[c * m:(c + 1) * m] = row
    return out


def test_float32_normals_are_standard_normal():
    """1e6 normals: each moment within 4 of its standard errors (mean 1/sqrt(n), variance sqrt(2/n),
    kurtosis sqrt(24/n)), KS p > 1e-3, and the mass beyond 3 and beyond the ziggurat's tail edge r
    (drawn by the slow path) within 4 binomial SE of the normal's."""
    z = _many(*seed_to_key(2026), 1000, 1000).astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(z, fisher=False) - 3) < 4 * np.sqrt(24 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    for edge in (3.0, 3.6541528853610088):
        p = 2 * stats.norm.sf(edge)
        assert abs(np.mean(np.abs(z) > edge) - p) < 4 * np.sqrt(p * (1 - p) / n), edge
    assert abs(np.mean(z > 0) - 0.5) < 4 * np.sqrt(0.25 / n)


def test_the_words_of_a_block_and_neighbours_are_uncorrelated():
    z = _many(*seed_to_key(5), 2500, 400).astype(np.float64).reshape(-1, 4)  # rows: the four words of a block
    n = z.shape[0]
    c = np.corrcoef(z.T)
    assert np.all(np.abs(c[np.triu_indices(4, 1)]) < 4 / np.sqrt(n))
    flat = z.ravel()
    assert abs(np.corrcoef(flat[:-4], flat[4:])[0, 1]) < 4 / np.sqrt(flat.size)  # the next block


@nb.njit
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

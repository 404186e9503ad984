"""A descent of the Brownian tree drawn in one go (sdesim.brownian.descent) gives, bit for bit,
the normals that drawing its nodes one by one gives, in both precisions; it declines (draws
nothing) where its scratch is short or the nodes are wider than its limits."""

import numba as nb
import numpy as np
import pytest

from sdesim.brownian.descent import DESCENT_MAX_M32, DESCENT_MAX_M64, descent_normals, descent_scratch
from sdesim.brownian.nodes import TAG_SPLIT, TAG_TOP, node_normals
from sdesim.brownian.rng import seed_to_key
from sdesim.brownian.tree import level_keys

KEYS = level_keys(seed_to_key(11))


@nb.njit
def _both(keys, depth, g, path, m, z, zu, ref):
    drawn = descent_normals(keys, depth, g, path, m, z, zu)
    node_normals(keys, 0, TAG_TOP, g >> depth, path, m, ref[0])
    for level in range(depth):
        node_normals(keys, level, TAG_SPLIT, g >> (depth - level), path, m, ref[level + 1])
    return drawn


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype, max_m", [(np.float32, DESCENT_MAX_M32), (np.float64, DESCENT_MAX_M64)])
def test_descent_equals_node_by_node(dtype, max_m):
    rng = np.random.default_rng(5)
    for _ in range(400):
        m, depth = int(rng.integers(1, max_m + 1)), int(rng.integers(0, 40))
        if dtype == np.float32 and m % 32 == 0:  # (drawn node by node: test_descent_declines_...)
            m -= 1
        g = int(rng.integers(-2**45, 2**45)) >> int(rng.integers(0, 45))  # any sign, any size
        path = int(rng.integers(0, 2**32))
        n_z, n_zu = descent_scratch(depth, m)
        z, zu = np.full(n_z, np.nan, dtype), np.zeros(n_zu, np.uint32)
        ref = np.empty((depth + 1, m), dtype)
        assert _both(KEYS, depth, g, path, m, z, zu, ref)
        np.testing.assert_array_equal(_bits(z[:(depth + 1) * m].reshape(depth + 1, m)), _bits(ref))


@pytest.mark.parametrize("dtype, max_m", [(np.float32, DESCENT_MAX_M32), (np.float64, DESCENT_MAX_M64)])
def test_descent_declines_without_scratch_or_for_wide_nodes(dtype, max_m):
    depth, m = 7, 5
    n_z, n_zu = descent_scratch(depth, m)
    ref = np.empty((depth + 1, m), dtype)
    for z_size, zu_size in ((n_z - 1, n_zu), (n_z, n_zu - 1)):
        z = np.full(max(z_size, 0), 7.0, dtype)
        assert not _both(KEYS, depth, 3, 1, m, z, np.zeros(zu_size, np.uint32), ref)
        assert np.all(z == 7.0)  # nothing drawn
    big = np.zeros(8192, dtype), np.zeros(8192, np.uint32)
    for wide in (max_m + 1, 32) if dtype == np.float32 else (max_m + 1,):  # (float32: multiples of 32 too)
        assert not _both(KEYS, depth, 3, 1, wide, *big, np.empty((depth + 1, wide), dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_solves_read_the_tree_across_a_top_node_boundary(dtype):
    """A solve that starts inside one depth-0 node and steps into the next (u = 4096 at dt = 1: the
    walk descends afresh there, in one draw for these 10 components) reads the path BrownianPath
    evaluates node by node (its own code): the same W up to the rounding of the summed steps."""
    import sdesim
    from sdesim.brownian import BrownianPath
    from sdesim.normalized import SphereModel, sgd_sde

    sde = sgd_sde(SphereModel(10), 0.1, 1e-3)
    ts = np.arange(4090.0, 4101.0)
    sol = sdesim.solve(sde, np.full(10, 0.5), ts, dt=1.0, n_paths=6, seed=4, save_brownian=True, dtype=dtype,
                       brownian_dtype=dtype)
    ref = BrownianPath(4, 10, unit=1.0, dtype=dtype).values(ts, np.arange(6), dt=1.0)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(sol.ws, ref, rtol=0, atol=4 * ts.size * eps * np.abs(ref).max())

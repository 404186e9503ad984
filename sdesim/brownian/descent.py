"""All the normals of a descent from the top of the Brownian tree, in one vectorised draw.

A walk that starts a path, or crosses into a new depth-0 node, descends from the top
(:func:`sdesim.brownian.tree.walk_increment`): it needs the top node's increment and one split
per depth down to the step's depth, ``depth + 1`` nodes of ``m`` normals each. Drawn node by
node, each is a short draw (a node is 10 normals at ``d = 10``): the generators' vector loops
hardly start, and in float32 such draws cost about 8 ns per normal against 1.4 ns in long ones.
Here the Philox blocks of all the nodes go through one Philox loop and one transform loop (their
counter and key words written first by a short scalar pass), then each node's normals are moved
to their row. The values are those of :func:`sdesim.brownian.nodes.node_normals`, bit for bit: the same
counters, the same transforms.
"""

import numba as nb
import numpy as np

from numba.core import types
from numba.extending import overload

from .nodes import RUN_BITS, TAG_SPLIT, TAG_TOP, node_start
from .rng import _counter, _ziggurat_fast, _ziggurat_slow, float_as_bits, philox4x32, store_word
from .rng32 import _counter32, box_muller_in_place, store_words32

__all__ = ["DESCENT_MAX_M32", "DESCENT_MAX_M64", "descent_scratch", "descent_normals"]

#: Descents are drawn in one go for nodes of up to this many normals, float32 and float64, except
#: float32 nodes of a multiple of 32 normals (whole vector passes already). Measured, a descent of 9
#: nodes, ns per normal one go / node by node: float32 m = 10: 4.2 / 10.2, m = 24: 2.9 / 6.4,
#: m = 40: 2.8 / 3.8, m = 48: 2.4 / 2.5, m = 32: 2.7 / 2.2, m = 64: 2.3 / 1.7; float64 m = 8: 7.0 / 7.3,
#: m = 10: 5.9 / 6.2, m = 11: 6.7 / 6.3.
DESCENT_MAX_M32, DESCENT_MAX_M64 = 63, 10


@nb.njit(inline="always", cache=True, fastmath=False)
def _max_blocks(m, per_block):
    """The most Philox blocks a node's ``m`` normals can touch (its range may start anywhere in its
    first block of ``per_block`` normals)."""
    return (m + 2 * per_block - 2) // per_block


#: Philox blocks are drawn in multiples of this (whole passes of the vector loops).
PAD_BLOCKS = 16


@nb.njit(inline="always", cache=True, fastmath=False)
def _padded(n):
    return (n + PAD_BLOCKS - 1) // PAD_BLOCKS * PAD_BLOCKS


@nb.njit(inline="always", cache=True, fastmath=False)
def descent_scratch(depth, m):
    """``(numbers, words)``: the float scratch ``z`` (of either precision) and the uint32 scratch
    ``zu`` that :func:`descent_normals` needs for a descent to ``depth``; ``(0, 0)`` where descents
    of ``m`` normals are not drawn in one go."""
    if m > max(DESCENT_MAX_M32, DESCENT_MAX_M64) or depth < 0:
        return 0, 0
    blocks = _padded((depth + 1) * _max_blocks(m, 2))  # (at least as many as in float32)
    return max(4 * _padded((depth + 1) * _max_blocks(m, 4)), 2 * blocks), 5 * blocks


@nb.njit(inline="always", cache=True, fastmath=False)
def _slot(keys, depth, g, r, m):
    """Node ``r`` of the descent to node ``g`` at ``depth``: ``r = 0`` the top node's increment,
    ``r = l + 1`` the split at depth ``l``. Returns its key words, tag, first counter index, cell."""
    level = max(r - 1, 0)
    i = np.int64(g) >> (depth - level)
    tag = TAG_TOP if r == 0 else TAG_SPLIT
    return keys[level, 0], keys[level, 1], tag, node_start(i, m), i >> RUN_BITS


@nb.njit(inline="always", cache=True, fastmath=False)
def _plan_blocks(keys, depth, g, path, m, u, per_block, float32):
    """Write the counter and key words of every Philox block of the descent into the uint32 array
    ``u`` (five rows of ``cap`` words: c0, c1, c2, k0, k1), node after node; returns the number of
    blocks and ``cap``. (A scalar pass: the vector pass that follows reads these rows in order,
    where computing the keys there would need gathers, which the compiler does not emit here.)"""
    cap = _padded((depth + 1) * _max_blocks(m, 2))
    n = 0
    for r in range(depth + 1):
        k0, k1, tag, s, cell = _slot(keys, depth, g, r, m)
        first = s // per_block
        for b in range(((s % per_block) + m + per_block - 1) // per_block):
            if float32:
                c0, c1, c2, _ = _counter32(tag, first + b, cell, path)
            else:
                c0, c1, c2, _ = _counter(tag, first + b, cell, path)
            u[n] = c0
            u[cap + n] = c1
            u[2 * cap + n] = c2
            u[3 * cap + n] = k0
            u[4 * cap + n] = k1
            n += 1
    for j in range(n, _padded(n)):  # (repeats of the last block, so that the vector loops run whole)
        for row in range(5):
            u[row * cap + j] = u[row * cap + n - 1]
    return _padded(n), cap


@nb.njit(inline="always", cache=True, fastmath=False)
def _block_words(u, cap, j, c3):
    """Philox block ``j`` of the plan in ``u``: its two output words, counter and key words."""
    c0, c1, c2 = np.uint64(u[j]), np.uint64(u[cap + j]), np.uint64(u[2 * cap + j])
    k0, k1 = np.uint64(u[3 * cap + j]), np.uint64(u[4 * cap + j])
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    return a, b, c0, c1, c2, k0, k1


@nb.njit(inline="always", cache=True, fastmath=False)
def _to_rows(keys, depth, g, m, z, per_block):
    """Node ``r``'s normals, from its first block's place plus its offset in that block, moved to
    ``z[r m: (r + 1) m]`` (in increasing order: every move is to a lower or equal place)."""
    src = 0
    for r in range(depth + 1):
        lead = _slot(keys, depth, g, r, m)[3] % per_block
        dst = r * m
        for c in range(m):
            z[dst + c] = z[src + lead + c]
        src += ((lead + m + per_block - 1) // per_block) * per_block


@nb.njit(inline="always", cache=True, fastmath=False)
def _philox_pass(keys, depth, g, path, m, z, u, float32):
    """The plan of the descent's Philox blocks (:func:`_plan_blocks`), then every block's raw words
    into ``z`` (four float32 numbers a block, or two float64) in one vector loop; returns ``(n, cap,
    c3)``: the number of blocks, the plan's row length and the path's counter word."""
    n, cap = _plan_blocks(keys, depth, g, path, m, u, 4 if float32 else 2, float32)
    c3 = np.uint64(path) & np.uint64(0xFFFFFFFF)
    for j in range(n):
        a, b = _block_words(u, cap, j, c3)[:2]
        if float32:  # (a compile-time constant: no branch in the loop)
            store_words32(z, 4 * j, a, b)
        else:
            store_word(z, 2 * j, a)
            store_word(z, 2 * j + 1, b)
    return n, cap, c3


@nb.njit(inline="always", cache=True, fastmath=False)
def _descent32(keys, depth, g, path, m, z, u):
    n = _philox_pass(keys, depth, g, path, m, z, u, True)[0]
    box_muller_in_place(z, 0, 2 * n)
    _to_rows(keys, depth, g, m, z, 4)


@nb.njit(inline="always", cache=True, fastmath=False)
def _descent64(keys, depth, g, path, m, z, u):
    n, cap, c3 = _philox_pass(keys, depth, g, path, m, z, u, False)
    n_rejected = 0
    for i in range(2 * n):
        x = _ziggurat_fast(float_as_bits(z[i]))
        n_rejected += np.isnan(x)
        z[i] = x
    i = 0
    while n_rejected:  # the rejected words (about 1.5%), repaired as rng.normals_range does
        if np.isnan(z[i]):
            a, b, c0, c1, c2, k0, k1 = _block_words(u, cap, i >> 1, c3)
            z[i] = _ziggurat_slow(b if i & 1 else a, k0, k1, c0, c1, c2, c3, np.uint64(i & 1))
            n_rejected -= 1
        i += 1
    _to_rows(keys, depth, g, m, z, 2)


def descent_normals(keys, depth, g, path, m, z, zu):
    """``z[r m + c]``: normal ``c`` of node ``r`` of the descent to node ``g`` at ``depth`` on path
    ``path`` (``r = 0``: the top node's increment, ``TAG_TOP`` at depth 0; ``r = l + 1``: the split
    at depth ``l``, ``TAG_SPLIT``), as :func:`~sdesim.brownian.nodes.node_normals` gives them, in
    ``z``'s precision; returns True. ``z`` (C-contiguous) and ``zu`` (uint32, a separate array: the
    compiler keeps a loop that reads and writes one array on scalar code) are scratch of at least
    the sizes :func:`descent_scratch` gives. Returns False, drawing nothing, where the scratch is
    smaller or the nodes are wider than :data:`DESCENT_MAX_M32` / :data:`DESCENT_MAX_M64` or a
    multiple of 32 float32 normals (then draw node by node). The precision is chosen at compile time by the overload below; this body
    serves interpreted runs, which always draw node by node (the same numbers)."""
    return False


@nb.njit(inline="always", cache=True, fastmath=False)
def _fits(depth, m, z, zu, max_m):
    need_z, need_zu = descent_scratch(depth, m)
    return m <= max_m and need_z > 0 and z.size >= need_z and zu.size >= need_zu


@overload(descent_normals, jit_options={"fastmath": False, "error_model": "numpy"})
def _descent_normals(keys, depth, g, path, m, z, zu):
    if z.dtype == types.float32:
        def impl(keys, depth, g, path, m, z, zu):
            if m % 32 == 0 or not _fits(depth, m, z, zu, DESCENT_MAX_M32):
                return False
            _descent32(keys, depth, g, path, m, z, zu)
            return True
    else:
        def impl(keys, depth, g, path, m, z, zu):
            if not _fits(depth, m, z, zu, DESCENT_MAX_M64):
                return False
            _descent64(keys, depth, g, path, m, z, zu)
            return True
    return impl

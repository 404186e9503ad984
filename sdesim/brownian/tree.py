"""The Brownian path as a function of absolute time: one tree over the whole time axis (compiled helpers).

A path is fixed by a Philox key (from the seed), the path index and a *unit* (the step family:
solves with ``dt = unit * 2**k`` for any integer ``k`` read the same path). Write the unit as
``f * 2**e`` with ``f`` in [1, 2); time ``t`` is read in tree coordinates ``u = t / f``, so the
path of unit ``f`` is the canonical path ``W_1`` with time scaled: ``W_f(t) = sqrt(f) W_1(t / f)``.

The canonical path is a dyadic Brownian tree (Levy's construction) over absolute time. A node at
depth ``l`` (``0 .. MAX_DEPTH``) with index ``i`` (any sign) covers ``u`` in
``[i 2**(TOP_LEVEL - l), (i + 1) 2**(TOP_LEVEL - l))``:

* depth 0 (width ``2**TOP_LEVEL``): independent increments ``2**(TOP_LEVEL / 2) Z``;
* a node with increment ``D`` splits into a left child ``D / 2 + s Z`` and a right child
  ``D / 2 - s Z``, ``s = sqrt(width) / 2``: the midpoint law of the Brownian bridge;
* a point on no node boundary down to its leaf depth (:func:`leaf_depth`, about 48 bits below
  ``|u|``) is bridged inside that leaf.

``Z`` is normal number ``c`` (component ``c``) of the counter ``(tag, node i, path)`` under the key
of depth ``l`` (:func:`level_keys`). Every value is therefore a function of (key, path, unit,
time) alone: a step ``dt`` reads the nodes of its depth; ``dt / 2`` reads one depth more of the
same tree; a solve on [1, 2] continues one on [0, 1]. Sequential steps cost one split (``m``
normals) per step on average (:func:`walk_increment`); the first step of a path descends from the
top (``TOP_LEVEL - log2(dt / f)`` splits, their normals drawn in one go for narrow nodes:
:mod:`sdesim.brownian.descent`). Which normals a node owns: :mod:`sdesim.brownian.nodes`.
"""

import math

import numba as nb
import numpy as np

from .descent import descent_normals
from .nodes import RUN_BITS, TAG_BRIDGE, TAG_SPLIT, TAG_TOP, node_normals, nodes_normals
from .rng import TAG_BITS, philox4x32

__all__ = ["TOP_LEVEL", "MAX_DEPTH", "TAG_TOP", "TAG_SPLIT", "TAG_BRIDGE", "unit_scale", "level_keys",
           "sd_by_depth", "leaf_depth", "RUN_BITS", "node_normals", "nodes_normals", "walk_increment", "fill_increments", "coarse_increment", "fill_node",
           "leaf_position", "bridge_point"]

#: Depth-0 nodes have width ``f * 2**TOP_LEVEL`` (4096 to 8192 time units) and are independent.
TOP_LEVEL = 12
#: Deepest depth below the top (node indices stay below 2**60 for |u| < 2**(TOP_LEVEL + 1)).
MAX_DEPTH = 59
#: Tag under the seed's own key from which the level keys are drawn (SGD's tags are 40-43).
_TAG_KEYS = (1 << TAG_BITS) - 1


def unit_scale(unit):
    """``(f, e)`` with ``unit = f * 2**e`` exactly, ``f`` in [1, 2)."""
    mant, exp = math.frexp(float(unit))
    return 2.0 * mant, exp - 1


@nb.njit(cache=True, fastmath=False)
def _level_keys(k0, k1, out):
    for depth in range(out.shape[0]):
        a, b = philox4x32(np.uint64(_TAG_KEYS), np.uint64(depth), np.uint64(0), np.uint64(0), k0, k1)
        out[depth, 0] = a & np.uint64(0xFFFFFFFF)
        out[depth, 1] = b & np.uint64(0xFFFFFFFF)


def level_keys(key):
    """The Philox key words of each depth, ``(MAX_DEPTH + 1, 2)`` uint64, from the seed's ``key``."""
    out = np.empty((MAX_DEPTH + 1, 2), dtype=np.uint64)
    _level_keys(np.uint64(key[0]), np.uint64(key[1]), out)
    return out


def sd_by_depth(f):
    """``sqrt(width) / 2`` of the nodes of each depth for scale ``f`` (``(MAX_DEPTH + 1,)``), and the
    standard deviation ``sqrt(width)`` of a depth-0 increment."""
    depths = np.arange(MAX_DEPTH + 1, dtype=np.float64)
    return 0.5 * np.sqrt(f * 2.0 ** (TOP_LEVEL - depths)), math.sqrt(f * 2.0**TOP_LEVEL)


def leaf_depth(u):
    """Depth of the leaf in which the tree coordinate ``u`` (a number or an array) is bridged:
    ``MAX_DEPTH`` for ``|u| < 2**(TOP_LEVEL + 1)``, one less per binade above (node indices stay
    below 2**60)."""
    e = np.frexp(np.abs(np.asarray(u, dtype=np.float64)))[1] - 1
    return MAX_DEPTH - np.maximum(0, e - TOP_LEVEL)


@nb.njit(cache=True, fastmath=False)
def walk_increment(keys, sds, top_sd, depth, g, fresh, path, m, stack, z, zu, out):
    """``out[:m]``: the increment of node ``g`` at ``depth >= 0``.

    Called for ``g, g + 1, ...`` in turn (``fresh`` for the first), it keeps the pending right
    siblings in ``stack`` (``(depth + 1, m)``) and costs one split per call on average; a fresh
    call descends from the top. ``z``: scratch (C-contiguous, of size ``>= m``); where ``z`` and the
    uint32 scratch ``zu`` have the sizes :func:`~sdesim.brownian.descent.descent_scratch` gives, a
    descent draws all its normals in one go (the same numbers, faster for narrow nodes).
    """
    local = g & ((np.int64(1) << depth) - 1)
    batched = False  # (a descent from the top, all its nodes drawn in one go: descent.py)
    if fresh or local == 0:
        batched = descent_normals(keys, depth, g, path, m, z, zu)
        if not batched:
            node_normals(keys, 0, TAG_TOP, g >> depth, path, m, z)
        for c in range(m):
            out[c] = top_sd * z[c]
        start = 0
    else:
        tz = 0
        while not (local >> tz) & 1:
            tz += 1
        start = depth - tz
        for c in range(m):
            out[c] = stack[start, c]
    one_half = sds.dtype.type(0.5)  # (a float32 path splits in float32: the same numbers, half the work)
    for level in range(start, depth):
        if not batched:
            node_normals(keys, level, TAG_SPLIT, g >> (depth - level), path, m, z)
        zl = z[(level + 1) * m:] if batched else z  # (a row view: no wraparound select per component)
        s = sds[level]
        # both children by one loop whichever is taken, so that a continued walk and a fresh one
        # (and fill_increments) compute every node with the very same instructions: bitwise equal
        for c in range(m):
            half = one_half * out[c]
            stack[level + 1, c] = half - s * zl[c]
            out[c] = half + s * zl[c]
        if (g >> (depth - level - 1)) & 1:
            for c in range(m):
                out[c] = stack[level + 1, c]


@nb.njit(cache=True, fastmath=False)
def coarse_increment(keys, top_sd, span, g, path, m, z, out):
    """``out[:m]``: the increment over ``span`` consecutive depth-0 nodes from ``g * span`` (steps
    wider than a depth-0 node)."""
    for c in range(m):
        out[c] = 0.0
    for j in range(g * span, (g + 1) * span):
        node_normals(keys, 0, TAG_TOP, j, path, m, z)
        for c in range(m):
            out[c] += top_sd * z[c]


@nb.njit(cache=True, fastmath=False)
def fill_node(keys, sds, depth, g, levels, path, m, inc, buf, z):
    """``buf[j, c] = W_c(start + j w / 2**levels) - W_c(start)`` for ``j = 0 .. 2**levels``: the
    points of node ``g`` at ``depth`` (width ``w``, increment ``inc``) ``levels`` depths down.
    ``z``: scratch of size ``>= 2**(levels - 1) m``."""
    n = 1 << levels
    for c in range(m):
        buf[0, c] = 0.0
        buf[n, c] = inc[c]
    for level in range(levels):
        width = n >> level
        half = width >> 1
        s = sds[depth + level]
        nodes_normals(keys, depth + level, TAG_SPLIT, g << level, 1 << level, path, m, z)
        for j in range(1 << level):
            zj = z[j * m:]  # (a row view: no wraparound select per component, see fill_increments)
            left = buf[j * width]
            mid = buf[j * width + half]
            right = buf[j * width + width]
            for c in range(m):
                mid[c] = 0.5 * (left[c] + right[c]) + s * zj[c]


@nb.njit(cache=True, fastmath=False)
def fill_increments(keys, sds, depth, g, levels, lo, hi, path, m, inc, out, z):
    """``out[j, c]``: the increments of the nodes ``j = lo .. hi - 1`` that lie ``levels`` depths
    below node ``g`` at ``depth`` (increment ``inc``); only the nodes above them are split, one
    vectorised draw per depth. ``out``: ``(2**levels, m)``; ``z``: scratch ``>= 2**(levels-1) m``."""
    for c in range(m):
        out[0, c] = inc[c]
    one_half = sds.dtype.type(0.5)
    for level in range(levels):
        shift = levels - level  # a node of this level spans 2**shift leaves
        k_lo = lo >> shift
        k_hi = (hi - 1) >> shift
        nodes_normals(keys, depth + level, TAG_SPLIT, (g << level) + k_lo, k_hi - k_lo + 1, path, m, z)
        s = sds[depth + level]
        half = 1 << (shift - 1)
        for k in range(k_lo, k_hi + 1):
            # row views: an index that provably is >= 0 needs no wraparound select, which in
            # ``z[base + c]`` made the compiler read z by gathers (~0.7 ns per component)
            zk = z[(k - k_lo) * m:]
            left_row = out[k << shift]
            right_row = out[(k << shift) + half]
            for c in range(m):
                parent = one_half * left_row[c]
                right_row[c] = parent - s * zk[c]
                left_row[c] = parent + s * zk[c]


def leaf_position(u):
    """``(depth, index, frac)`` arrays: the leaf in which each tree coordinate ``u`` is bridged (its
    depth from :func:`leaf_depth` and its node index, exact integers) and ``u``'s fraction of it."""
    u = np.atleast_1d(np.asarray(u, dtype=np.float64))
    depth = leaf_depth(u).astype(np.int64)
    v = np.ldexp(u, depth - TOP_LEVEL)
    index = np.floor(v)
    return depth, index.astype(np.int64), v - index


@nb.njit(cache=True, fastmath=False)
def bridge_point(keys, sds, depth, index, leaf, leaf_index, frac, path, m, wl, wr, out, z):
    """``out[:m]``: W at the point ``frac`` of leaf ``leaf_index`` (at depth ``leaf``), a point
    inside node ``index`` at ``depth`` whose end values are ``wl``, ``wr`` (overwritten). Follows
    the leaf index's bits down the same tree and bridges inside the leaf, so the value does not
    depend on ``depth``. ``z``: scratch of size ``>= m``."""
    level = depth
    idx = np.int64(index)
    while level < leaf:
        node_normals(keys, level, TAG_SPLIT, idx, path, m, z)
        s = sds[level]
        for c in range(m):
            out[c] = 0.5 * (wl[c] + wr[c]) + s * z[c]
        below = leaf - level - 1
        if (leaf_index >> below) & 1:
            if frac == 0.0 and leaf_index & ((np.int64(1) << below) - 1) == 0:
                return  # the point is this midpoint
            for c in range(m):
                wl[c] = out[c]
            idx = 2 * idx + 1
        else:
            for c in range(m):
                wr[c] = out[c]
            idx = 2 * idx
        level += 1
    node_normals(keys, leaf, TAG_BRIDGE, idx, path, m, z)
    sd = 2.0 * sds[leaf] * np.sqrt(frac * (1.0 - frac))  # variance frac (1 - frac) * leaf width
    for c in range(m):
        out[c] = wl[c] + frac * (wr[c] - wl[c]) + sd * z[c]

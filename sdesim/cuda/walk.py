"""The Brownian tree of :mod:`sdesim.brownian.tree`, walked by one CUDA thread per path.

Each thread walks the tree as :func:`sdesim.brownian.tree.walk_increment` does (the pending right
siblings on a per-thread stack of ``D + 1`` rows of ``m`` values; one split of ``m`` normals per step
on average, the first step descends from the top), node ``i`` of depth ``l`` drawing its ``m``
normals at the counter indices of ``node_start`` (cell word ``i >> 24``) under ``keys[l]``. A split
is ``0.5 D +- s z`` with every operation rounded on its own (the product ``s z`` as ``mul.rn``, which
NVVM does not contract into a multiply-add), as the tree defines it, so the increments are the
tree's values number for number. Steps wider than a depth-0 node (``D < 0``) sum their ``2**-D``
top nodes, as :func:`sdesim.brownian.tree.coarse_increment` does.
"""

import numpy as np
from numba import config, cuda
from numba import types as nbt

from ..brownian.tree import MAX_DEPTH, RUN_BITS, TAG_SPLIT, TAG_TOP
from .rng import _counter0, _ziggurat, load_tables, philox

__all__ = ["node_normals", "walk_increment", "coarse_increment", "depth_bound", "node_normals_kernel"]


# ----------------------------------------------------------------------------- the Brownian tree
if config.ENABLE_CUDASIM:  # Python arithmetic rounds every operation on its own already
    @cuda.jit(device=True)
    def _mul_rn(a, b):
        return a * b
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _mul_rn(a, b):
        """``a * b`` rounded on its own (``mul.rn``): NVVM does not contract it with a following
        addition into a multiply-add, so a split ``0.5 D +- s z`` rounds as on the CPU."""
        return libdevice.dmul_rn(a, b)


@cuda.jit(device=True)
def node_normals(keys, depth, tag, i, pathw, m, z, zk, zw, zf):
    """``z[:m]``: normals ``0 .. m - 1`` of node ``i`` at ``depth`` (``tag``) on path ``pathw``, as
    :func:`sdesim.brownian.tree.node_normals` draws them: counter indices ``node_start(i, m) + c``
    (bits 56-60 of ``i`` in the high index bits), cell word ``i >> 24``, key ``keys[depth]``; one
    Philox call per pair of indices."""
    i = np.int64(i)
    k0 = keys[depth, 0]
    k1 = keys[depth, 1]
    start = (((i >> 56) & 0x1F) << 46) + (i & 0xFFFFFF) * m
    cellw = np.uint32((i >> RUN_BITS) & 0xFFFFFFFF)
    for pair in range(start >> 1, ((start + m - 1) >> 1) + 1):
        c0 = _counter0(tag, pair)
        c1 = np.uint32(np.int64(pair) & 0xFFFFFFFF)
        a, b = philox(c0, c1, cellw, pathw, k0, k1)
        j = 2 * pair - start
        if j >= 0:
            z[j] = _ziggurat(a, k0, k1, c0, c1, cellw, pathw, 0, zk, zw, zf)
        if j + 1 < m:
            z[j + 1] = _ziggurat(b, k0, k1, c0, c1, cellw, pathw, 1, zk, zw, zf)


@cuda.jit(device=True)
def walk_increment(keys, sds, top_sd, depth, g, fresh, pathw, m, stack, z, out, zk, zw, zf):
    """``out[:m]``: the increment of node ``g`` at ``depth >= 0``, operation for operation as
    :func:`sdesim.brownian.tree.walk_increment` (``stack``: ``(>= depth + 1, m)``, the pending right siblings; called for
    ``g, g + 1, ...`` in turn, ``fresh`` for the first)."""
    local = g & ((np.int64(1) << depth) - 1)
    if fresh or local == 0:
        node_normals(keys, 0, TAG_TOP, g >> depth, pathw, m, z, zk, zw, zf)
        for c in range(m):
            out[c] = _mul_rn(top_sd, z[c])
        start = 0
    else:
        tz = 0
        while not (local >> tz) & 1:
            tz += 1
        start = depth - tz
        for c in range(m):
            out[c] = stack[start, c]
    for level in range(start, depth):
        node_normals(keys, level, TAG_SPLIT, g >> (depth - level), pathw, m, z, zk, zw, zf)
        s = sds[level]
        if (g >> (depth - level - 1)) & 1:
            for c in range(m):
                out[c] = 0.5 * out[c] - _mul_rn(s, z[c])
        else:
            for c in range(m):
                half = 0.5 * out[c]
                sz = _mul_rn(s, z[c])
                stack[level + 1, c] = half - sz
                out[c] = half + sz


@cuda.jit(device=True)
def coarse_increment(keys, top_sd, span, g, pathw, m, z, out, zk, zw, zf):
    """``out[:m]``: the sum of the ``span`` depth-0 nodes from ``g * span`` (steps wider than a
    depth-0 node): :func:`sdesim.brownian.tree.coarse_increment`."""
    for c in range(m):
        out[c] = 0.0
    for j in range(g * span, (g + 1) * span):
        node_normals(keys, 0, TAG_TOP, j, pathw, m, z, zk, zw, zf)
        for c in range(m):
            out[c] += _mul_rn(top_sd, z[c])


def depth_bound(step_depth):
    """The stack depth a kernel is compiled for that serves a plan's ``step_depth``: rounded up to a
    multiple of 8 (at most :data:`~sdesim.brownian.tree.MAX_DEPTH`), so nearby ``dt`` share a kernel."""
    d = max(int(step_depth), 0)
    return min(MAX_DEPTH, -(-(d + 1) // 8) * 8 - 1)


_NODE_NORMALS = []


def node_normals_kernel():
    """``kernel[blocks, threads](nodes, depths, tag, path, m, keys, gk, gw, gf, out)``:
    ``out[j, :m]`` = the normals of node ``nodes[j]`` at ``depths[j]`` (:func:`node_normals`; ``keys``
    from :func:`device_keys`), for checks against :func:`sdesim.brownian.tree.node_normals`."""
    if not _NODE_NORMALS:
        @cuda.jit
        def kern(nodes, depths, tag, path, m, keys, gk, gw, gf, out):
            zk = cuda.shared.array(256, nbt.uint64)
            zw = cuda.shared.array(256, nbt.float64)
            zf = cuda.shared.array(256, nbt.float64)
            load_tables(gk, gw, gf, zk, zw, zf)
            j = cuda.grid(1)
            if j < nodes.size:
                node_normals(keys, depths[j], tag, nodes[j], np.uint32(path), m, out[j], zk, zw, zf)

        _NODE_NORMALS.append(kern)
    return _NODE_NORMALS[0]

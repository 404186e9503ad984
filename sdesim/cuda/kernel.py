"""Fused CUDA kernels: one thread integrates one path over every step; counter-based normals.

The random numbers are those of the CPU backend, computed the same way on the device: Philox4x32-10
keyed by the key of the tree depth (:func:`sdesim.brownian.tree.level_keys`), counter
``(tag | high index bits, index >> 1, cell, path)``, and the 256-layer ziggurat of
:mod:`sdesim.brownian.rng` (tables copied to shared memory by each block).

The ensemble kernel reads the Brownian path of :mod:`sdesim.brownian.tree` (a function of absolute
time, the same at every ``dt``): the steps are the nodes ``g = g0, g0 + 1, ...`` at the step depth
``D`` of one dyadic tree. Each thread walks the tree as :func:`sdesim.brownian.tree.walk_increment`
does (the pending right siblings on a per-thread stack of ``D + 1`` rows of ``m`` values; one split
of ``m`` normals per step on average, the first step descends from the top), node ``i`` of depth
``l`` drawing its ``m`` normals at the counter indices of ``_node_start`` (cell word ``i >> 24``)
under ``keys[l]``. A split is ``0.5 D +- s z`` with every operation rounded on its own (the product
``s z`` as ``mul.rn``, which NVVM does not contract into a multiply-add), as the tree defines it, so
the increments, and ``ws``, are the tree's values number for number, on a GPU as under the
simulator (but for the rare tail normals, whose ``log`` is libdevice's). Steps wider than a depth-0
node (``D < 0``) sum their ``2**-D`` top nodes, as :func:`sdesim.brownian.tree.coarse_increment` does.

One factory, :func:`build_kernel`, generates a kernel per (SDE, scheme, dtype, bound on the step
depth, output mode): the stack is a local array, whose size must be known when compiling. The
scheme's step is the CPU scheme's own step function (``solver.make_step``) compiled for the device
together with the user's functions (:mod:`.translate`), so the arithmetic of a step is the same
source on both backends.
"""

import math

import numpy as np
from numba import config, cuda
from numba import types as nbt

from ..brownian.rng import _M0, _M1, _MANT, _MASK32, _S32, _TO_UNIT, _W0, _W1, _ZF, _ZK, _ZR, _ZW
from ..brownian.tree import MAX_DEPTH, RUN_BITS, TAG_SPLIT, TAG_TOP
from .translate import device_function

__all__ = ["build_kernel", "depth_bound", "device_keys", "normal_pair", "normal_at", "node_normals",
           "build_normals_kernel", "normal_at_kernel", "node_normals_kernel", "tables"]

_B8 = np.uint64(0xFF)
_ONE = np.uint64(1)
_SH8 = np.uint64(8)
_SH9 = np.uint64(9)
_SH11 = np.uint64(11)
_R = float(_ZR)


# ----------------------------------------------------------------------------- random numbers
@cuda.jit(device=True)
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint32 words; the 128 bits as two uint64 words ``(c1:c0, c3:c2)``
    (the word order of :func:`sdesim.brownian.rng.philox4x32`). 32x32 -> 64-bit products."""
    for _ in range(10):
        p0 = np.uint64(c0) * _M0
        p1 = np.uint64(c2) * _M1
        n0 = np.uint32(np.uint32(p1 >> _S32) ^ c1 ^ k0)
        n2 = np.uint32(np.uint32(p0 >> _S32) ^ c3 ^ k1)
        c1 = np.uint32(p1 & _MASK32)
        c3 = np.uint32(p0 & _MASK32)
        c0 = n0
        c2 = n2
        k0 = np.uint32((np.uint64(k0) + _W0) & _MASK32)
        k1 = np.uint32((np.uint64(k1) + _W1) & _MASK32)
    return (np.uint64(c1) << _S32) | np.uint64(c0), (np.uint64(c3) << _S32) | np.uint64(c2)


@cuda.jit(device=True)
def _unit(u):
    return (np.float64(u >> _SH11) + 0.5) * _TO_UNIT


@cuda.jit(device=True)
def _ziggurat_slow(bits, k0, k1, c0, c1, c2, c3, half, zk, zw, zf):
    """The rejection branch of :func:`sdesim.brownian.rng._ziggurat_slow`, number for number."""
    retry = np.int64(1)
    while True:
        idx = bits & _B8
        sign = (bits >> _SH8) & _ONE
        mant = (bits >> _SH9) & _MANT
        x = np.float64(mant) * zw[idx]
        w0 = np.uint32(np.int64(c0) | (retry << 6) | (half << 13))
        ua, ub = philox(w0, c1, c2, c3, k0, k1)
        retry += 1
        if mant < zk[idx]:
            return -x if sign else x
        if idx == 0:
            while True:
                xt = -math.log(_unit(ua)) / _R
                yt = -math.log(_unit(ub))
                if yt + yt > xt * xt:
                    return -(_R + xt) if sign else _R + xt
                w0 = np.uint32(np.int64(c0) | (retry << 6) | (half << 13))
                ua, ub = philox(w0, c1, c2, c3, k0, k1)
                retry += 1
        else:
            if zf[idx] + _unit(ua) * (zf[idx - _ONE] - zf[idx]) < math.exp(-0.5 * x * x):
                return -x if sign else x
        bits = ub


@cuda.jit(device=True)
def _ziggurat(bits, k0, k1, c0, c1, c2, c3, half, zk, zw, zf):
    idx = bits & _B8
    mant = (bits >> _SH9) & _MANT
    if mant < zk[idx]:
        x = np.float64(mant) * zw[idx]
        return -x if (bits >> _SH8) & _ONE else x
    return _ziggurat_slow(bits, k0, k1, c0, c1, c2, c3, half, zk, zw, zf)


@cuda.jit(device=True)
def _counter0(tag, pair):
    return np.uint32((np.int64(tag) | ((np.int64(pair) >> 32) << 14)) & 0xFFFFFFFF)


@cuda.jit(device=True)
def philox_pair(k0, k1, tag, pair, cellw, pathw):
    """The Philox words of normals ``2 pair, 2 pair + 1``, with the two counter words the
    ziggurat's retries need: ``(a, b, c0, c1)``."""
    c0 = _counter0(tag, pair)
    c1 = np.uint32(np.int64(pair) & 0xFFFFFFFF)
    a, b = philox(c0, c1, cellw, pathw, k0, k1)
    return a, b, c0, c1


@cuda.jit(device=True)
def normal_pair(k0, k1, tag, pair, cellw, pathw, zk, zw, zf):
    """Normals number ``2 pair`` and ``2 pair + 1`` of ``(tag, cell, path)``: one Philox call."""
    c0 = _counter0(tag, pair)
    c1 = np.uint32(np.int64(pair) & 0xFFFFFFFF)
    a, b = philox(c0, c1, cellw, pathw, k0, k1)
    return (_ziggurat(a, k0, k1, c0, c1, cellw, pathw, 0, zk, zw, zf),
            _ziggurat(b, k0, k1, c0, c1, cellw, pathw, 1, zk, zw, zf))


@cuda.jit(device=True)
def normal_at(k0, k1, tag, index, cellw, pathw, zk, zw, zf):
    """The normal ``(tag, index)`` of a cell and path: :func:`sdesim.brownian.rng.normal_at` on the device."""
    pair = np.int64(index) >> 1
    c0 = _counter0(tag, pair)
    c1 = np.uint32(pair & 0xFFFFFFFF)
    a, b = philox(c0, c1, cellw, pathw, k0, k1)
    if index & 1:
        return _ziggurat(b, k0, k1, c0, c1, cellw, pathw, 1, zk, zw, zf)
    return _ziggurat(a, k0, k1, c0, c1, cellw, pathw, 0, zk, zw, zf)


@cuda.jit(device=True)
def load_tables(gk, gw, gf, zk, zw, zf):
    """Copy the ziggurat tables to shared memory (random layer indices: constant memory would
    serialise them). Every thread of the block must call it."""
    for i in range(cuda.threadIdx.x, 256, cuda.blockDim.x):
        zk[i] = gk[i]
        zw[i] = gw[i]
        zf[i] = gf[i]
    cuda.syncthreads()


_TABLES = {}


def tables():
    """The ziggurat tables on the device (copied once per process)."""
    if "t" not in _TABLES:
        _TABLES["t"] = (cuda.to_device(np.ascontiguousarray(_ZK)), cuda.to_device(np.ascontiguousarray(_ZW)),
                        cuda.to_device(np.ascontiguousarray(_ZF)))
    return _TABLES["t"]


def seed_words(k0, k1):
    """The uint64 key words of :func:`sdesim.brownian.rng.seed_to_key` as the uint32 the kernels take."""
    return np.uint32(int(k0) & 0xFFFFFFFF), np.uint32(int(k1) & 0xFFFFFFFF)


def device_keys(keys):
    """The key words of every tree depth (``BrownianPath.keys``, uint64 ``(MAX_DEPTH + 1, 2)``) as the
    uint32 array the ensemble kernel takes (each word as :func:`seed_words` converts it)."""
    keys = np.asarray(keys, dtype=np.uint64)
    return np.ascontiguousarray(keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)


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
    :func:`sdesim.brownian.tree.node_normals` draws them: counter indices ``_node_start(i, m) + c``
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


# ----------------------------------------------------------------------------- the ensemble kernel
@cuda.jit(device=True)
def _no_projection(t, y, args):
    pass


@cuda.jit(device=True)
def _no_functional(t, y, args, out):
    pass


def build_kernel(sde, solver, *, dtype, max_depth, store_state, save_w, functional=None, n_functional=None):
    """Compile the ensemble kernel for ``sde`` and ``solver`` (a CPU scheme; its step is reused).

    ``max_depth``: the deepest step depth it serves (the walk's stack has ``max_depth + 1`` rows of
    ``noise_dim`` float64: local memory per thread; see :func:`depth_bound`). ``store_state``: write the state at each save time (else
    ``functional(t, y, args, out)``, ``n_functional`` values). ``save_w``: also write
    ``W(ts) - W(ts[0])``. Returns ``kernel[blocks, threads](y0s, path0, n_paths, g0, t0, dt, n_steps,
    depth, save_step, keys, sds, top_sd, gk, gw, gf, args, out, ws, fail_q)``: steps ``[g dt, (g + 1) dt]``,
    ``g = g0 .. g0 + n_steps - 1`` (``ts[0] = t0 = g0 dt``), each the node ``g`` at ``depth`` of the
    Brownian tree (``depth <= max_depth``; negative: ``2**-depth`` depth-0 nodes); ``keys``: uint32
    ``(MAX_DEPTH + 1, 2)`` (:func:`device_keys`).
    """
    dim, m = sde.dim, sde.noise_dim
    what = f"SDE {sde.name!r}"
    step = device_function(solver.make_step(sde), what)
    project = _no_projection if sde.projection is None else device_function(sde.projection, what)
    has_projection = sde.projection is not None
    func = _no_functional if store_state else device_function(functional, "functional")
    n_out = dim if store_state else n_functional
    fv_size = 1 if store_state else max(1, n_out)
    work_size = max(1, solver.work_size(sde))  # O(dim) with a matrix-free diffusion_product
    area_dim = solver.area_size(sde)
    DT = nbt.float32 if np.dtype(dtype) == np.float32 else nbt.float64
    rows = int(max_depth) + 1
    if not 1 <= rows <= MAX_DEPTH + 1:
        raise ValueError(f"max_depth must be in 0..{MAX_DEPTH}, got {max_depth!r}")
    wm = m if save_w else 1

    @cuda.jit
    def kernel(y0s, path0, n_paths, g0, t0, dt, n_steps, depth, save_step, keys, sds, top_sd, gk, gw, gf,
               args, out, ws, fail_q):
        zk = cuda.shared.array(256, nbt.uint64)
        zw = cuda.shared.array(256, nbt.float64)
        zf = cuda.shared.array(256, nbt.float64)
        load_tables(gk, gw, gf, zk, zw, zf)
        y = cuda.local.array(dim, DT)
        y_new = cuda.local.array(dim, DT)
        work = cuda.local.array(work_size, DT)
        dW = cuda.local.array(m, DT)
        area = cuda.local.array((area_dim, area_dim), DT)
        fval = cuda.local.array(fv_size, DT)
        inc = cuda.local.array(m, nbt.float64)            # the step's Brownian increment
        z = cuda.local.array(m, nbt.float64)              # a node's normals
        stack = cuda.local.array((rows, m), nbt.float64)  # the walk's pending right siblings
        w_cell = cuda.local.array(wm, nbt.float64)        # W at the start of the current step
        w_rel = cuda.local.array(wm, nbt.float64)         # W now, relative to it
        for a in range(area_dim):
            for b in range(area_dim):
                area[a, b] = 0.0
        n_save = save_step.size
        coarse = depth < 0
        span = np.int64(1) << (-depth if coarse else 0)  # (not max(): the CUDA target mistypes it)
        # one path per thread at a time; a grid smaller than n_paths strides over the paths
        for p in range(cuda.grid(1), n_paths, cuda.gridsize(1)):
            path = path0 + p
            pathw = np.uint32(path & 0xFFFFFFFF)
            for c in range(wm):
                w_cell[c] = 0.0
                w_rel[c] = 0.0
            src = p if y0s.shape[0] > 1 else 0
            for i in range(dim):
                y[i] = y0s[src, i]
            t = t0
            q = 0
            failed = False
            for n in range(-1, n_steps):
                if n >= 0:
                    g = g0 + n
                    if coarse:
                        coarse_increment(keys, top_sd, span, g, pathw, m, z, inc, zk, zw, zf)
                    else:
                        walk_increment(keys, sds, top_sd, depth, g, n == 0, pathw, m, stack, z, inc,
                                       zk, zw, zf)
                    for c in range(m):
                        if save_w:  # the CPU kernel's bookkeeping: W(ts) = w_cell + w_rel
                            w_cell[c] += w_rel[c]
                            w_rel[c] = inc[c]
                        dW[c] = inc[c]
                    t_to = (g + 1) * dt
                    step(t, t_to - t, y, dW, area, args, work, y_new)
                    y, y_new = y_new, y
                    if has_projection:
                        project(t_to, y, args)
                    t = t_to
                if q < n_save and save_step[q] == n:
                    for i in range(dim):
                        if not math.isfinite(y[i]):
                            failed = True
                    if failed:
                        fail_q[p] = q
                        break
                    if store_state:
                        for i in range(dim):
                            out[q, p, i] = y[i]
                    else:
                        func(t, y, args, fval)
                        for i in range(n_out):
                            out[q, p, i] = fval[i]
                    if save_w:
                        for c in range(m):
                            ws[q, p, c] = w_cell[c] + w_rel[c]
                    q += 1
                    if q >= n_save:
                        break
            if failed:
                for qq in range(q, n_save):
                    for i in range(n_out):
                        out[qq, p, i] = math.nan

    return kernel


def build_normals_kernel():
    """A bare generator kernel (the card's random-number ceiling): thread ``p`` makes ``m`` normals
    per step for ``n_cells`` steps of path ``p`` and writes their sum. A solve's walk down the
    Brownian tree draws as many per step on average (one split of ``m`` normals), under per-depth
    keys; this benchmark keeps a plain layout (tag 0, cell ``n``, one key), which costs the same."""

    @cuda.jit
    def normals(n_paths, n_cells, m, k0, k1, gk, gw, gf, out):
        zk = cuda.shared.array(256, nbt.uint64)
        zw = cuda.shared.array(256, nbt.float64)
        zf = cuda.shared.array(256, nbt.float64)
        load_tables(gk, gw, gf, zk, zw, zf)
        p = cuda.grid(1)
        if p >= n_paths:
            return
        pathw = np.uint32(p & 0xFFFFFFFF)
        acc = 0.0
        n_pairs = (m + 1) // 2
        for n in range(n_cells):
            cellw = np.uint32(n & 0xFFFFFFFF)
            for pr in range(0, n_pairs - 1, 2):  # two Philox blocks a round (independent chains)
                a0, b0, c0a, c1a = philox_pair(k0, k1, 0, pr, cellw, pathw)
                a1, b1, c0b, c1b = philox_pair(k0, k1, 0, pr + 1, cellw, pathw)
                acc += _ziggurat(a0, k0, k1, c0a, c1a, cellw, pathw, 0, zk, zw, zf)
                acc += _ziggurat(b0, k0, k1, c0a, c1a, cellw, pathw, 1, zk, zw, zf)
                acc += _ziggurat(a1, k0, k1, c0b, c1b, cellw, pathw, 0, zk, zw, zf)
                if 2 * pr + 3 < m:
                    acc += _ziggurat(b1, k0, k1, c0b, c1b, cellw, pathw, 1, zk, zw, zf)
            if n_pairs % 2 == 1:
                pr = n_pairs - 1
                a0, b0, c0a, c1a = philox_pair(k0, k1, 0, pr, cellw, pathw)
                acc += _ziggurat(a0, k0, k1, c0a, c1a, cellw, pathw, 0, zk, zw, zf)
                if 2 * pr + 1 < m:
                    acc += _ziggurat(b0, k0, k1, c0a, c1a, cellw, pathw, 1, zk, zw, zf)
        out[p] = acc

    return normals


_NORMAL_AT = []


def normal_at_kernel():
    """``kernel[blocks, threads](idx, tag, cell, path, k0, k1, gk, gw, gf, out)``:
    ``out[i] = normal_at(tag, idx[i], cell, path)`` on the device (for checks of the generator
    against the CPU's; any tag, index and cell words, one key)."""
    if not _NORMAL_AT:
        @cuda.jit
        def kern(idx, tag, cell, path, k0, k1, gk, gw, gf, out):
            zk = cuda.shared.array(256, nbt.uint64)
            zw = cuda.shared.array(256, nbt.float64)
            zf = cuda.shared.array(256, nbt.float64)
            load_tables(gk, gw, gf, zk, zw, zf)
            i = cuda.grid(1)
            if i < idx.size:
                out[i] = normal_at(k0, k1, tag, idx[i], np.uint32(cell), np.uint32(path), zk, zw, zf)

        _NORMAL_AT.append(kern)
    return _NORMAL_AT[0]


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

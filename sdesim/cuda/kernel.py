"""Fused CUDA kernels: one thread integrates one path over every step; counter-based normals.

The random numbers are those of the CPU backend, computed the same way on the device: Philox4x32-10
keyed by the seed, counter ``(tag | high index bits, index >> 1, cell, path)``, and the 256-layer
ziggurat of :mod:`sdesim.brownian.rng` (tables copied to shared memory by each block). A solve whose
``brownian_dt`` equals ``dt`` takes the step ``n`` increments from the root of Brownian cell ``n``
(tag 0, normal number ``c`` for component ``c``), exactly as :func:`sdesim.brownian.tree.fill_cell`
does; with ``brownian_dt = 2**k dt`` each step's end point is found by bisecting the same tree
(up to ``k`` more normals per component and step, no buffer). So the GPU sees the CPU's Brownian path.

One factory, :func:`build_kernel`, generates a kernel per (SDE, scheme, dtype, tree depth, output
mode). The scheme's step is the CPU scheme's own step function (``solver.make_step``) compiled
for the device together with the user's functions (:mod:`._cuda_translate`), so the arithmetic of
a step is the same source on both backends.
"""

import math

import numpy as np
from numba import cuda
from numba import types as nbt

from ..brownian.rng import _M0, _M1, _MANT, _MASK32, _S32, _TO_UNIT, _W0, _W1, _ZF, _ZK, _ZR, _ZW
from .translate import device_function

__all__ = ["build_kernel", "normal_pair", "normal_at", "build_normals_kernel", "normal_at_kernel", "tables"]

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


# ----------------------------------------------------------------------------- the ensemble kernel
@cuda.jit(device=True)
def _no_projection(t, y, args):
    pass


@cuda.jit(device=True)
def _no_functional(t, y, args, out):
    pass


def build_kernel(sde, solver, *, dtype, levels, store_state, save_w, functional=None, n_functional=None):
    """Compile the ensemble kernel for ``sde`` and ``solver`` (a CPU scheme; its step is reused).

    ``levels``: ``k`` with ``brownian_dt = 2**k dt``. ``store_state``: write the state at each
    save time (else ``functional(t, y, args, out)``, ``n_functional`` values). ``save_w``: also
    write ``W(ts) - W(ts[0])``. Returns ``kernel[blocks, threads](y0s, path0, n_paths, t0, dt,
    n_steps, save_step, sqrt_b, sds, k0, k1, gk, gw, gf, args, out, ws, fail_q)``.
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
    K = int(levels)
    n_buf = 1 << K
    track_w = bool(save_w) or K > 0
    wm = m if track_w else 1
    rm = m if K > 0 else 1
    n_pairs = (m + 1) // 2

    @cuda.jit(device=True)
    def _put(c, r, dW, w_cell, w_rel):
        """Root increment ``r`` of component ``c`` (``brownian_dt = dt``): the step's ``dW``, and the
        Brownian value bookkeeping of the CPU kernel (``w_rel`` is the previous root here, so
        ``w_rel - root = 0`` and the cell start moves by it)."""
        if track_w:
            w_cell[c] += w_rel[c]
            w_rel[c] = r
        dW[c] = r

    @cuda.jit
    def kernel(y0s, path0, n_paths, t0, dt, n_steps, save_step, sqrt_b, sds, k0, k1, gk, gw, gf,
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
        w_cell = cuda.local.array(wm, nbt.float64)  # W at the start of the current cell
        w_rel = cuda.local.array(wm, nbt.float64)   # W now, relative to the cell start
        root = cuda.local.array(rm, nbt.float64)    # the current cell's increment
        for a in range(area_dim):
            for b in range(area_dim):
                area[a, b] = 0.0
        n_save = save_step.size
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
                    cellw = np.uint32((n >> K) & 0xFFFFFFFF)
                    if K == 0:
                        # the cell is the step: its increment is the step's (tag 0, normal c).
                        # Two Philox blocks per round (4 normals): independent chains the
                        # scheduler interleaves, so fewer resident warps hide the latency.
                        for pr in range(0, n_pairs - 1, 2):
                            a0, b0, c0a, c1a = philox_pair(k0, k1, 0, pr, cellw, pathw)
                            a1, b1, c0b, c1b = philox_pair(k0, k1, 0, pr + 1, cellw, pathw)
                            c = 2 * pr
                            _put(c, sqrt_b * _ziggurat(a0, k0, k1, c0a, c1a, cellw, pathw, 0, zk, zw, zf),
                                 dW, w_cell, w_rel)
                            _put(c + 1, sqrt_b * _ziggurat(b0, k0, k1, c0a, c1a, cellw, pathw, 1, zk, zw, zf),
                                 dW, w_cell, w_rel)
                            _put(c + 2, sqrt_b * _ziggurat(a1, k0, k1, c0b, c1b, cellw, pathw, 0, zk, zw, zf),
                                 dW, w_cell, w_rel)
                            if c + 3 < m:
                                _put(c + 3, sqrt_b * _ziggurat(b1, k0, k1, c0b, c1b, cellw, pathw, 1, zk, zw, zf),
                                     dW, w_cell, w_rel)
                        if n_pairs % 2 == 1:  # the last pair alone
                            pr = n_pairs - 1
                            a0, b0, c0a, c1a = philox_pair(k0, k1, 0, pr, cellw, pathw)
                            _put(2 * pr, sqrt_b * _ziggurat(a0, k0, k1, c0a, c1a, cellw, pathw, 0, zk, zw, zf),
                                 dW, w_cell, w_rel)
                            if 2 * pr + 1 < m:
                                _put(2 * pr + 1, sqrt_b * _ziggurat(b0, k0, k1, c0a, c1a, cellw, pathw, 1, zk, zw,
                                                                    zf), dW, w_cell, w_rel)
                    else:
                        i_cell = n & (n_buf - 1)
                        if i_cell == 0:
                            for c in range(m):
                                if n > 0:
                                    w_cell[c] += root[c]
                                    w_rel[c] -= root[c]
                            for pr in range((m + 1) // 2):
                                z0, z1 = normal_pair(k0, k1, 0, pr, cellw, pathw, zk, zw, zf)
                                root[2 * pr] = z0 * sqrt_b
                                if 2 * pr + 1 < m:
                                    root[2 * pr + 1] = z1 * sqrt_b
                        j = i_cell + 1
                        for c in range(m):
                            w_to = 0.0
                            if j == n_buf:
                                w_to = root[c]
                            else:  # bisect the cell's tree down to point j (as fill_cell builds it)
                                lo = 0.0
                                hi = root[c]
                                node = 0
                                width = n_buf
                                pos = j
                                level = 0
                                while True:
                                    half = width >> 1
                                    z = normal_at(k0, k1, level + 1, node * m + c, cellw, pathw, zk, zw, zf)
                                    mid = 0.5 * (lo + hi) + sds[level] * z
                                    if pos == half:
                                        w_to = mid
                                        break
                                    if pos < half:
                                        hi = mid
                                        node = 2 * node
                                    else:
                                        lo = mid
                                        node = 2 * node + 1
                                        pos -= half
                                    width = half
                                    level += 1
                            dW[c] = w_to - w_rel[c]
                            w_rel[c] = w_to
                    t_to = t0 + (n + 1) * dt
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
    """A bare generator kernel (the card's random-number ceiling): thread ``p`` makes the normals
    ``(tag 0, c < m)`` of cells ``0 .. n_cells - 1`` of path ``p`` -- the layout a solve with
    ``brownian_dt = dt`` consumes -- and writes their sum."""

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
            for pr in range(0, n_pairs - 1, 2):  # as the solve kernels draw them: two Philox blocks a round
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
    ``out[i] = normal_at(tag, idx[i], cell, path)`` on the device (for checks against the CPU)."""
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

"""Counter-based normals on the device: the CPU backend's generator, computed the same way.

Philox4x32-10 with the counter ``(tag | high index bits, index >> 1, cell, path)`` and the 256-layer
ziggurat of :mod:`sdesim.brownian.rng` (tables copied to shared memory by each block), so a normal
drawn on the device is the CPU's normal bit for bit (but for the rare tail normals, whose ``log`` is
libdevice's). Also the bare generator kernels used to check it and to measure the card's ceiling.
"""

import math

import numpy as np
from numba import cuda
from numba import types as nbt

from ..brownian.rng import _M0, _M1, _MANT, _MASK32, _S32, _TO_UNIT, _W0, _W1, _ZF, _ZK, _ZR, _ZW

__all__ = ["philox_pair", "normal_pair", "normal_at", "load_tables", "tables", "seed_words", "device_keys",
           "build_normals_kernel", "normal_at_kernel"]

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

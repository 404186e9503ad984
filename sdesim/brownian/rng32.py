"""Counter-based float32 normals: four per Philox call (a first piece of native float32, issue 18).

The float64 generator (:mod:`.rng`) turns each 64-bit half of a Philox4x32-10 block into one
normal. Here each 32-bit word is one float32 normal, so a block gives four:

* counter words ``(tag | retry << 6 | quarter << 13 | high group bits << 15 | 1 << 31, group, cell,
  path)`` with ``group = index >> 2`` (normal ``index`` is word ``index & 3`` of its group's
  block; ``index < 2**50``). Bit 31 is never set in a float64 counter (whose high index bits stay
  below it for the indices the Brownian tree uses, ``< 2**50``), so the two generators never read
  the same Philox block, whatever the tag;
* a word ``w`` is read as the 256-layer ziggurat of :mod:`.rng` (the same layers) at 23-bit
  resolution: layer ``w & 0xFF``, sign bit 8, mantissa ``w >> 9``; the fast path is float32 and
  branch-free (``x = mant * w32[layer]``, accepted when ``mant < k32[layer]``, the float64
  thresholds rounded down, so a word it accepts lies under the curve); the rare rest (wedges and
  the tail beyond ``r``) is finished in float64 by :func:`_ziggurat32_slow`, with further words
  from the same counter and a retry number, and rounded to float32.

So every normal is a function of ``(key, tag, index, cell, path)`` alone, as in :mod:`.rng`.
These are a stream of their own, independent of the float64 normals of the same tag: a float32
Brownian path built on them would be a path of its own, not the float64 path rounded. Not yet read by
``solve``: the Brownian tree and the kernel still draw float64 normals in every dtype.
"""

import math

import numba as nb
import numpy as np

from .rng import _ZF, _ZK, _ZR, _ZW, _bitcast, _unit, philox4x32

__all__ = ["normal32_at", "normals_range32"]

_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_RETRY_SHIFT = np.uint64(6)
_QUARTER_SHIFT = np.uint64(13)
_HIGH_SHIFT = np.uint64(15)
_STREAM_BIT = np.uint64(1) << np.uint64(31)  # the float32 stream (never set by rng.py's counters)
#: 23-bit thresholds (the 52-bit ones rounded down) and widths per unit of the 23-bit mantissa
_K32 = (_ZK >> np.uint64(29)).astype(np.int32)
_W32 = (_ZW * 2.0**29).astype(np.float32)
_W32_64 = _ZW * 2.0**29  # the same widths in float64, for the slow path

bits_as_float32 = _bitcast(nb.types.uint32, nb.types.float32)  # uint32 bits -> float32
float32_as_bits = _bitcast(nb.types.float32, nb.types.uint32)  # float32 -> its uint32 bits


@nb.njit(inline="always", cache=True, fastmath=False)
def _counter32(tag, group, cell, path):
    c0 = np.uint64(tag) | ((np.uint64(group) >> _S32) << _HIGH_SHIFT) | _STREAM_BIT
    return c0, np.uint64(group) & _MASK32, np.uint64(cell) & _MASK32, np.uint64(path) & _MASK32


@nb.njit(inline="always", cache=True, fastmath=False)
def _word(a, b, q):
    """32-bit word ``q`` (0-3) of a Philox block ``(a, b)``."""
    w = b if q & 2 else a
    return np.uint32((w >> np.uint64(32)) if q & 1 else (w & _MASK32))


@nb.njit(inline="always", cache=True, fastmath=False)
def _ziggurat32_fast(w):
    """The float32 fast path for word ``w``: the normal, or NaN when the word is not accepted at once."""
    idx = np.intp(w & np.uint32(0xFF))
    mant = np.int32(w >> np.uint32(9))
    x = np.float32(mant) * _W32[idx]
    x = -x if (w >> np.uint32(8)) & np.uint32(1) else x
    return x if mant < _K32[idx] else np.float32(np.nan)


@nb.njit(cache=True, fastmath=False)
def _ziggurat32_slow(w, k0, k1, c0, c1, c2, c3, quarter):
    """Finish a draw whose first word ``w`` was not accepted at once (float64, rounded to float32)."""
    retry = np.uint64(1)
    bits = np.uint64(w)
    while True:
        idx = bits & np.uint64(0xFF)
        sign = (bits >> np.uint64(8)) & np.uint64(1)
        mant = (bits >> np.uint64(9)) & np.uint64(0x7FFFFF)
        x = mant * _W32_64[idx]
        ua, ub = philox4x32(c0 | (retry << _RETRY_SHIFT) | (quarter << _QUARTER_SHIFT), c1, c2, c3, k0, k1)
        retry += np.uint64(1)
        if mant < np.uint64(_K32[idx]):
            return np.float32(-x if sign else x)
        if idx == 0:  # the tail beyond r (Marsaglia's method), repeated inside the tail until accepted
            while True:
                xt = -math.log(_unit(ua)) / _ZR
                yt = -math.log(_unit(ub))
                if yt + yt > xt * xt:
                    return np.float32(-(_ZR + xt) if sign else _ZR + xt)
                ua, ub = philox4x32(c0 | (retry << _RETRY_SHIFT) | (quarter << _QUARTER_SHIFT), c1, c2, c3, k0, k1)
                retry += np.uint64(1)
        elif _ZF[idx] + _unit(ua) * (_ZF[idx - 1] - _ZF[idx]) < math.exp(-0.5 * x * x):
            return np.float32(-x if sign else x)
        bits = ub & _MASK32


@nb.njit(inline="always", cache=True, fastmath=False)
def normal32_at(k0, k1, tag, index, cell, path):
    """The float32 standard normal number ``(tag, index)`` of cell ``cell`` on path ``path``."""
    c0, c1, c2, c3 = _counter32(tag, index >> 2, cell, path)
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    q = index & 3
    w = _word(a, b, q)
    x = _ziggurat32_fast(w)
    return _ziggurat32_slow(w, k0, k1, c0, c1, c2, c3, np.uint64(q)) if np.isnan(x) else x


@nb.njit(inline="always", cache=True, fastmath=False)
def normals_range32(k0, k1, tag, start, count, cell, path, out):
    """Write the float32 normals ``start .. start+count-1`` into ``out[:count]`` (a float32 array).

    Equal, number for number, to :func:`normal32_at` for each index: the Philox words of whole
    groups of four first (stored in ``out`` as raw bits), then the branch-free float32 fast path,
    which marks the rejected words with NaN for a last pass to repair.
    """
    lead = (4 - (start & 3)) & 3  # single normals up to a group boundary (0 .. 3: provably >= 0)
    if count < lead:
        lead = 0
    for i in range(lead):
        out[i] = normal32_at(k0, k1, tag, start + i, cell, path)
    n_groups = max(count - lead, 0) >> 2
    first = (start + lead) >> 2
    for g in range(n_groups):
        c0, c1, c2, c3 = _counter32(tag, first + g, cell, path)
        a, b = philox4x32(c0, c1, c2, c3, k0, k1)
        j = lead + 4 * g
        out[j] = bits_as_float32(np.uint32(a & _MASK32))
        out[j + 1] = bits_as_float32(np.uint32(a >> _S32))
        out[j + 2] = bits_as_float32(np.uint32(b & _MASK32))
        out[j + 3] = bits_as_float32(np.uint32(b >> _S32))
    n_rejected = 0
    for i in range(lead, lead + 4 * n_groups):
        x = _ziggurat32_fast(float32_as_bits(out[i]))
        n_rejected += np.isnan(x)
        out[i] = x
    i = 0
    while n_rejected:  # the rejected words, in order, until all are repaired
        if np.isnan(out[lead + i]):
            c0, c1, c2, c3 = _counter32(tag, first + (i >> 2), cell, path)
            a, b = philox4x32(c0, c1, c2, c3, k0, k1)
            q = i & 3
            out[lead + i] = _ziggurat32_slow(_word(a, b, q), k0, k1, c0, c1, c2, c3, np.uint64(q))
            n_rejected -= 1
        i += 1
    for i in range(lead + 4 * n_groups, count):  # (count < 4 - start % 4: all of them)
        out[i] = normal32_at(k0, k1, tag, start + i, cell, path)

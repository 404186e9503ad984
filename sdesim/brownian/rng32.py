"""Counter-based float32 normals: four per Philox call, by Box-Muller in float32 (issue 18).

The float64 generator (:mod:`.rng`) turns each 64-bit half of a Philox4x32-10 block into one
normal by a ziggurat. Here the block's four 32-bit words make four float32 normals, two per pair
of words by the Box-Muller transform (as cuRAND's ``curand_normal4`` does), without tables or
rejections, so a run of them is straight-line code on SIMD lanes:

* counter words ``(tag | high group bits << 15 | 1 << 31, group, cell, path)`` with
  ``group = index >> 2``: normal ``index`` is number ``index & 3`` of its group's block. Bit 31 is
  never set in a float64 counter (whose high index bits stay below it for the indices the
  Brownian tree uses, ``< 2**50``), so the two generators never read the same Philox block;
* words ``(a, b)`` (the low and high word of one 64-bit half) give ``u = a 2**-32 + 2**-33`` in
  ``(0, 1]`` (float32) and the angle fraction ``v = (b >> 8) 2**-24`` in ``[0, 1)``; then
  ``R = sqrt(-2 ln u)`` and the pair is ``(R cos 2 pi v, R sin 2 pi v)``: two independent standard
  normals. ``u >= 2**-33`` caps ``|Z|`` at ``R <= 6.77`` (the law beyond it has mass 1e-11).
* ``ln`` and ``sin``/``cos`` are float32 polynomials, branch-free: ``ln m`` for the mantissa
  ``m`` in ``[sqrt(1/2), sqrt(2))`` from the series of ``2 atanh(s)``, ``s = (m - 1)/(m + 1)``
  (``|s| < 0.172``: truncation below 1e-9); the angle is reduced to ``phi`` in ``[-pi/4, pi/4]``
  around the nearest quarter turn, where the Taylor series to ``phi**9``/``phi**10`` are exact
  to 2e-9, and rotated by that quarter turn.

So every normal is a function of ``(key, tag, index, cell, path)`` alone, as in :mod:`.rng`.
These are a stream of their own, independent of the float64 normals of the same tag: a float32
Brownian path (``BrownianPath(..., dtype="float32")``) is a path of its own, not the float64
path rounded.
"""

import numba as nb
import numpy as np

from .rng import _bitcast, philox4x32

__all__ = ["normal32_at", "normals_range32", "store_words32", "box_muller_in_place"]

_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_HIGH_SHIFT = np.uint64(15)
_STREAM_BIT = np.uint64(1) << np.uint64(31)  # the float32 stream (never set by rng.py's counters)

_F = np.float32
_TWO_M32, _TWO_M33, _TWO_M24 = _F(2.0**-32), _F(2.0**-33), _F(2.0**-24)
_SQRT2, _LN2, _HALF_PI = _F(1.4142135623730951), _F(0.6931471805599453), _F(1.5707963267948966)
_ONE, _TWO, _HALF, _ZERO = _F(1.0), _F(2.0), _F(0.5), _F(0.0)
# 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + s^7/7 + s^9/9 + ...); sin and cos to phi^9 and phi^10
_L3, _L5, _L7, _L9 = _F(1 / 3), _F(1 / 5), _F(1 / 7), _F(1 / 9)
_S3, _S5, _S7, _S9 = _F(-1 / 6), _F(1 / 120), _F(-1 / 5040), _F(1 / 362880)
_C2, _C4, _C6, _C8, _C10 = _F(-1 / 2), _F(1 / 24), _F(-1 / 720), _F(1 / 40320), _F(-1 / 3628800)

bits_as_float32 = _bitcast(nb.types.uint32, nb.types.float32)  # uint32 bits -> float32
float32_as_bits = _bitcast(nb.types.float32, nb.types.uint32)  # float32 -> its uint32 bits


@nb.njit(inline="always", cache=True, fastmath=False)
def _counter32(tag, group, cell, path):
    c0 = (np.uint64(tag) | ((np.uint64(group) >> _S32) << _HIGH_SHIFT) | _STREAM_BIT) & _MASK32  # (see rng._counter)
    return c0, np.uint64(group) & _MASK32, np.uint64(cell) & _MASK32, np.uint64(path) & _MASK32


@nb.njit(inline="always", cache=True, fastmath=False)
def _radius(a):
    """``sqrt(-2 ln u)``, ``u = a 2**-32 + 2**-33`` (float32, in (0, 1]), from the 32-bit word ``a``.
    (Integers are wrapped back to 32 bits after each operation, which Numba widens to 64: 32-bit
    lanes keep the loop on 16 SIMD lanes.)"""
    u = _F(np.uint32(a)) * _TWO_M32 + _TWO_M33
    bits = float32_as_bits(u)
    e = _F(np.uint32(bits >> np.uint32(23))) - _F(127.0)
    m = bits_as_float32(np.uint32((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)))  # u = m 2**e, m in [1, 2)
    big = m > _SQRT2
    m = m * _HALF if big else m
    e = e + _ONE if big else e
    f = m - _ONE
    s = f / (_TWO + f)
    s2 = s * s
    ln_m = _TWO * s * (_ONE + s2 * (_L3 + s2 * (_L5 + s2 * (_L7 + s2 * _L9))))
    minus_two_ln_u = -_TWO * (e * _LN2 + ln_m)
    return np.sqrt(max(minus_two_ln_u, _ZERO))  # (u = 1 gives 0, not -0 from rounding)


@nb.njit(inline="always", cache=True, fastmath=False)
def _cos_sin(b):
    """``(cos 2 pi v, sin 2 pi v)``, ``v = (b >> 8) 2**-24``, from the 32-bit word ``b`` (float32)."""
    x = _F(np.uint32(np.uint32(b) >> np.uint32(8))) * (_TWO_M24 * _F(4.0))  # 4 v in [0, 4), exact
    k = _F(np.int32(x + _HALF))  # the nearest quarter turn (x >= 0: truncation rounds down; 4 is 0)
    phi = (x - k) * _HALF_PI  # in [-pi/4, pi/4]
    p2 = phi * phi
    sp = phi * (_ONE + p2 * (_S3 + p2 * (_S5 + p2 * (_S7 + p2 * _S9))))
    cp = _ONE + p2 * (_C2 + p2 * (_C4 + p2 * (_C6 + p2 * (_C8 + p2 * _C10))))
    # rotate (cos phi, sin phi) by k quarter turns: odd k swaps (c, s) -> (-s, c); k = 2, 3 negate
    odd = k == _ONE or k == _F(3.0)
    c = -sp if odd else cp
    s = cp if odd else sp
    flip = k == _TWO or k == _F(3.0)
    return (-c if flip else c), (-s if flip else s)


@nb.njit(inline="always", cache=True, fastmath=False)
def _pair(w):
    """The two normals of the 64-bit half ``w`` of a Philox block (its low word the radius, its high
    word the angle)."""
    r = _radius(w & _MASK32)
    c, s = _cos_sin(w >> _S32)
    return r * c, r * s


@nb.njit(inline="always", cache=True, fastmath=False)
def store_words32(out, j, a, b):
    """``out[j .. j + 3]`` (float32) take the raw bits of one Philox block's four 32-bit words."""
    out[j] = bits_as_float32(np.uint32(a & _MASK32))
    out[j + 1] = bits_as_float32(np.uint32(a >> _S32))
    out[j + 2] = bits_as_float32(np.uint32(b & _MASK32))
    out[j + 3] = bits_as_float32(np.uint32(b >> _S32))


@nb.njit(inline="always", cache=True, fastmath=False)
def box_muller_in_place(out, lo, n_pairs):
    """The pairs ``out[lo + 2p], out[lo + 2p + 1]`` (raw Philox words, :func:`store_words32`)
    replaced by their two normals (:func:`_pair`), for ``p < n_pairs``: one branch-free loop."""
    for p in range(n_pairs):
        j = lo + 2 * p
        r = _radius(np.uint64(float32_as_bits(out[j])))
        c, s = _cos_sin(np.uint64(float32_as_bits(out[j + 1])))
        out[j] = r * c
        out[j + 1] = r * s


@nb.njit(inline="always", cache=True, fastmath=False)
def normal32_at(k0, k1, tag, index, cell, path):
    """The float32 standard normal number ``(tag, index)`` of cell ``cell`` on path ``path``."""
    c0, c1, c2, c3 = _counter32(tag, index >> 2, cell, path)
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    z0, z1 = _pair(b if index & 2 else a)
    return z1 if index & 1 else z0


@nb.njit(inline="always", cache=True, fastmath=False)
def _partial_group(k0, k1, tag, group, lo, hi, cell, path, out, at):
    """Normals ``lo .. hi - 1`` (of 0 .. 3) of group ``group`` into ``out[at:]``: one Philox call."""
    c0, c1, c2, c3 = _counter32(tag, group, cell, path)
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    if lo < 2:
        z0, z1 = _pair(a)
        if lo == 0:
            out[at] = z0
        if hi > 1:
            out[at + 1 - lo] = z1
    if hi > 2:
        z2, z3 = _pair(b)
        if lo <= 2:
            out[at + 2 - lo] = z2
        if hi > 3:
            out[at + 3 - lo] = z3


@nb.njit(inline="always", cache=True, fastmath=False)
def normals_range32(k0, k1, tag, start, count, cell, path, out):
    """Write the float32 normals ``start .. start+count-1`` into ``out[:count]`` (a float32 array).

    Equal, number for number, to :func:`normal32_at` for each index. The whole groups of four run
    in two branch-free passes the compiler vectorises: the Philox words first (stored in ``out`` as
    raw bits, four per group), then Box-Muller on each pair of words in place (a single loop of
    both ran on half-width lanes, 1.6x slower). A group cut by either end costs one Philox call.
    """
    if count <= 0:
        return
    end = start + count
    lead = (4 - (start & 3)) & 3  # normals before the first group boundary (0 .. 3: provably >= 0)
    if (start >> 2) == ((end - 1) >> 2):  # all inside one group
        _partial_group(k0, k1, tag, start >> 2, start & 3, (start & 3) + count, cell, path, out, 0)
        return
    if lead:
        _partial_group(k0, k1, tag, start >> 2, start & 3, 4, cell, path, out, 0)
    first = (start + lead) >> 2
    n_groups = (end - start - lead) >> 2
    for g in range(n_groups):
        c0, c1, c2, c3 = _counter32(tag, first + g, cell, path)
        a, b = philox4x32(c0, c1, c2, c3, k0, k1)
        store_words32(out, lead + 4 * g, a, b)
    box_muller_in_place(out, lead, 2 * n_groups)
    tail = end & 3
    if tail:
        _partial_group(k0, k1, tag, (end - 1) >> 2, 0, tail, cell, path, out, count - tail)

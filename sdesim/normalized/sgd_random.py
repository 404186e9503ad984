"""Discrete SGD's random draws, counter-based: sub-step ``s`` of run ``r`` draws from Philox
counters ``(tag, number, s, r)`` of the seed's key, so a draw depends on ``(seed, r, s)`` alone
(the tags are in the one table of :mod:`sdesim.brownian.rng`)."""

import numba as nb
import numpy as np

from ..brownian.rng import TAG_SGD_BATCH, TAG_SGD_NOISE, _counter, normals_range, philox4x32

__all__ = ["TAG_NOISE", "TAG_BATCH", "MAX_SUBSTEPS", "MAX_RUNS"]

#: Gaussian noise of the first and second (SVAG) gradient; minibatch indices of the first and second.
TAG_NOISE = TAG_SGD_NOISE
TAG_BATCH = TAG_SGD_BATCH
#: Sub-steps per run are counted in the 32-bit cell word of the counter, runs in its path word.
MAX_SUBSTEPS = 2**32
MAX_RUNS = 2**32

_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@nb.njit(cache=True)
def _fill_normals(k0, k1, tag, count, cell, path, out):
    """Standard normals ``0..count-1`` of counter block (tag, cell, path) into ``out`` (one
    compiled copy of :func:`sdesim.brownian.rng.normals_range`, shared by every caller)."""
    normals_range(k0, k1, tag, 0, count, cell, path, out)


@nb.njit(inline="always", cache=True)
def _word(k0, k1, tag, number, cell, path):
    """64 random bits number ``number`` of counter block (tag, cell, path)."""
    c0, c1, c2, c3 = _counter(tag, number >> 1, cell, path)
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    return b if number & 1 else a


@nb.njit(inline="always", cache=True)
def _below(u, n):
    """``floor(u n / 2**64)`` for a uint64 ``u`` and ``0 < n < 2**32``: an integer in ``[0, n)``
    (Lemire's multiply-shift; its bias, at most ``n / 2**64``, is far below any measurable effect)."""
    nn = np.uint64(n)
    hi = u >> _S32
    lo = u & _MASK32
    return np.int64((hi * nn + ((lo * nn) >> _S32)) >> _S32)


@nb.njit(cache=True)
def _draw_batch(k0, k1, tag, cell, path, n, B, replace, idx, mark):
    """``B`` sample indices into ``idx[:B]``: i.i.d. uniform (``replace``) or a uniform random
    ``B``-subset (Floyd's algorithm; ``mark`` is an all-False scratch array of size ``n``)."""
    if replace:
        for b in range(B):
            idx[b] = _below(_word(k0, k1, tag, b, cell, path), n)
        return
    pos = 0
    for j in range(n - B, n):
        t = _below(_word(k0, k1, tag, pos, cell, path), j + 1)
        if mark[t]:
            t = j
        mark[t] = True
        idx[pos] = t
        pos += 1
    for b in range(B):
        mark[idx[b]] = False

"""Which normals a node of the Brownian tree owns, and drawing them (compiled helpers).

A node is named by its depth (whose Philox key it draws under, :func:`sdesim.brownian.tree.level_keys`),
a counter tag (:data:`TAG_TOP`, :data:`TAG_SPLIT`, :data:`TAG_BRIDGE`) and its index ``i`` (any
sign). Its ``m`` normals are consecutive counter indices from :func:`node_start` in the cell
word ``i >> RUN_BITS``, so the nodes of one run and depth are drawn together in one vectorised call.
"""

import numba as nb
import numpy as np

from numba.core import types
from numba.extending import overload

from .rng import normals_range
from .rng32 import normals_range32

__all__ = ["TAG_TOP", "TAG_SPLIT", "TAG_BRIDGE", "RUN_BITS", "node_start", "draw_normals", "nodes_normals",
           "node_normals"]

#: Counter tags under the level keys: depth-0 increments, splits, leaf bridges.
TAG_TOP, TAG_SPLIT, TAG_BRIDGE = 0, 1, 2

#: Nodes are numbered in runs of 2**RUN_BITS: a run of one depth shares a counter cell word, and
#: its normals are consecutive counter indices, drawn in one vectorised call.
RUN_BITS = 24


@nb.njit(inline="always", cache=True, fastmath=False)
def node_start(i, m):
    """First counter index of node ``i``'s normals: ``(i mod 2**24) m`` (< 2**46 for ``m <= 2**22``)
    plus bits 56-60 of ``i`` from bit 46 up (they land in the counter's high index bits); bits
    24-55 of ``i`` are the cell word."""
    return (((i >> 56) & 0x1F) << 46) + (i & 0xFFFFFF) * m


def draw_normals(k0, k1, tag, start, count, cell, path, out):
    """The normals ``start .. start + count - 1`` into ``out[:count]``, in ``out``'s precision:
    :func:`~sdesim.brownian.rng.normals_range` for float64, the float32 stream of
    :func:`~sdesim.brownian.rng32.normals_range32` (four per Philox call) for float32 (chosen at
    compile time by the overload below; this body serves interpreted runs)."""
    draw = normals_range32 if out.dtype == np.float32 else normals_range
    draw(k0, k1, tag, start, count, cell, path, out)


@overload(draw_normals, jit_options={"fastmath": False, "error_model": "numpy"})
def _draw_normals(k0, k1, tag, start, count, cell, path, out):
    if out.dtype == types.float32:
        def impl(k0, k1, tag, start, count, cell, path, out):
            normals_range32(k0, k1, tag, start, count, cell, path, out)
    else:
        def impl(k0, k1, tag, start, count, cell, path, out):
            normals_range(k0, k1, tag, start, count, cell, path, out)
    return impl


@nb.njit(inline="always", cache=True, fastmath=False)
def nodes_normals(keys, depth, tag, first, count, path, m, out):
    """``out[k m + c]``: normal ``c`` of node ``first + k`` at ``depth`` (``tag``) on path ``path``,
    for ``k < count`` and ``c < m``, in one vectorised draw. The nodes must share a run
    (``first mod 2**24 + count <= 2**24``; runs of aligned power-of-two blocks up to 2**24 do)."""
    i = np.int64(first)
    draw_normals(keys[depth, 0], keys[depth, 1], tag, node_start(i, m), count * m, i >> RUN_BITS, path, out)


@nb.njit(inline="always", cache=True, fastmath=False)
def node_normals(keys, depth, tag, i, path, m, out):
    """``out[:m]``: normals ``0 .. m - 1`` of node ``i`` at ``depth`` (``tag``) on path ``path``."""
    nodes_normals(keys, depth, tag, i, 1, path, m, out)

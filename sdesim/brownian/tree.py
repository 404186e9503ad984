"""Reproducible, refinable Brownian paths (compiled helpers).

The Brownian path of one simulated path is built cell by cell. Time is cut into cells of
width ``B`` (``brownian_dt``) starting at ``ts[0]``; inside cell ``j`` the path is a
*Brownian tree* (Levy's construction):

* the cell increment ``W(end) - W(start) = sqrt(B) Z`` uses normal number ``c`` (component
  ``c``) of tag 0;
* the midpoint of the node with index ``i`` on level ``l`` (an interval of width
  ``B / 2**l``) is ``(W(left) + W(right)) / 2 + sqrt(B / 2**(l + 2)) Z`` with normal number
  ``i * m + c`` of tag ``l + 1``;
* a point that is not dyadic is resolved by the same bisection down to level 32 and a
  final Brownian-bridge draw (tag 33) inside that leaf of width ``B / 2**32``.

Every normal is a counter-based function of ``(seed, path, cell, tag, number)``
(:mod:`sdesim.brownian.rng`), so the path depends on the seed and the path index alone. A solve
with step ``dt = B / 2**k`` reads the tree down to level ``k``; a solve with ``dt / 2``
reads one more level of the *same* tree, so coarse increments are exactly sums of fine ones
(to rounding). Levy areas for general-noise Milstein are computed from still deeper levels
of the same tree, so they also belong to the path a fine reference solve sees.
"""

import numba as nb
import numpy as np

from .rng import normal_at, normals_range

__all__ = ["LEAF_LEVEL", "sd_table", "cell_increment", "fill_cell", "bridge_point", "levy_area"]

#: Depth (below a cell) of the leaves in which non-dyadic points are bridged.
LEAF_LEVEL = 32


def sd_table(brownian_dt):
    """Standard deviations ``sqrt(B / 2**(l + 2))`` of the level-``l`` midpoint draws, and of the root."""
    levels = np.arange(LEAF_LEVEL + 1, dtype=np.float64)
    return np.sqrt(brownian_dt * 2.0 ** -(levels + 2.0))


@nb.njit(cache=True)
def cell_increment(k0, k1, cell, path, m, sqrt_b, out):
    """``out[c] = W_c(end) - W_c(start)`` of cell ``cell``: ``sqrt(B) Z`` (``m`` normals of tag 0)."""
    normals_range(k0, k1, 0, 0, m, cell, path, out)
    for c in range(m):
        out[c] *= sqrt_b


@nb.njit(cache=True)
def fill_cell(k0, k1, cell, path, depth, m, sqrt_b, sds, buf, z):
    """Fill ``buf[i, c] = W_c(start + i B / 2**depth) - W_c(start)`` for ``i = 0 .. 2**depth``.

    ``buf`` has shape ``(>= 2**depth + 1, m)``; ``z`` is scratch of size ``>= max(1, 2**(depth-1)) * m``.
    Costs ``2**depth * m`` normals.
    """
    n = 1 << depth
    cell_increment(k0, k1, cell, path, m, sqrt_b, buf[n])
    for c in range(m):
        buf[0, c] = 0.0
    for level in range(depth):
        nodes = 1 << level
        width = n >> level
        half = width >> 1
        normals_range(k0, k1, level + 1, 0, nodes * m, cell, path, z)
        sd = sds[level]
        for i in range(nodes):
            left = i * width
            for c in range(m):
                buf[left + half, c] = 0.5 * (buf[left, c] + buf[left + width, c]) + sd * z[i * m + c]


@nb.njit(cache=True)
def bridge_point(k0, k1, cell, path, depth, index, frac, m, sds, wl, wr, out, z):
    """W at a non-dyadic point of a cell, relative to the cell start.

    The point lies at fraction ``frac`` in (0, 1) of interval ``index`` on level ``depth``,
    whose end values are ``wl`` and ``wr`` (length ``m``; overwritten). Bisects the same tree
    down to level :data:`LEAF_LEVEL` and bridges inside the leaf, so the value does not
    depend on ``depth``. ``z`` is scratch of size ``>= m``; the result goes to ``out``.
    """
    x = frac
    level = depth
    idx = np.int64(index)
    while level < LEAF_LEVEL:
        normals_range(k0, k1, level + 1, idx * m, m, cell, path, z)
        sd = sds[level]
        for c in range(m):
            out[c] = 0.5 * (wl[c] + wr[c]) + sd * z[c]
        if x == 0.5:
            return
        if x < 0.5:
            for c in range(m):
                wr[c] = out[c]
            x = 2.0 * x
            idx = 2 * idx
        else:
            for c in range(m):
                wl[c] = out[c]
            x = 2.0 * x - 1.0
            idx = 2 * idx + 1
        level += 1
    # bridge inside the leaf: variance x (1 - x) * leaf width; sds[l]**2 = width(l) / 4
    sd = 2.0 * sds[LEAF_LEVEL] * np.sqrt(x * (1.0 - x))
    for c in range(m):
        out[c] = wl[c] + x * (wr[c] - wl[c]) + sd * normal_at(k0, k1, LEAF_LEVEL + 1, idx * m + c, cell, path)


@nb.njit(cache=True)
def levy_area(w_start, buf, first, last, w_end, m, area):
    """Discrete Levy area of the polygon ``w_start, buf[first], ..., buf[last - 1], w_end``.

    ``area[a, b] = 1/2 sum_l ((X_a(l) - X_a(0)) dX_b(l) - (X_b(l) - X_b(0)) dX_a(l))``, shape
    ``(m, m)``. With ``p`` pieces of width ``h / p`` its mean-square error against the true
    Levy area is ``O(h**2 / p)``, which is ``O(h**3)`` (strong order 1) when ``p >= 1 / h``.
    Cost ``O(p m**2)``.
    """
    for a in range(m):
        for b in range(m):
            area[a, b] = 0.0
    n_pts = last - first
    for piece in range(n_pts + 1):
        for a in range(m):
            xa_prev = w_start[a] if piece == 0 else buf[first + piece - 1, a]
            xa_next = w_end[a] if piece == n_pts else buf[first + piece, a]
            da = xa_next - xa_prev
            ra = xa_prev - w_start[a]
            for b in range(a + 1, m):
                xb_prev = w_start[b] if piece == 0 else buf[first + piece - 1, b]
                xb_next = w_end[b] if piece == n_pts else buf[first + piece, b]
                area[a, b] += 0.5 * (ra * (xb_next - xb_prev) - (xb_prev - w_start[b]) * da)
    for a in range(m):
        for b in range(a + 1, m):
            area[b, a] = -area[a, b]

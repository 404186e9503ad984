"""The public Brownian path object: one Brownian motion per (seed, path index), read at any times."""

import math
import numbers

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from .rng import seed_to_key
from .tree import (MAX_DEPTH, TAG_BRIDGE, TAG_SPLIT, TAG_TOP, TOP_LEVEL, leaf_position, level_keys, node_normals,
                   sd_by_depth, unit_scale)

__all__ = ["BrownianPath", "SNAP", "snap_coordinates"]

#: A time within ``SNAP * max(|u|, 1)`` (``u`` its tree coordinate, ``t / f``) of a dyadic point
#: ``k 2**e`` is read as that point (only grids at least 1024 times wider than the tolerance count): float rounding in computing times (``0.1 * 3``) does not move a save time
#: off a step grid, and, the rule not depending on ``dt``, every solve reads the same value there.
SNAP = 2.0**-40


def snap_coordinates(u):
    """Tree coordinates ``u`` with each value within ``SNAP * max(|u|, 1)`` of a dyadic point moved
    onto it (see :data:`SNAP`); a function of ``u`` alone. Only one point can qualify: the grid of
    the finest allowed width (the power of two ``>= 1024`` tolerances) holds every coarser grid's
    points, and its points are 1024 tolerances apart."""
    u = np.asarray(u, dtype=np.float64)
    tol = SNAP * np.maximum(np.abs(u), 1.0)
    mant, exp = np.frexp(1024.0 * tol)
    width = np.ldexp(1.0, exp - (mant == 0.5))  # the least power of two >= 1024 tol
    near = np.round(u / width) * width  # (exact: power-of-two scalings)
    return np.where(np.abs(u - near) <= tol, near, u)


class BrownianPath:
    """Brownian motions ``W^(i)`` (``noise_dim`` components), one per path index ``i``, as functions
    of absolute time, fixed by ``seed`` and ``unit``.

    Parameters
    ----------
    seed : int in [0, 2**64) or numpy.random.SeedSequence
        An int ``s`` means ``SeedSequence(s)``; ``SeedSequence(s).spawn(n)`` gives independent paths.
    noise_dim : number of independent components.
    unit : the step family (time units; SGD steps for the paper's SDEs). Solves with
        ``dt = unit * 2**k`` (any integer ``k``: ``dt``, ``dt / 2``, ``2 dt``, ...) read this path
        exactly, whatever their interval: a solve on ``[1, 2]`` continues one on ``[0, 1]``.
        Units that are power-of-two multiples of one another are the same path.
    dtype : ``"float64"`` (default) or ``"float32"``: the precision of the normals and of the tree's
        arithmetic. A float32 path is a path of its own (its normals are a separate stream, four per
        Philox call; see :mod:`sdesim.brownian.rng32`), not the float64 path rounded; every property
        above holds for it too. It is about 1.5x cheaper to draw, and with ``dtype="float32"`` a
        solve runs in float32 throughout.

    :func:`sdesim.solve` accepts it as ``bm=`` and hands it back as ``Solution.brownian``. Values at
    times off a solve's step grid are found by bisecting the same dyadic tree (about 48 bits below
    the time's magnitude, then a bridge inside the leaf), so they too do not depend on ``dt``.
    Cost here: up to ``MAX_DEPTH`` splits (``noise_dim`` normals each) per point and path, plus one
    normal per component and ``f * 4096`` time units spanned.
    """

    def __init__(self, seed=0, noise_dim: int = 1, *, unit: float = 1.0, dtype="float64") -> None:
        if isinstance(noise_dim, bool) or not isinstance(noise_dim, numbers.Integral) or noise_dim < 1:
            raise ValueError(f"noise_dim must be a positive integer, got {noise_dim!r}")
        if noise_dim > 1 << 22:
            raise ValueError(f"noise_dim must be at most 2**22, got {noise_dim}")
        if isinstance(unit, bool) or not isinstance(unit, numbers.Real) or not math.isfinite(unit) or unit <= 0:
            raise ValueError(f"unit must be a finite positive number, got {unit!r}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
        self.seed = seed
        self.key = seed_to_key(seed)
        self.noise_dim = int(noise_dim)
        self.unit = float(unit)
        self.scale = unit_scale(self.unit)[0]
        self.keys = level_keys(self.key)
        sds, top_sd = sd_by_depth(self.scale)
        self.sds, self.top_sd = sds.astype(self.dtype), self.dtype.type(top_sd)

    def __repr__(self):
        precision = "" if self.dtype == np.float64 else f", dtype={self.dtype.name!r}"
        return f"BrownianPath(seed={self.seed!r}, noise_dim={self.noise_dim}, unit={self.unit!r}{precision})"

    def __eq__(self, other):
        return (isinstance(other, BrownianPath) and self.key == other.key and self.noise_dim == other.noise_dim
                and self.scale == other.scale and self.dtype == other.dtype)

    def __hash__(self):
        return hash((int(self.key[0]), int(self.key[1]), self.noise_dim, self.scale, self.dtype.name))

    @property
    def top_width(self):
        """Width (time units) of the tree's independent top nodes: ``f * 2**TOP_LEVEL``."""
        return self.scale * 2.0**TOP_LEVEL

    def step_level(self, dt):
        """``e`` with ``dt = f * 2**e`` exactly (``f`` the unit's mantissa); ``ValueError`` if ``dt`` is
        not the unit times a power of two."""
        f, e = unit_scale(dt)
        if f != self.scale:
            raise ValueError(f"dt={dt!r} is not the Brownian path's unit {self.unit!r} times a power of two: "
                             "steps read the path exactly only on its own dyadic grid. Use dt = unit * 2**k, or a "
                             f"BrownianPath with unit={dt!r}")
        return e

    # ------------------------------------------------------------------------------ reading
    def coordinates(self, ts, dt=None):
        """Tree coordinates ``t / f`` of ``ts`` (``f`` the unit's mantissa), snapped as :func:`sdesim.solve`
        does (:data:`SNAP`: times within about 1e-12 of a dyadic point of the unit are that point,
        whatever the step). ``dt``: checked to be a step of this path's family."""
        ts = np.asarray(ts, dtype=np.float64)
        if not np.all(np.isfinite(ts)):
            raise ValueError("times contain NaN or inf")
        if dt is not None:
            self.step_level(dt)
        return snap_coordinates(ts / self.scale)

    def values(self, ts: ArrayLike, paths=None, *, dt=None) -> np.ndarray:
        """``W(ts) - W(ts[0])`` of ``paths`` (default: path 0), shape ``(T, n_paths, noise_dim)``,
        float64 (a float32 path's values are sums of float32 node values, read in float64);
        ``dt``: checked to read this path (``unit * 2**k``)."""
        u = self.coordinates(np.atleast_1d(ts), dt)
        w = self._absolute(u, self._paths(paths))
        return w - w[:1]

    def __call__(self, ts: ArrayLike, paths=None, *, dt=None) -> np.ndarray:
        """``W(ts)`` with ``W(0) = 0``, shape ``(T, n_paths, noise_dim)`` (cost grows with ``|t| / 4096``)."""
        u = self.coordinates(np.concatenate([[0.0], np.atleast_1d(np.asarray(ts, dtype=np.float64))]), dt)
        w = self._absolute(u, self._paths(paths))
        return w[1:] - w[:1]

    def increments(self, ts: ArrayLike, paths=None, *, dt=None) -> np.ndarray:
        """``W(ts[i + 1]) - W(ts[i])``, shape ``(T - 1, n_paths, noise_dim)``."""
        return np.diff(self.values(ts, paths, dt=dt), axis=0)

    def levy_area(self, s: float, t: float, paths=None, *, substeps: int = 1024) -> np.ndarray:
        """The discrete Levy area of ``W`` over ``[s, t]`` from ``substeps`` equal pieces (the
        approximation general-noise Milstein uses, read from the same path), ``(n_paths, m, m)``:
        ``A_ab = 1/2 sum_l ((W_a(l) - W_a(s)) dW_b(l) - (W_b(l) - W_b(s)) dW_a(l))``."""
        w = self.values(self._pieces(s, t, substeps), paths)  # (p + 1, P, m), relative to W(s)
        dw = np.diff(w, axis=0)
        prev = w[:-1]
        return 0.5 * (np.einsum("lpa,lpb->pab", prev, dw) - np.einsum("lpb,lpa->pab", prev, dw))

    def space_time_area(self, s: float, t: float, paths=None, *, substeps: int = 1024) -> np.ndarray:
        """The space-time Levy area ``H = (1/h) int_s^t (W(u) - W(s)) du - (W(t) - W(s)) / 2`` of each
        component over ``[s, t]`` (``h = t - s``), ``(n_paths, m)``, from the polygon through
        ``substeps`` equal pieces of the same path (the approximation the order 1.5 schemes use):
        mean 0, variance ``h (1 - 1 / substeps**2) / 12``, independent of ``W(t) - W(s)``."""
        pts = self._pieces(s, t, substeps)
        w = self.values(pts, paths)  # (p + 1, P, m), relative to W(s)
        mean = 0.5 * (w[:-1] + w[1:]).mean(axis=0)  # the trapezoid rule on equal pieces
        return mean - 0.5 * w[-1]

    @staticmethod
    def _pieces(s, t, substeps):
        if isinstance(substeps, bool) or not isinstance(substeps, numbers.Integral) or substeps < 1:
            raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
        if not t > s:
            raise ValueError(f"need s < t, got s={s!r}, t={t!r}")
        pts = s + (t - s) * np.arange(substeps + 1) / substeps
        pts[-1] = t
        return pts

    def _paths(self, paths):
        idx = np.atleast_1d(np.asarray(0 if paths is None else paths))
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or np.any(idx < 0) or np.any(idx >= 2**32):
            raise ValueError("paths must be path indices (integers in [0, 2**32))")
        return idx.astype(np.int64)

    def _absolute(self, u, paths):
        """``W(u) - W(J0 * 2**TOP_LEVEL)`` for the coordinates ``u`` (``J0`` the first depth-0 node
        spanned), shape ``(T, P, m)``."""
        if np.any(np.abs(u) >= 2.0 ** (TOP_LEVEL + MAX_DEPTH)):
            raise ValueError("times beyond the Brownian tree's range")
        leaves, index, frac = leaf_position(u)
        top = index >> leaves
        out = np.empty((u.size, paths.size, self.noise_dim))
        _evaluate(np.empty(self.noise_dim, self.dtype), self.keys, self.sds, self.top_sd, top, leaves, index, frac, int(top.min()), int(top.max()),
                  paths, self.noise_dim, out)
        return out


@nb.njit(cache=True, fastmath=False)
def _evaluate(z, keys, sds, top, top_nodes, leaves, index, frac, j_lo, j_hi, paths, m, out):
    """``out[q, ip]``: W at point ``q`` on path ``paths[ip]``; ``z``: scratch of ``m`` normals in the
    path's precision (its dtype picks the stream)."""
    prefix = np.zeros((j_hi - j_lo + 1, m))  # W at the start of depth-0 node j, relative to node j_lo
    for ip in range(paths.size):
        path = paths[ip]
        for j in range(j_lo, j_hi):
            node_normals(keys, 0, TAG_TOP, j, path, m, z)
            for c in range(m):
                prefix[j - j_lo + 1, c] = prefix[j - j_lo, c] + top * z[c]
        for q in range(top_nodes.size):
            j = top_nodes[q]
            leaf = leaves[q]
            node_normals(keys, 0, TAG_TOP, j, path, m, z)
            inc = top * z  # increment of the current node
            left = np.zeros(m)  # W at the current node's start, relative to depth-0 node j
            idx = np.int64(j)
            depth = 0
            on_node = frac[q] == 0.0 and index[q] == j << leaf
            while not on_node and depth < leaf:
                node_normals(keys, depth, TAG_SPLIT, idx, path, m, z)
                s = sds[depth]
                below = leaf - depth - 1
                if (index[q] >> below) & 1:
                    for c in range(m):
                        left[c] += 0.5 * inc[c] + s * z[c]
                        inc[c] = 0.5 * inc[c] - s * z[c]
                    idx = 2 * idx + 1
                    on_node = frac[q] == 0.0 and index[q] & ((np.int64(1) << below) - 1) == 0
                else:
                    for c in range(m):
                        inc[c] = 0.5 * inc[c] + s * z[c]
                    idx = 2 * idx
                depth += 1
            if not on_node:  # inside the leaf: a Brownian bridge
                node_normals(keys, leaf, TAG_BRIDGE, idx, path, m, z)
                sd = 2.0 * sds[leaf] * np.sqrt(frac[q] * (1.0 - frac[q]))
                for c in range(m):
                    left[c] += frac[q] * inc[c] + sd * z[c]
            for c in range(m):
                out[q, ip, c] = prefix[j - j_lo, c] + left[c]

"""The fused CUDA ensemble kernel: one thread integrates one path over every step.

The thread reads the Brownian path of :mod:`sdesim.brownian.tree` (a function of absolute time,
the same at every ``dt``) by walking the tree (:mod:`.walk`, normals from :mod:`.rng`): the steps
are the nodes ``g = g0, g0 + 1, ...`` at the step depth ``D``, so the increments, and ``ws``, are
the CPU's values number for number.

One factory, :func:`build_kernel`, generates a kernel per (SDE, scheme, dtype, bound on the step
depth, output mode): the walk's stack is a local array, whose size must be known when compiling.
The scheme's step is the CPU scheme's own step function (``solver.make_step``) compiled for the
device together with the user's functions (:mod:`.translate`), so the arithmetic of a step is the
same source on both backends.
"""

import math

import numpy as np
from numba import cuda
from numba import types as nbt

from ..brownian.tree import MAX_DEPTH
from .rng import load_tables
from .translate import device_function
from .walk import coarse_increment, walk_increment

__all__ = ["build_kernel"]


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

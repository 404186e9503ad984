"""The compiled ensemble kernel, generated once per (SDE, scheme, output mode, dtype).

One factory builds every kernel: the scheme's ``step`` and the output mode are captured as
compile-time constants, so there is a single time loop in the code base. Paths are processed
in chunks (``chunk`` paths; :data:`CHUNK` when moments are reduced on the fly); the kernel
releases the GIL and :func:`sdesim.solve` runs ranges of chunks on a pool of threads. Each
path's Brownian path is a counter-based function of (seed, path index, unit) read at absolute
times (:mod:`sdesim.brownian.tree`), so results are bitwise independent of the number of threads
and of how paths are split, and solves at ``dt`` and ``dt / 2`` see the same path.

Speed: the scheme's step, and through it the SDE's functions (compiled with
``inline="always"``), are inlined into the kernel at Numba's IR level, so a step makes no
function calls. Inside the loop every array is a borrowed view (:mod:`sdesim.runners.borrow`): binding
arrays to the inlined functions' parameters does no atomic reference counting. Steps lie on the
absolute grid ``g dt``; each step's increment comes from the walk down the Brownian tree (one
split per step on average). With no Levy areas and every save time on the grid (the common case)
it is used directly; otherwise the step's node is filled ``levy_levels`` depths down (its
sub-points, from which Levy or space-time areas are taken) and off-grid points are bridged in the same tree. Divisions
follow NumPy's error model (``1/0 = inf``): a diverging path becomes non-finite and is caught
at the next save time.
"""

import numba as nb
import numpy as np
from numba.core.dispatcher import Dispatcher

from .borrow import borrowed, keep_alive
from ..brownian.rng import float_as_bits
from ..caching.flags import explicit_flags
from ..brownian.areas import levy_area, space_time_area
from ..brownian.descent import descent_scratch
from ..brownian.tree import bridge_point, coarse_increment, fill_increments, fill_node, walk_increment

__all__ = ["CHUNK", "build_kernel"]

#: Paths per on-the-fly reduction group (fixed: reduced moments must not depend on the thread
#: count), and the largest chunk when paths are stored.
CHUNK = 64

#: Steps whose Brownian increments are made together: 2**B, one draw per tree depth, with B the
#: largest in [BLOCK_LEVELS, MAX_BLOCK_LEVELS] whose block holds at most BLOCK_NORMALS normals
#: (the numbers do not depend on B: every node is computed by the same instructions). Larger blocks
#: make longer draws: the sphere model at d = 10 (B = 8 against 5 with at most 512 normals) runs
#: 57.6 against 70.9 ns per path-step in float32 and 71.8 against 79.4 in float64; d = 100 (B = 5
#: against 4) is within 3%.
BLOCK_LEVELS, MAX_BLOCK_LEVELS, BLOCK_NORMALS = 4, 8, 4096

#: Steps between two looks at the stop flag within a path (a power of two minus one).
STOP_POLL = 1023

# Floating-point flags: allow reassociation and contraction (vectorised sums) but keep NaN/inf
# values (no nnan/ninf); the non-finite check reads exponent bits (see _is_finite).
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


@nb.njit(fastmath=False)
def _identity(t, y, args, out):
    for i in range(y.size):
        out[i] = y[i]


@nb.njit(fastmath=False)
def _no_projection(t, y, args):
    pass


_EXPONENT = np.uint64(0x7FF0000000000000)


@nb.njit(inline="always")
def _is_finite(x):
    """``x`` (float32 or float64) is neither inf nor NaN, from its exponent bits.

    Not ``np.isfinite``: that tests ``x - x == 0`` and, under the kernel's fast-math flags,
    reassociation folds ``x - x`` to 0 once the compiler sees how ``x`` was computed.
    """
    return (float_as_bits(np.float64(x)) & _EXPONENT) != _EXPONENT


def _jit(f):
    return explicit_flags(f) if isinstance(f, Dispatcher) else nb.njit(inline="always")(f)


def _make_select(mask):
    """Compiled ``select(args, path)``: the arguments path ``path`` sees, entry ``i`` replaced by
    ``args[i][path]`` where ``mask[i]`` (per-path entries, :mod:`sdesim.path_args`). ``args`` of a
    NamedTuple class stay of that class (the SDE's functions read them by name)."""
    if not any(mask):
        @nb.njit(inline="always")
        def select(args, path):
            return args
        return select
    items = ", ".join(f"args[{i}][path]" if per else f"args[{i}]" for i, per in enumerate(mask))

    def select(args, path):
        """(typed by the overload below)"""

    @nb.extending.overload(select, inline="always")
    def _select(args, path):
        namespace = {}
        if isinstance(args, nb.types.BaseNamedTuple):
            namespace["kind"] = args.instance_class
            exec(f"def impl(args, path):\n    return kind({items})\n", namespace)
        else:
            exec(f"def impl(args, path):\n    return ({items},)\n", namespace)
        return namespace["impl"]

    return select


@nb.njit(fastmath=False)
def _no_event(t, y, args):
    return -1.0


@nb.njit(inline="always")
def _crossing(t0, t1, v0, v1):
    """Where the line through ``(t0, v0 < 0)`` and ``(t1, v1 >= 0)`` crosses 0."""
    return t0 + (t1 - t0) * (-v0 / (v1 - v0))


def _make_increment_as_dtype(dtype, brownian_dtype):
    """``increment_as_dtype(w_rel, dW)``: the Brownian increment (in the path's precision) in the
    solve's dtype (``w_rel`` itself when they agree, else copied into ``dW``)."""
    if np.dtype(dtype) == np.dtype(brownian_dtype):
        @nb.njit(inline="always")
        def increment_as_dtype(w_rel, dW):
            return w_rel
    else:
        @nb.njit(inline="always")
        def increment_as_dtype(w_rel, dW):
            for c in range(w_rel.size):
                dW[c] = w_rel[c]
            return dW
    return increment_as_dtype


def _make_record(dim, m, store, save_w, func, n_f):
    """``record(q, p, ch, t, y, args, ...)``: save (``store``) or reduce (Welford, per chunk ``ch``)
    the state at save time ``q``; False (and ``fail_q[p] = q``) if it is not finite."""

    @nb.njit(inline="always")
    def record(q, p, ch, t, y, args, ys, ws, w_cell, w_rel, fail_q, acc_n, acc_mean, acc_m2, fval):
        for i in range(dim):
            if not _is_finite(y[i]):
                fail_q[p] = q
                return False
        if store:
            for i in range(dim):
                ys[q, p, i] = y[i]
        else:
            func(t, y, args, fval)
            cnt = acc_n[ch, q] + 1
            acc_n[ch, q] = cnt
            for i in range(n_f):
                delta = fval[i] - acc_mean[ch, q, i]
                acc_mean[ch, q, i] += delta / cnt
                acc_m2[ch, q, i] += delta * (fval[i] - acc_mean[ch, q, i])
        if save_w:
            for c in range(m):
                ws[q, p, c] = w_cell[c] + w_rel[c]
        return True

    return record


# ----------------------------------------------------------------------------- the Brownian walk
# Each step of a path reads its increment from the tree in one of two modes. Direct (no Levy area,
# every save time on the grid): blocks of 2**B steps, one walk per block, one draw per depth for
# the block's steps. Node: the step's node is filled K depths down (sub-points for Levy or
# space-time areas), and off-grid points are bridged inside it.
@nb.njit(inline="always")
def _block_increment(keys, sds, top_sd, coarse, span, walk_depth, B, g, first, left, path, save_w, stack, z, zu,
                     inc, block, w_cell, w_rel):
    """Direct mode: fill ``block`` when step ``g`` starts a block (or is the ``first`` step; ``left``
    steps remain in the solve) and return the row ``jb`` of ``block`` that holds its increment.
    W itself (``w_cell + w_rel``) is carried only when it is saved (``save_w``)."""
    if save_w:
        for c in range(w_rel.size):
            w_cell[c] += w_rel[c]
    # the count as a run-time value (w_rel.size, not the kernel's constant m): for a small constant
    # the compiler unrolls Philox into scalar code; as a loop it runs on SIMD lanes (d=10: 1.5x faster)
    m = w_rel.size
    jb = g & ((1 << B) - 1)  # (0 for coarse steps: B = 0)
    if coarse:
        coarse_increment(keys, top_sd, span, g, path, m, z, block[0])
    elif first or jb == 0:  # a new block: its node, then its steps still to come
        walk_increment(keys, sds, top_sd, walk_depth, g >> B, first, path, m, stack, z, zu, inc)
        fill_increments(keys, sds, walk_depth, g >> B, B, jb, min(1 << B, jb + left), path, m, inc, block, z)
    if save_w:
        for c in range(m):
            w_rel[c] = block[jb, c]
    return jb


@nb.njit(inline="always")
def _fill_step(keys, sds, top_sd, coarse, span, D, K, g, first, path, m, stack, z, zu, inc, buf):
    """Node mode: ``buf[j]`` = W at the ``2**K + 1`` sub-points of step ``g``, relative to its start."""
    if coarse:
        coarse_increment(keys, top_sd, span, g, path, m, z, inc)
    else:
        walk_increment(keys, sds, top_sd, D, g, first, path, m, stack, z, zu, inc)
    fill_node(keys, sds, D, g, K, path, m, inc, buf, z)


@nb.njit(inline="always")
def _bridge(keys, sds, D, K, g, leaf, index, frac, path, m, buf, wl, wr, out, z):
    """Node mode: ``out`` = W at an off-grid point (leaf ``index`` at depth ``leaf``, fraction
    ``frac`` of the leaf) inside step ``g``, relative to the step's start; returns the sub-interval
    ``j`` of ``buf`` that holds the point."""
    j = (index >> (leaf - D - K)) - (g << K)
    for c in range(m):
        wl[c] = buf[j, c]
        wr[c] = buf[j + 1, c]
    bridge_point(keys, sds, D + K, (g << K) + j, leaf, index, frac, path, m, wl, wr, out, z)
    return j


@nb.njit(inline="always")
def _next_node(keys, sds, top_sd, coarse, span, D, K, g, n, x0, x0_leaf, x0_index, x0_frac, path, m, stack, z, zu,
               inc, buf, wl, wr, w_cell, w_rel):
    """Node mode, at the start of step ``n`` (node ``g``): carry W over the last step into
    ``w_cell``, fill the new node's sub-points, and start from W(ts[0]) when ``ts[0]`` lies inside
    the first step (``x0 > 0``); returns the sub-interval the path is in."""
    n_buf = 1 << K
    if n > 0:
        for c in range(m):
            w_cell[c] += buf[n_buf, c]
            w_rel[c] -= buf[n_buf, c]
    _fill_step(keys, sds, top_sd, coarse, span, D, K, g, n == 0, path, m, stack, z, zu, inc, buf)
    j_cur = 0
    if n == 0 and x0 > 0.0:
        j_cur = _bridge(keys, sds, D, K, g, x0_leaf, x0_index, x0_frac, path, m, buf, wl, wr, w_rel, z)
        for c in range(m):
            w_cell[c] = -w_rel[c]
    return j_cur


def _make_advance(general_area, time_area):
    """Node mode: ``advance(...)`` moves W from ``t`` (sub-point ``j_cur``) to the next point, the
    step's end or the off-grid save time ``q``: ``dW``, the areas over the move, ``w_rel`` = W
    there; returns ``(t_to, j_to)``."""

    @nb.njit(inline="always")
    def advance(keys, sds, D, K, g, dt, on_grid, q, save_leaf, save_index, save_frac, save_t, t, t_end, j_cur,
                path, m, buf, wl, wr, w_to, w_rel, dW, area, z):
        n_buf = 1 << K
        t_to, j_to, last = t_end, n_buf, n_buf
        if on_grid:
            for c in range(m):
                w_to[c] = buf[n_buf, c]
        else:
            j_to = _bridge(keys, sds, D, K, g, save_leaf[q], save_index[q], save_frac[q], path, m, buf, wl, wr,
                           w_to, z)
            t_to = save_t[q]
            last = j_to + 1
        for c in range(m):
            dW[c] = w_to[c] - w_rel[c]
        if general_area:
            levy_area(w_rel, buf, j_cur + 1, last, w_to, m, area)
        if time_area:
            space_time_area(w_rel, t, buf, j_cur + 1, last, g * dt, dt / n_buf, w_to, t_to, m, area)
        for c in range(m):
            w_rel[c] = w_to[c]
        return t_to, j_to

    return advance


def _make_move(step, project, has_projection, event_fn, has_event, stop_at_event):
    """``move(...)``: one step of the scheme from ``t`` to ``t_to``, the projection, and the event's
    check; returns ``(y, y_new, ev_prev, stopped)`` (the state arrays swapped)."""

    @nb.njit(inline="always")
    def move(t, t_to, y, y_new, dW, area, args, work, ev_prev, p, event_t):
        step(t, t_to - t, y, dW, area, args, work, y_new)
        y, y_new = y_new, y  # (borrowed views: a swap costs nothing)
        if has_projection:
            project(t_to, y, args)
        stopped = False
        if has_event and ev_prev < 0.0:
            ev = float(event_fn(t_to, y, args))
            if ev >= 0.0:
                event_t[p] = _crossing(t, t_to, ev_prev, ev)
                stopped = stop_at_event
            ev_prev = ev
        return y, y_new, ev_prev, stopped

    return move


@nb.njit(inline="always")
def _walk_mode(K, D, x0, save_pos, areas, m):
    """``(direct, B)``: whether steps read their increments directly (no Levy ``areas``, every point
    on the grid), in blocks of ``2**B`` steps (``m`` noise components)."""
    direct = K == 0 and not areas and x0 == 0.0
    for q in range(save_pos.size):
        if save_pos[q] >= 0.0:
            direct = False
    levels = BLOCK_LEVELS
    while levels < MAX_BLOCK_LEVELS and (m << (levels + 1)) <= BLOCK_NORMALS:
        levels += 1
    return direct, (min(levels, max(D, 0)) if direct else 0)


@nb.njit(inline="always")
def _walk_scratch(n_buf, B, walk_depth, m, bt_):
    """``(z, zu)``: the walk's scratch normals (a step's ``n_buf`` sub-points, a block of ``2**B``
    steps, or a descent drawn in one go, whichever needs most) and the descent's uint32 plan."""
    descent_z, descent_zu = descent_scratch(walk_depth, m)
    return (np.empty(max(max(1, n_buf >> 1, 1 << B) * m + 2, descent_z), bt_), np.empty(descent_zu, np.uint32))


@nb.njit(inline="always")
def _brownian_scratch(n_buf, B, walk_depth, m, bt_):
    """A chunk's Brownian buffers (``buf, z, w_cell, w_rel, w_to, wl, wr, stack, inc, block, zu``), in
    the path's precision ``bt_``."""
    z, zu = _walk_scratch(n_buf, B, walk_depth, m, bt_)
    return (np.empty((n_buf + 1, m), bt_), z, np.zeros(m, bt_), np.zeros(m, bt_),
            np.empty(m, bt_), np.empty(m, bt_), np.empty(m, bt_), np.empty((max(walk_depth, 0) + 1, m), bt_),
            np.empty(m, bt_), np.empty((1 << B, m), bt_), zu)


def build_kernel(sde, solver, *, dtype, store, save_w, functional=None, n_functional=None, per_path=(),
                 event=None, stop_at_event=False, brownian_dtype="float64"):
    """Compile the kernel for ``sde`` and ``solver``, the state in ``dtype``, the Brownian path's
    normals and tree in ``brownian_dtype`` (its ``sds``/``top_sd`` arguments of that dtype).

    ``store=True``: every path is written to ``ys[save, path, :]``. ``store=False``: each
    chunk of paths reduces ``functional(t, y, args, out)`` (default: the state) to count,
    mean and sum of squared deviations (Welford) per save time. ``per_path[i]``: entry ``i`` of
    the arguments holds one value per path (the kernel hands path ``p`` the entry ``p``).
    ``event(t, y, args)``: a path's event is the first time the value is ``>= 0`` (located in its
    step by linear interpolation of the value, into ``event_t[path]``); ``stop_at_event`` ends the
    path there (its later save times are NaN when stored and not counted when reduced).
    """
    dim, m = sde.dim, sde.noise_dim
    work_size = solver.work_size(sde)
    general_area = solver.needs_levy_area(sde.noise)
    time_area = solver.needs_space_time_area(sde.noise)
    n_f = dim if functional is None else n_functional
    dt_, bt_ = np.dtype(dtype).type, np.dtype(brownian_dtype).type
    project = sde.projection if sde.projection is not None else _no_projection
    area_shape = solver.area_shape(sde)  # Levy areas (n, n) or space-time areas (1, noise_dim)
    select = _make_select(tuple(per_path))
    has_event = event is not None
    event_fn = _jit(event) if has_event else _no_event
    increment_as_dtype = _make_increment_as_dtype(dtype, brownian_dtype)
    record = _make_record(dim, m, store, save_w, _identity if functional is None else _jit(functional), n_f)
    advance = _make_advance(general_area, time_area)
    move = _make_move(solver.make_step(sde), project, sde.projection is not None, event_fn, has_event, stop_at_event)

    @nb.njit(nogil=True, fastmath=FASTMATH, error_model="numpy")
    def kernel(y0s, path0, n_paths, g0, x0, x0_leaf, x0_index, x0_frac, dt, n_steps, D, K, save_step, save_pos,
               save_leaf, save_index, save_frac, save_t,
               keys, sds, top_sd, args, ys, ws, fail_q, acc_n, acc_mean, acc_m2, event_t, chunk, stop, ch_lo, ch_hi):
        n_buf, n_save, n_chunks = 1 << K, save_step.size, (n_paths + chunk - 1) // chunk
        per_path_y0 = y0s.shape[0] > 1
        coarse = D < 0  # a step spans 2**-D independent top nodes
        span = 1 << max(0, -D)
        direct, B = _walk_mode(K, D, x0, save_pos, general_area or time_area, m)
        walk_depth = D - B  # the walk gives the increments of blocks (direct) or of steps
        # inside the loop, arrays are borrowed views (see sdesim.runners.borrow): binding them to the
        # inlined functions' parameters does no atomic reference counting
        args_ = borrowed(args)
        # (the array arguments too: steps bind keys, sds, event_t to inlined functions; 5 refcounts a step were ~23 ns)
        (keys, sds, y0s, save_step, save_pos, save_leaf, save_index, save_frac, save_t, ys, ws, fail_q, acc_n, acc_mean,
         acc_m2, event_t, stop) = borrowed((keys, sds, y0s, save_step, save_pos, save_leaf, save_index, save_frac,
                                            save_t, ys, ws, fail_q, acc_n, acc_mean, acc_m2, event_t, stop))
        for ch in range(ch_lo, min(ch_hi, n_chunks)):
            own = (np.empty(dim, dt_), np.empty(dim, dt_), np.zeros(work_size, dt_),
                   np.empty(m, dt_), np.zeros(area_shape, dt_), np.empty(n_f, dt_))
            y, y_new, work, dW, area, fval = borrowed(own)
            own_bm = _brownian_scratch(n_buf, B, walk_depth, m, bt_)
            # w_cell: W at the start of the current step (relative to ts[0]); w_rel: W now, relative to it
            buf, z, w_cell, w_rel, w_to, wl, wr, stack, inc, block, zu = borrowed(own_bm)
            for p in range(ch * chunk, min(n_paths, (ch + 1) * chunk)):
                if stop[0] != 0:  # Ctrl-C (sdesim.runners.threads): the results are not used
                    return
                path = path0 + p
                args_p = select(args_, path)
                src = p if per_path_y0 else 0
                for i in range(dim):
                    y[i] = y0s[src, i]
                for c in range(m):
                    w_cell[c] = 0.0
                    w_rel[c] = 0.0
                t = save_t[0]
                q = 0
                j_cur = 0  # buffer index of the last sub-point at or before t
                failed = False
                stopped = False  # (at its event, with stop_at_event)
                ev_prev = -1.0
                if has_event:
                    ev_prev = float(event_fn(t, y, args_p))
                for n in range(-1, n_steps):  # n = -1: the save at the start
                    if (n & STOP_POLL) == STOP_POLL and stop[0] != 0:
                        return
                    g = g0 + n
                    if n >= 0:
                        if direct:
                            jb = _block_increment(keys, sds, top_sd, coarse, span, walk_depth, B, g, n == 0,
                                                  n_steps - n, path, save_w, stack, z, zu, inc, block, w_cell, w_rel)
                            dW_step = increment_as_dtype(block[jb], dW)
                        else:
                            j_cur = _next_node(keys, sds, top_sd, coarse, span, D, K, g, n, x0, x0_leaf, x0_index,
                                               x0_frac, path, m, stack, z, zu, inc, buf, wl, wr, w_cell, w_rel)
                    t_end = (g + 1) * dt
                    # off-grid save times inside this step come first, then the grid point
                    while True:
                        on_grid = not (q < n_save and save_step[q] == n and save_pos[q] >= 0.0)
                        if n >= 0:
                            t_to = t_end
                            if not direct:
                                t_to, j_cur = advance(keys, sds, D, K, g, dt, on_grid, q, save_leaf, save_index,
                                                      save_frac, save_t, t, t_end, j_cur, path, m, buf, wl, wr, w_to,
                                                      w_rel, dW, area, z)
                                dW_step = dW
                            y, y_new, ev_prev, stopped = move(t, t_to, y, y_new, dW_step, area, args_p, work, ev_prev,
                                                              p, event_t)
                            if stopped:
                                break
                            t = t_to
                        if q < n_save and save_step[q] == n:
                            if not record(q, p, ch, t, y, args_p, ys, ws, w_cell, w_rel, fail_q,
                                          acc_n, acc_mean, acc_m2, fval):
                                failed = True
                                break
                            q += 1
                        if on_grid:
                            break
                    if n == -1 and has_event and ev_prev >= 0.0:  # the event holds at ts[0]
                        event_t[p] = t
                        stopped = stop_at_event
                    if failed or stopped or q >= n_save:
                        break
                if store and (failed or stopped):  # (stopped: the later save times are after the event)
                    for qq in range(fail_q[p] if failed else q, n_save):
                        for i in range(dim):
                            ys[qq, p, i] = np.nan
            keep_alive(own, own_bm)

    return kernel

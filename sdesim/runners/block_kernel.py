"""The block kernel: Euler-Maruyama advancing a block of paths together, for SDEs whose drift and
noise product over many paths share matrix products (the data models: one GEMM per pass for the
whole block instead of a thin one per path).

:func:`sdesim.solve` uses it instead of the per-path kernel (:mod:`.kernel`) when the SDE has an
``_euler_increment_block(t, h, Y, args, paths, dW, out)`` (``out = a(t, Y) h + b(t, Y) dW`` for the
rows of ``Y``, row ``q`` being path ``paths[q]``; internal: ``sgd_sde`` sets it for models with a
block form, whose drift and noise product come from one weighted sum, one GEMM back instead of two)
and the solve is plain: ``method="euler"``, every save time on the step grid, no saved Brownian
values, no event, no projection, no debug mode, per-path args only where the block function reads
them per path (``_block_per_path``: ``sgd_sde``'s per-path rates; see :func:`block_eligible`).
Each path reads its own Brownian path exactly as the per-path kernel does.

Blocks hold :func:`block_size` paths (set per model and precision), aligned at multiples of it
from the solve's first path;
the last block is padded with copies of its last path (with zero increments; their results are
dropped), so every call multiplies matrices of the same shapes. A path's numbers then depend on
its own columns of those products only: they do not depend on the number of threads, on how the
paths are split or on ``n_paths`` (tested). They differ from the per-path kernel's in rounding:
the GEMMs sum in another order, and the drift and the noise product are summed before their
tangent projection (for the classifier in float64: 5e-16 of the largest state after 10 steps,
1.3e-15 after 400). So a solve that the block kernel does not take (``save_brownian=True``, an
off-grid save time) gives other last bits.
"""

import numba as nb
import numpy as np

from .kernel import FASTMATH, _block_increment, _identity, _jit, _make_record, _walk_mode, _walk_scratch

__all__ = ["BLOCK_PATHS", "block_eligible", "block_size", "build_block_kernel"]

#: The most paths advanced together (and the reduce mode's chunk). 32 gave the most path-steps per
#: second for the digits classifier (6.7e3/s on one core in float64; 6.3e3 with 64, 6.5e3 with 16).
BLOCK_PATHS = 32


def block_size(sde, dtype, reduce):
    """Paths per block of a solve of ``sde`` in precision ``dtype``: the SDE's ``_block_paths``
    for that precision (a mapping from precision names to sizes, set by ``sgd_sde`` from the
    model's ``block_paths``), else :data:`BLOCK_PATHS`; reduce mode always takes
    :data:`BLOCK_PATHS` (its moments are kept per block).

    The size does not depend on ``n_paths`` or the thread count: every block multiplies matrices
    of the same shapes (the last one padded), so a path's numbers do not depend on them either.
    (They would not with the block size sized to ``n_paths``: BLAS may sum a product of another
    width in another order, which a test caught.)"""
    if reduce:
        return BLOCK_PATHS
    sizes = getattr(sde, "_block_paths", None) or {}
    return int(sizes.get(np.dtype(dtype).name, BLOCK_PATHS))


def block_eligible(plan):
    """Whether ``plan`` runs on the block kernel (see the module's docstring)."""
    sde = plan.sde
    return (getattr(sde, "_euler_increment_block", None) is not None and plan.method == "euler"
            and sde.projection is None and not plan.save_brownian and plan.event is None
            and _per_path_args_read(sde, plan.args, plan.args_mask) and not plan.debug
            and plan.levy_levels == 0 and float(plan.x0) == 0.0 and bool(np.all(plan.save_pos < 0.0)))



def _per_path_args_read(sde, args, mask):
    """Whether every per-path entry of ``args`` is one that the SDE's block function reads per path
    (its ``_block_per_path``: names of ``args`` fields)."""
    if not any(mask):
        return True
    names = getattr(args, "_fields", ())
    read = getattr(sde, "_block_per_path", ())
    return len(names) == len(mask) and all(name in read for name, per in zip(names, mask) if per)


def build_block_kernel(sde, *, dtype, store, functional=None, n_functional=None, brownian_dtype="float64"):
    """Compile the block kernel for ``sde`` (its ``_euler_increment_block``): stored paths
    (``store``) or on-the-fly moments of ``functional`` per block, as :func:`.kernel.build_kernel`."""
    dim, m = sde.dim, sde.noise_dim
    increment = sde._euler_increment_block
    n_f = dim if functional is None else n_functional
    dt_, bt_ = np.dtype(dtype).type, np.dtype(brownian_dtype).type
    record = _make_record(dim, m, store, False, _identity if functional is None else _jit(functional), n_f)

    @nb.njit(nogil=True, fastmath=FASTMATH, error_model="numpy")
    def kernel(y0s, path0, n_paths, P, g0, dt, n_steps, D, save_step, save_t, keys, sds, top_sd, args,
               ys, fail_q, acc_n, acc_mean, acc_m2, stop, ch_lo, ch_hi):
        n_save, n_blocks = save_step.size, (n_paths + P - 1) // P
        coarse, span = D < 0, 1 << max(0, -D)
        B = _walk_mode(0, D, 0.0, np.empty(0), False, m)[1]
        walk_depth = D - B
        for ch in range(ch_lo, min(ch_hi, n_blocks)):
            p_lo = ch * P
            n_real = min(n_paths, p_lo + P) - p_lo
            Y, dY = np.empty((P, dim), dt_), np.empty((P, dim), dt_)
            paths = np.empty(P, np.int64)  # (padding rows: the block's last path, its rates too)
            dW, fval = np.zeros((P, m), dt_), np.empty(n_f, dt_)
            stack, inc = np.empty((P, max(walk_depth, 0) + 1, m), bt_), np.empty((P, m), bt_)
            block = np.empty((P, 1 << B, m), bt_)
            z, zu = _walk_scratch(1, B, walk_depth, m, bt_)
            no_w = np.zeros(m, bt_)  # (no Brownian values are saved)
            no_ws = np.zeros((1, 1, 1))
            failed = np.zeros(P, np.bool_)
            for q in range(P):  # padding rows: the block's last path again
                paths[q] = path0 + p_lo + min(q, n_real - 1)
                src = p_lo + min(q, n_real - 1) if y0s.shape[0] > 1 else 0
                for i in range(dim):
                    Y[q, i] = y0s[src, i]
            t = save_t[0]
            q_save = 0
            for n in range(-1, n_steps):  # n = -1: the save at the start
                if stop[0] != 0:  # (every step: a step of a block is long)
                    return
                g = g0 + n
                if n >= 0:
                    for q in range(n_real):
                        if not failed[q]:
                            jb = _block_increment(keys, sds, top_sd, coarse, span, walk_depth, B, g, n == 0,
                                                  n_steps - n, path0 + p_lo + q, False, stack[q], z, zu, inc[q],
                                                  block[q], no_w, no_w)
                            for c in range(m):
                                dW[q, c] = block[q, jb, c]
                    t_to = (g + 1) * dt
                    h = dt_(t_to - t)  # (the update in the state's precision, as the per-path Euler step)
                    increment(t, h, Y, args, paths, dW, dY)
                    for q in range(P):
                        for i in range(dim):
                            Y[q, i] = Y[q, i] + dY[q, i]
                    t = t_to
                if q_save < n_save and save_step[q_save] == n:
                    for q in range(n_real):
                        if not failed[q]:
                            failed[q] = not record(q_save, p_lo + q, ch, t, Y[q], args, ys, no_ws, no_w, no_w,
                                                   fail_q, acc_n, acc_mean, acc_m2, fval)
                    q_save += 1
                    if q_save >= n_save:
                        break
            if store:  # a failed path's later save times are NaN (as in the per-path kernel)
                for q in range(n_real):
                    if failed[q]:
                        for qq in range(fail_q[p_lo + q], n_save):
                            for i in range(dim):
                                ys[qq, p_lo + q, i] = np.nan

    return kernel

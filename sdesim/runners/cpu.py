"""The CPU runner: compile the kernel for a plan (once per SDE functions and options), run it on
threads over chunks of paths, reduce blocks of paths on the fly -> :class:`~sdesim.Solution`."""

import time

import numpy as np

from ..caching import fingerprint, loaded_from_disk, use_disk_cache
from ..solution import Solution
from .block_kernel import block_eligible, block_size, build_block_kernel
from .kernel import CHUNK, build_kernel
from .results import finish_failures, merge_chunk_moments, reduced_mean, sample_variance
from .interrupts import sigint_deferred
from .threads import QUICK_WORK, blas_single_thread, new_stop_flag, run_ranges

__all__ = ["run_cpu", "REDUCE_BLOCK"]

#: Paths per kernel call in reduce mode: memory stays bounded whatever n_paths is.
REDUCE_BLOCK = 1 << 14
#: Compiled kernels, keyed by the SDE's compiled functions and the options: SDE objects built
#: from the same functions (e.g. the same model with other rates) share them.
_KERNELS = {}


def run_cpu(plan, *, progress=False):
    """Run ``plan`` (a :class:`~sdesim.plan.Plan`) on the CPU -> :class:`~sdesim.Solution`."""
    sde = plan.sde
    store = not plan.reduce
    # by value where the functions have a fingerprint (an SDE built again from the same functions,
    # e.g. the same model with other rates, reuses the kernel), else by the functions themselves
    block = block_eligible(plan)  # paths advanced in blocks (one GEMM per block: the data models)
    run = _run_block if block else _run
    key = (sde.fingerprint() or sde.kernel_key(), plan.method, store, plan.save_brownian,
           fingerprint(plan.functional) or plan.functional, plan.dtype, plan.args_mask,
           fingerprint(plan.event) or plan.event, plan.stop_at_event, plan.brownian.dtype.name,
           block and (fingerprint(sde._euler_increment_block) or sde._euler_increment_block))
    compile_s, source = 0.0, "memory"
    if key not in _KERNELS:
        with sigint_deferred():  # (a Ctrl-C inside the compiler's callbacks is not lost)
            t_c = time.perf_counter()
            if block:
                kernel = build_block_kernel(sde, dtype=plan.dtype, store=store, functional=plan.functional,
                                            n_functional=plan.functional_dim, brownian_dtype=plan.brownian.dtype)
            else:
                kernel = build_kernel(sde, plan.solver, dtype=plan.dtype, store=store, save_w=plan.save_brownian,
                                      functional=plan.functional, n_functional=plan.functional_dim,
                                      per_path=plan.args_mask, event=plan.event, stop_at_event=plan.stop_at_event,
                                      brownian_dtype=plan.brownian.dtype)
            options = (plan.solver, plan.method, store, plan.save_brownian, plan.functional, plan.functional_dim,
                       np.dtype(plan.dtype).str, plan.args_mask, plan.event, plan.stop_at_event,
                       plan.brownian.dtype.str, block and sde._euler_increment_block)
            what = f"the {plan.method} {'block ' if block else ''}kernel of {sde.name!r} ({np.dtype(plan.dtype).name})"
            use_disk_cache(kernel, "solve", (sde.kernel_key(), options), what)
            run(kernel, plan, plan.y0s[:1], 0, 0, 1, 1, True)  # compiles (or loads from the disk cache)
            _KERNELS[key] = kernel
            compile_s = time.perf_counter() - t_c
        source = "disk" if loaded_from_disk(kernel) else "compiled"
    kernel = _KERNELS[key]

    # a short solve lets the calling thread work too; a long one keeps it free to take Ctrl-C
    quick = plan.work < QUICK_WORK
    t_r = time.perf_counter()
    sol = Solution(ts=plan.ts, method=plan.method, dt=plan.dt, brownian=plan.brownian,
                   seed=plan.seed, dtype=np.dtype(plan.dtype).name)
    if store:
        ys, ws, fail_q, event_t = run(kernel, plan, plan.y0s, 0, plan.n_paths, plan.n_steps, plan.n_threads,
                                      quick)
        sol.ys = ys
        failed = np.flatnonzero(fail_q >= 0)
        failed_q = fail_q[failed]
        # the kernel stops a failed path (and one stopped at its event): read their W on their own
        ended = np.union1d(failed, np.flatnonzero(~np.isnan(event_t))) if plan.stop_at_event else failed
        if plan.save_brownian and ended.size:
            ws[:, ended] = plan.brownian.values(plan.ts, ended, dt=plan.dt)
        sol.ws = ws if plan.save_brownian else None
    else:
        sol.count, sol.mean, sol.var, failed, failed_q, event_t = _reduce_blocks(kernel, run, plan, progress, quick)
    sol.event_t = event_t if plan.event is not None else None
    K = plan.levy_levels
    sol.stats = {"compile_s": compile_s, "kernel": source, "run_s": time.perf_counter() - t_r, "n_steps": plan.n_steps,
                 "n_paths": plan.n_paths, "levy_substeps": 2**K if K else None,
                 "brownian_step_depth": plan.step_depth,
                 "paths_per_block": block_size(plan.sde, plan.dtype, plan.reduce) if block else 1}
    return finish_failures(sol, failed, failed_q, plan.ts, plan.n_paths, plan.on_nonfinite)


def _outputs(plan, n_paths, n_chunks):
    """The arrays a kernel writes: ``ys`` (stored) or per-chunk moments, ``fail_q``, ``event_t``."""
    dtype, store, n_f = plan.dtype, not plan.reduce, plan.functional_dim
    T = plan.save_step.size if n_paths else 1
    ys = np.empty((T, n_paths, plan.sde.dim) if store else (1, 1, 1), dtype=dtype)
    fail_q = np.full(n_paths, -1, dtype=np.int64)
    event_t = np.full(n_paths if plan.event is not None else 1, np.nan)  # (O(n_paths) only with an event)
    acc_n = np.zeros((n_chunks, T) if not store else (1, 1), dtype=np.int64)
    acc_mean = np.zeros((n_chunks, T, n_f) if not store else (1, 1, 1), dtype=dtype)
    return ys, fail_q, event_t, acc_n, acc_mean, np.zeros_like(acc_mean)


def _launch(kernel, fixed, n_chunks, n_threads, stop, quick):
    with blas_single_thread():  # user functions calling np.dot must not start a BLAS team per thread
        run_ranges(lambda lo, hi: kernel(*fixed, np.int64(lo), np.int64(hi)), n_chunks, n_threads, stop,
                   quick=quick)


def _run(kernel, plan, y0s, path0, n_paths, n_steps, n_threads, quick):
    """Paths ``path0 .. path0 + n_paths - 1`` -> ``(ys, ws, fail_q)`` stored, or per-chunk
    ``(acc_n, acc_mean, acc_m2, fail_q)`` reduced, each with ``event_t`` (NaN: no event)."""
    sde, store = plan.sde, not plan.reduce
    T = plan.save_step.size if n_paths else 1
    ws = np.zeros((T, n_paths, sde.noise_dim) if plan.save_brownian else (1, 1, 1))
    # reduce mode keeps per-chunk moments, so its chunks are fixed (results must not depend on the
    # thread count); stored paths are independent of the chunking: small chunks balance the threads
    chunk = CHUNK if not store else max(1, min(CHUNK, -(-n_paths // (4 * n_threads))))
    n_chunks = max(1, -(-n_paths // chunk))
    ys, fail_q, event_t, acc_n, acc_mean, acc_m2 = _outputs(plan, n_paths, n_chunks)
    stop = new_stop_flag()
    bm = plan.brownian
    x0_leaf, x0_index, x0_frac = plan.x0_leaf
    fixed = (y0s, np.int64(path0), np.int64(n_paths), np.int64(plan.g0), float(plan.x0), np.int64(x0_leaf),
             np.int64(x0_index), float(x0_frac), float(plan.dt), np.int64(n_steps), np.int64(plan.step_depth),
             np.int64(plan.levy_levels), plan.save_step, plan.save_pos, *plan.save_leaf, plan.ts, bm.keys, bm.sds,
             bm.top_sd, plan.args,
             ys, ws, fail_q, acc_n, acc_mean, acc_m2, event_t, np.int64(chunk), stop)
    _launch(kernel, fixed, n_chunks, n_threads, stop, quick)
    if store:
        return ys, ws, fail_q, event_t
    return acc_n, acc_mean, acc_m2, fail_q, event_t


def _run_block(kernel, plan, y0s, path0, n_paths, n_steps, n_threads, quick):
    """:func:`_run` on the block kernel (:mod:`.block_kernel`: blocks of :func:`.block_size` paths,
    one chunk each)."""
    P = block_size(plan.sde, plan.dtype, plan.reduce)
    n_chunks = max(1, -(-n_paths // P))
    ys, fail_q, event_t, acc_n, acc_mean, acc_m2 = _outputs(plan, n_paths, n_chunks)
    stop = new_stop_flag()
    bm = plan.brownian
    fixed = (y0s, np.int64(path0), np.int64(n_paths), np.int64(P), np.int64(plan.g0), float(plan.dt), np.int64(n_steps),
             np.int64(plan.step_depth), plan.save_step, plan.ts, bm.keys, bm.sds, bm.top_sd, plan.args,
             ys, fail_q, acc_n, acc_mean, acc_m2, stop)
    _launch(kernel, fixed, n_chunks, n_threads, stop, quick)
    if not plan.reduce:
        return ys, np.zeros((1, 1, 1)), fail_q, event_t
    return acc_n, acc_mean, acc_m2, fail_q, event_t


def _reduce_blocks(kernel, run, plan, progress, quick):
    """Run blocks of REDUCE_BLOCK paths and merge chunk moments in a fixed order (Chan et al.).

    -> ``(count, mean, var, failed, failed_q, event_t)``; memory does not grow with ``n_paths`` beyond the
    failed paths' indices. ``mean`` and ``var`` are NaN where no path was counted."""
    T, n_f, n_paths, y0s = plan.ts.size, plan.functional_dim, plan.n_paths, plan.y0s
    count = np.zeros(T)
    mean = np.zeros((T, n_f))
    m2 = np.zeros((T, n_f))
    fails, events = [], []
    starts = range(0, n_paths, REDUCE_BLOCK)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="paths", unit="block")
    for start in starts:
        size = min(REDUCE_BLOCK, n_paths - start)
        block_y0 = y0s[start:start + size] if y0s.shape[0] > 1 else y0s
        acc_n, acc_mean, acc_m2, fail_q, event_t = run(kernel, plan, block_y0, start, size, plan.n_steps,
                                                       plan.n_threads, quick)
        if plan.event is not None:  # (reduce mode stays flat in n_paths without an event)
            events.append(event_t)
        count, mean, m2 = merge_chunk_moments(count, mean, m2, acc_n, acc_mean, acc_m2)
        bad = np.flatnonzero(fail_q >= 0)
        if bad.size:
            fails.append((bad + start, fail_q[bad]))
    failed = np.concatenate([f[0] for f in fails]) if fails else np.zeros(0, np.int64)
    failed_q = np.concatenate([f[1] for f in fails]) if fails else np.zeros(0, np.int64)
    event_t = np.concatenate(events) if events else None
    return count, reduced_mean(count, mean), sample_variance(count, m2), failed, failed_q, event_t

"""The driver: validate input, lay out the time grid and save times, run the kernel -> Solution."""

import math
import numbers
import os
import time

import numpy as np

from ._kernel import CHUNK, build_kernel
from ._threads import QUICK_WORK, blas_single_thread, new_stop_flag, run_ranges
from ._rng import seed_to_key
from .brownian import LEAF_LEVEL, sd_table
from .sde import SDE
from .solution import NonFiniteError, Solution
from .solvers import get_solver

__all__ = ["solve"]

#: Paths per kernel call in reduce mode: memory stays bounded whatever n_paths is.
REDUCE_BLOCK = 1 << 14
#: Compiled kernels, keyed by the SDE's compiled functions and the options: SDE objects built
#: from the same functions (e.g. the same model with other rates) share them.
_KERNELS = {}
#: Largest Brownian buffer one thread may hold (bytes).
MAX_BUFFER_BYTES = 1 << 28


def solve(sde, y0, ts, *, method="euler", dt, n_paths=None, seed=0, dtype="float64",
          save_brownian=False, brownian_dt=None, levy_substeps=None, reduce=False,
          functional=None, functional_dim=None, on_nonfinite="raise", progress=False,
          n_threads=None, device="cpu", debug=None):
    """Integrate an ensemble of paths of ``sde`` and return a :class:`Solution`.

    Parameters
    ----------
    sde : SDE
    y0 : (dim,) or (n_paths, dim)
        Initial state, shared by all paths or one per path.
    ts : (T,) strictly increasing save times; integration runs from ``ts[0]`` to ``ts[-1]``.
    method : ``"euler"`` (strong order 0.5, weak 1) or ``"milstein"`` (strong order 1);
        see :data:`sdesim.solvers.SOLVERS` for what each accepts.
    dt : step size. Steps lie on the grid ``ts[0] + n dt``; a save time off that grid gets
        a shortened step to it, and the next step ends on the grid again.
    n_paths : number of paths (default: ``y0.shape[0]`` for a 2-d ``y0``, else 1).
    seed : non-negative integer. Path ``i`` uses a Brownian path that depends on
        ``(seed, i, brownian_dt, ts[0])`` only: not on threads, blocks or ``n_paths``.
    dtype : ``"float64"`` (default) or ``"float32"`` for the state.
    save_brownian : also return ``ws = W(ts) - W(ts[0])``.
    brownian_dt : width of the Brownian cells (default ``dt``); must be ``dt * 2**k``.
        Solves with the same ``seed`` and ``brownian_dt`` and steps ``dt, dt/2, dt/4, ...``
        see the same Brownian path, so strong errors can be measured pathwise. Each finer
        level costs no extra normals per step (one normal per step and noise component).
    levy_substeps : sub-steps per step for the Levy areas of general-noise Milstein (a power
        of two; default the smallest power of two >= 1/dt, which keeps strong order 1).
    reduce : if True, do not store paths; return ``mean``/``var`` over paths at each save
        time of the state, or of ``functional(t, y, args, out)`` (``functional_dim`` values).
        Memory does not grow with ``n_paths``.
    on_nonfinite : ``"raise"`` (default) raises :class:`NonFiniteError` naming the paths
        and times; ``"flag"`` returns them in ``Solution.failed``/``failed_at``.
    progress : show a progress bar over blocks of paths (reduce mode).
    n_threads : worker threads (default: the number of CPU cores). Results do not depend on it.
    device : ``"cpu"`` (default: compiled kernels on threads) or ``"cuda"``: one fused GPU kernel,
        one thread per path, the same Brownian paths; see :mod:`sdesim.backends.cuda` for what it
        runs and how its results relate to the CPU's.
    debug : compile the user functions bounds-checked and not inlined (slower), so that an error
        inside them during the solve (an index out of bounds, which otherwise corrupts memory or
        crashes the process) raises ``IndexError`` naming the function. Default: the environment
        variable ``SDESIM_DEBUG`` (``1`` turns it on).

    Ctrl-C stops a solve within about a second (``KeyboardInterrupt``; nothing is returned and
    the process stays usable). Grids the kernel cannot run (too many steps, a step below the
    resolution of the times) are refused before anything runs.
    """
    if device != "cpu":
        if device != "cuda":
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        from .backends import cuda as _cuda_backend
        return _cuda_backend.solve(
            sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, dtype=dtype,
            save_brownian=save_brownian, brownian_dt=brownian_dt, levy_substeps=levy_substeps,
            reduce=reduce, functional=functional, functional_dim=functional_dim,
            on_nonfinite=on_nonfinite, progress=progress, n_threads=n_threads)
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be an sdesim.SDE, got {type(sde).__name__}")
    solver, dtype, ts, dt, y0s, n_paths, k0, k1 = _check_common(
        sde, y0, ts, method, dt, n_paths, seed, dtype, on_nonfinite, reduce, save_brownian, functional)
    n_threads = (os.cpu_count() or 1) if n_threads is None else check_count(n_threads, "n_threads")
    if sde.state_check is not None:
        sde.state_check(y0s)
    if _debug_mode(debug):
        sde = sde.debug_twin()
    sde.check_at(ts[0], y0s[0], dtype, dense=solver.uses_dense_diffusion(sde))

    brownian_dt = dt if brownian_dt is None else _check_positive(brownian_dt, "brownian_dt")
    k = _dyadic_levels(brownian_dt / dt, "brownian_dt / dt")
    K = 0
    if solver.needs_levy_area(sde.noise):
        p = levy_substeps if levy_substeps is not None else 2 ** max(0, math.ceil(math.log2(1.0 / dt)))
        K = _dyadic_levels(p, "levy_substeps")
    elif levy_substeps is not None:
        raise ValueError(f"levy_substeps only applies to method='milstein' with general noise, "
                         f"not method={method!r} with noise={sde.noise!r}")
    depth = k + K
    if depth >= LEAF_LEVEL:
        raise ValueError(f"brownian_dt / dt * levy_substeps = 2**{depth} is too fine (limit 2**{LEAF_LEVEL - 1})")
    if (2 ** depth + 1) * sde.noise_dim * 8 * 2 > MAX_BUFFER_BYTES:
        raise ValueError(f"Brownian buffer of 2**{depth} x {sde.noise_dim} per thread is too large; "
                         "use a smaller brownian_dt / dt or levy_substeps")

    save_step, save_pos, n_steps = _save_layout(ts, dt, brownian_dt, k)

    functional_dim = _check_functional(functional, functional_dim, sde, reduce)
    if functional is not None:
        sde.check_functional(functional, functional_dim, ts[0], y0s[0], dtype)
        if sde.__dict__.get("_is_debug_twin"):
            functional = sde.debug_functional(functional)
    key = (sde.kernel_key(), method, not reduce, bool(save_brownian), functional, dtype)
    compile_s = 0.0
    if key not in _KERNELS:
        t_c = time.perf_counter()
        kernel = build_kernel(sde, solver, dtype=dtype, store=not reduce, save_w=save_brownian,
                              functional=functional, n_functional=functional_dim)
        _KERNELS[key] = kernel
        _run(kernel, y0s[:1], 0, 0, ts, dt, 1, k, K, save_step[:1], save_pos[:1], brownian_dt,
             k0, k1, sde, dtype, not reduce, save_brownian, functional_dim, 1, True)  # compiles
        compile_s = time.perf_counter() - t_c
    kernel = _KERNELS[key]

    # a short solve lets the calling thread work too; a long one keeps it free to take Ctrl-C
    work = float(n_paths) * max(n_steps, 1) * (sde.dim + sde.noise_dim) * 2.0**K
    quick = work < QUICK_WORK
    t_r = time.perf_counter()
    sol = Solution(ts=ts, method=method, dt=dt, brownian_dt=brownian_dt, seed=int(seed),
                   dtype=np.dtype(dtype).name)
    if not reduce:
        out = _run(kernel, y0s, 0, n_paths, ts, dt, n_steps, k, K, save_step, save_pos,
                   brownian_dt, k0, k1, sde, dtype, True, save_brownian, functional_dim, n_threads, quick)
        sol.ys, ws, fail_q = out[0], out[1], out[2]
        sol.ws = ws if save_brownian else None
        failed = np.flatnonzero(fail_q >= 0)
        failed_q = fail_q[failed]
    else:
        sol.count, sol.mean, sol.var, failed, failed_q = _reduce_blocks(
            kernel, y0s, n_paths, ts, dt, n_steps, k, K, save_step, save_pos, brownian_dt,
            k0, k1, sde, dtype, functional_dim, progress, n_threads, quick)
    run_s = time.perf_counter() - t_r
    sol.stats = {"compile_s": compile_s, "run_s": run_s, "n_steps": n_steps,
                 "n_paths": n_paths, "levy_substeps": 2**K if K else None, "brownian_levels": k}
    return finish_failures(sol, failed, failed_q, ts, n_paths, on_nonfinite)


def finish_failures(sol, failed, failed_q, ts, n_paths, on_nonfinite):
    """Raise :class:`NonFiniteError` for the paths ``failed`` that became non-finite (at save index
    ``failed_q``), or record them in ``sol.failed``/``failed_at`` (``on_nonfinite="flag"``)."""
    if failed.size:
        times = ts[failed_q]
        if on_nonfinite == "raise":
            raise NonFiniteError(failed, times, n_paths)
        sol.failed, sol.failed_at = failed, times
    return sol


def _debug_mode(debug):
    if debug is None:
        return os.environ.get("SDESIM_DEBUG", "").strip() not in ("", "0")
    if not isinstance(debug, (bool, np.bool_)):
        raise TypeError(f"debug must be True or False, got {debug!r}")
    return bool(debug)


def _run(kernel, y0s, path0, n_paths, ts, dt, n_steps, k, K, save_step, save_pos, brownian_dt,
         k0, k1, sde, dtype, store, save_w, n_f, n_threads, quick):
    T = save_step.size
    ys = np.empty((T, n_paths, sde.dim) if store else (1, 1, 1), dtype=dtype)
    ws = np.zeros((T, n_paths, sde.noise_dim) if save_w else (1, 1, 1))
    fail_q = np.full(n_paths, -1, dtype=np.int64)
    # reduce mode keeps per-chunk moments, so its chunks are fixed (results must not depend on the
    # thread count); stored paths are independent of the chunking: small chunks balance the threads
    chunk = CHUNK if not store else max(1, min(CHUNK, -(-n_paths // (4 * n_threads))))
    n_chunks = max(1, -(-n_paths // chunk))
    acc_n = np.zeros((n_chunks, T) if not store else (1, 1), dtype=np.int64)
    acc_mean = np.zeros((n_chunks, T, n_f) if not store else (1, 1, 1), dtype=dtype)
    acc_m2 = np.zeros_like(acc_mean)
    stop = new_stop_flag()
    fixed = (y0s, np.int64(path0), np.int64(n_paths), float(ts[0]), float(dt), np.int64(n_steps),
             np.int64(k), np.int64(K), save_step, save_pos, ts, math.sqrt(brownian_dt),
             sd_table(brownian_dt), k0, k1, sde.args, ys, ws, fail_q, acc_n, acc_mean, acc_m2,
             np.int64(chunk), stop)
    with blas_single_thread():  # user functions calling np.dot must not start a BLAS team per thread
        run_ranges(lambda lo, hi: kernel(*fixed, np.int64(lo), np.int64(hi)), n_chunks, n_threads, stop,
                   quick=quick)
    if store:
        return ys, ws, fail_q
    return acc_n, acc_mean, acc_m2, fail_q


def _check_common(sde, y0, ts, method, dt, n_paths, seed, dtype, on_nonfinite, reduce, save_brownian,
                  functional):
    """The checks every backend makes -> ``(solver, dtype, ts, dt, y0s, n_paths, k0, k1)``."""
    solver = get_solver(method)
    solver.check_noise(sde.noise)
    dtype = _check_dtype(dtype)
    ts = _check_ts(ts)
    dt = _check_positive(dt, "dt")
    y0s, n_paths = _check_y0(y0, sde.dim, n_paths, dtype)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    k0, k1 = seed_to_key(seed)
    if on_nonfinite not in ("raise", "flag"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'flag', got {on_nonfinite!r}")
    if reduce and save_brownian:
        raise ValueError("save_brownian=True stores every path; it cannot be combined with reduce=True")
    if functional is not None and not reduce:
        raise ValueError("functional is only used with reduce=True")
    _check_args(sde.args)
    return solver, dtype, ts, dt, y0s, n_paths, k0, k1


def _reduce_blocks(kernel, y0s, n_paths, ts, dt, n_steps, k, K, save_step, save_pos, brownian_dt,
                   k0, k1, sde, dtype, n_f, progress, n_threads, quick):
    """Run blocks of REDUCE_BLOCK paths and merge chunk moments in a fixed order (Chan et al.).

    -> ``(count, mean, var, failed, failed_q)``; memory does not grow with ``n_paths`` beyond the
    failed paths' indices. ``mean`` and ``var`` are NaN where no path was counted."""
    T = ts.size
    count = np.zeros(T)
    mean = np.zeros((T, n_f))
    m2 = np.zeros((T, n_f))
    fails = []
    starts = range(0, n_paths, REDUCE_BLOCK)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="paths", unit="block")
    for start in starts:
        size = min(REDUCE_BLOCK, n_paths - start)
        block_y0 = y0s[start:start + size] if y0s.shape[0] > 1 else y0s
        acc_n, acc_mean, acc_m2, fail_q = _run(
            kernel, block_y0, start, size, ts, dt, n_steps, k, K, save_step, save_pos,
            brownian_dt, k0, k1, sde, dtype, False, False, n_f, n_threads, quick)
        count, mean, m2 = merge_chunk_moments(count, mean, m2, acc_n, acc_mean, acc_m2)
        bad = np.flatnonzero(fail_q >= 0)
        if bad.size:
            fails.append((bad + start, fail_q[bad]))
    failed = np.concatenate([f[0] for f in fails]) if fails else np.zeros(0, np.int64)
    failed_q = np.concatenate([f[1] for f in fails]) if fails else np.zeros(0, np.int64)
    return count, reduced_mean(count, mean), sample_variance(count, m2), failed, failed_q


def reduced_mean(count, mean):
    """The merged mean, NaN at save times where no path was counted (all failed before them)."""
    return np.where(count[:, None] > 0, mean, np.nan)


def merge_chunk_moments(count, mean, m2, acc_n, acc_mean, acc_m2):
    """Merge per-chunk (count, mean, M2) into running ones, chunk by chunk in a fixed order (Chan et
    al.): ``count`` (T,), ``mean``/``m2`` (T, n_f); ``acc_*`` have a leading chunk axis."""
    for ch in range(acc_n.shape[0]):
        nb_ = acc_n[ch].astype(np.float64)[:, None]
        na = count[:, None]
        tot = na + nb_
        safe = np.where(tot > 0, tot, 1.0)
        delta = acc_mean[ch] - mean
        mean = mean + delta * (nb_ / safe)
        m2 = m2 + acc_m2[ch] + delta**2 * (na * nb_ / safe)
        count = tot[:, 0]
    return count, mean, m2


def sample_variance(count, m2):
    """``M2 / (count - 1)`` per save time; NaN where fewer than two paths were counted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 1, m2 / np.maximum(count[:, None] - 1, 1), np.nan)


# ----------------------------------------------------------------------------- validation
def _check_dtype(dtype):
    try:
        dt_ = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt_ not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt_.type


def _check_ts(ts):
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError(f"ts must be a 1-d array of at least 2 times, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError("ts contains NaN or inf")
    if np.any(np.diff(ts) <= 0):
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0])
        raise ValueError(f"ts must be strictly increasing; ts[{i}]={ts[i]} >= ts[{i + 1}]={ts[i + 1]}")
    return np.ascontiguousarray(ts)


def _check_positive(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {x!r}")
    return float(x)


def _check_y0(y0, dim, n_paths, dtype, name="y0", count="n_paths", owner="the SDE has dim"):
    """``(y0s, n)``: ``y0`` of shape ``(dim,)`` (shared by ``n_paths`` paths) or ``(n, dim)``, as
    a C-contiguous ``(n, dim)`` array. ``name``/``count``/``owner`` word the errors (also used for
    :func:`sdesim.normalized.run_sgd`'s ``w0``/``n_runs``)."""
    y0 = np.asarray(y0)
    if not np.issubdtype(y0.dtype, np.number) or np.iscomplexobj(y0) or y0.dtype == bool:
        raise TypeError(f"{name} must be a real array, got dtype {y0.dtype}")
    if y0.ndim == 1:
        if y0.shape[0] != dim:
            raise ValueError(f"{name} has length {y0.shape[0]} but {owner}={dim}")
        n = 1 if n_paths is None else n_paths
        y0s = y0[None, :]
    elif y0.ndim == 2:
        if y0.shape[1] != dim:
            raise ValueError(f"{name} has shape {y0.shape}; expected ({count}, {dim})")
        if n_paths is not None and n_paths != y0.shape[0]:
            raise ValueError(f"{name} has {y0.shape[0]} rows but {count}={n_paths}")
        n = y0.shape[0]
        y0s = y0
    else:
        raise ValueError(f"{name} must have shape ({dim},) or ({count}, {dim}), got {y0.shape}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{count} must be a positive integer, got {n!r}")
    if n >= 2**32:
        raise ValueError(f"{count} must be below 2**32")
    if not np.all(np.isfinite(y0s)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(y0s, dtype=dtype), int(n)


def _check_args(args):
    for i, a in enumerate(args):
        if isinstance(a, (bool, numbers.Number, np.number)):
            continue
        if isinstance(a, np.ndarray):
            if a.dtype == object:
                raise TypeError(f"args[{i}] is an object array; only numeric arrays can be passed")
            continue
        raise TypeError(f"args[{i}] has type {type(a).__name__}; args may hold numbers and numpy arrays only")


def _dyadic_levels(ratio, name):
    if isinstance(ratio, numbers.Integral):
        ratio = int(ratio)
    k = round(math.log2(ratio)) if ratio > 0 else -1
    if k < 0 or abs(ratio - 2.0**k) > 1e-9 * ratio:
        raise ValueError(f"{name} must be a power of two (1, 2, 4, ...), got {ratio!r}")
    return k


#: Most Brownian cells a path may have: the cell index is one 32-bit word of the Philox counter.
MAX_CELLS = 2**31


def _save_layout(ts, dt, brownian_dt, k):
    """For each save time: the grid step it falls in, and its position in its Brownian cell.

    ``save_pos`` is -1 for a time on the step grid (within 1e-9 dt), else the fraction of the
    cell it sits at; it depends on ``brownian_dt`` only, so that coarse and fine solves bridge
    to the very same point of the tree. Grids the kernel cannot run are refused here, with the
    counts computed in floating point before any integer cast.
    """
    span = ts[-1] - ts[0]
    n_cells = span / brownian_dt
    if not math.isfinite(n_cells) or n_cells >= MAX_CELLS:
        raise ValueError(f"the grid needs {n_cells:.3g} Brownian cells of width brownian_dt={brownian_dt:g} "
                         f"over [{ts[0]:g}, {ts[-1]:g}]; at most {MAX_CELLS - 1} are supported: "
                         "use a larger dt (or brownian_dt) or a shorter interval")
    t_max = max(abs(ts[0]), abs(ts[-1]))
    if t_max * 2.0**-52 > 1e-6 * dt:
        raise ValueError(f"dt={dt:g} is below the resolution of the times (|t| up to {t_max:g}): the steps "
                         "t_{n+1} - t_n could not be represented to 1e-6; shift the times towards 0 "
                         "or use a larger dt")
    u = (ts - ts[0]) / brownian_dt  # in cells
    g = u * 2.0**k  # in steps
    on_grid = np.abs(g - np.round(g)) <= 1e-9
    save_step = np.where(on_grid, np.round(g) - 1, np.floor(g)).astype(np.int64)
    save_pos = np.where(on_grid, -1.0, u - np.floor(u))
    save_step[0], save_pos[0] = -1, -1.0
    if np.any(np.diff(u) * 2.0**LEAF_LEVEL < 4):
        raise ValueError(f"save times closer than brownian_dt / 2**{LEAF_LEVEL - 2} are not supported")
    return save_step, save_pos, int(save_step[-1] + 1)


def check_count(value, name, minimum=1):
    """``value`` as an int if it is an integer (not a bool, not 2.5, not "2") >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_functional(functional, functional_dim, sde, reduce):
    if not reduce:
        return 1
    if functional is None:
        if functional_dim is not None:
            raise ValueError("functional_dim given without a functional")
        return sde.dim
    if functional_dim is None:
        raise ValueError("a functional needs functional_dim, the number of values it writes")
    return check_count(functional_dim, "functional_dim")

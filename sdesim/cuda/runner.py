"""The CUDA runner: a solve's plan run by fused kernels, one thread per path (see :mod:`sdesim.cuda`)."""

import math
import time
import warnings

import numpy as np

from ..brownian.rng import seed_to_key
from ..path_args import same_kind
from ..plan import make_plan
from ..runners.kernel import CHUNK
from ..runners.results import finish_failures, merge_chunk_moments, reduced_mean, sample_variance
from ..solution import Solution
from ..solvers import check_method
from .errors import GPUUnsupportedError

__all__ = ["solve", "run_cuda", "available", "simulated", "check_gpu_compatible", "normals_per_second",
           "THREADS_PER_BLOCK"]

#: Threads per block (a multiple of the warp size).
THREADS_PER_BLOCK = 128
#: Bytes of per-save output the device holds at once in reduce mode (paths run in blocks).
REDUCE_BYTES = 1 << 28
#: The compiled kernels, by (SDE functions, scheme, dtype, bound on the step depth, output mode).
_KERNELS = {}


def _cuda():
    """``numba.cuda``, or a clear error when there is neither a GPU nor the simulator."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba always ships a cuda module today
        raise RuntimeError("device='cuda' needs Numba's CUDA target: pip install 'sdesim[cuda]'") from exc
    if not cuda.is_available():
        raise RuntimeError(
            "device='cuda' needs a CUDA GPU with a working driver and Numba's CUDA target "
            "(pip install 'sdesim[cuda]' for numba-cuda); none is usable here. To run the GPU code "
            "on the CPU, set NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported (slow: tests only).")
    return cuda


def available():
    """True when ``device='cuda'`` can run here (a GPU, or the simulator)."""
    try:
        _cuda()
    except RuntimeError:
        return False
    return True


def simulated():
    """True when the CUDA code runs on Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def check_gpu_compatible(sde, method="euler", functional=None):
    """Raise :class:`GPUUnsupportedError` if ``sde`` (with ``method``) cannot run on the GPU.

    Checks the scheme and noise, and every function the step reaches (drift, diffusion or
    diffusion product, derivative, projection, ``functional``) for array allocation and BLAS.
    """
    solver = check_method(method, sde.noise, sde.calculus)
    if solver.needs_levy_area(sde.noise):
        raise GPUUnsupportedError(
            f"device='cuda' has no Milstein for general noise ({sde!r}): its Levy areas need "
            "levy_substeps points of the Brownian tree per step and an O(noise_dim**2) area per thread. "
            "Use method='euler' on the GPU, or method='milstein' with device='cpu'.")
    if solver.needs_space_time_area(sde.noise):
        raise GPUUnsupportedError(
            f"device='cuda' has no {method!r} (strong order 1.5): its space-time areas need sub-points of "
            "the Brownian tree per step. Use method='euler' or 'milstein' on the GPU, or device='cpu'.")
    from .translate import problems_of
    msg = problems_of(solver.make_step(sde), f"SDE {sde.name!r}")
    if msg is None and sde.projection is not None:
        msg = problems_of(sde.projection, f"SDE {sde.name!r} (projection)")
    if msg is None and functional is not None:
        msg = problems_of(functional, "functional")
    if msg is not None:
        raise GPUUnsupportedError(_explain(msg))


def _explain(msg):
    if "np.dot" in msg or "@" in msg:
        msg += (" Models whose per-step work is matrix products over a data set (the normalized "
                "classifier on digits: logits of n = 1348 samples x 650 weights per path and step) "
                "do not fit a per-thread kernel: on a GPU that work is one batched GEMM per step over "
                "all paths (see sdesim.compare.torchsde.ClassifierSGD with torchsde on CUDA).")
    return msg


def solve(sde, y0, ts, *, method="euler", dt, n_paths=None, seed=None, bm=None, dtype="float64",
          brownian_dtype=None, save_brownian=False, brownian_dt=None, levy_substeps=None, reduce=False,
          functional=None, functional_dim=None, on_nonfinite="raise", progress=False,
          n_threads=None, threads_per_block=None, grid_threads=None, debug=None):
    """:func:`sdesim.solve` on a CUDA GPU (same arguments, same :class:`~sdesim.Solution`).

    ``n_threads`` and ``progress`` are ignored. Launch tuning, results do not depend on it:
    ``threads_per_block`` (default :data:`THREADS_PER_BLOCK`); ``grid_threads`` caps the number
    of threads launched (default: one per path), each then integrates paths ``i, i + grid, ...``
    one after the other -- fewer resident threads keep their local arrays (the state, drift,
    increments: ``~5 dim`` values each) in cache.
    ``brownian_dt`` is deprecated and without effect (passed on to the plan, which warns).
    ``Solution.stats`` adds ``kernel_s`` (device time of the kernels, transfers excluded),
    ``device_s`` (allocation, upload and kernels, host copies excluded) and ``device``.
    """
    if levy_substeps is not None:
        raise GPUUnsupportedError("levy_substeps applies to Milstein with general noise, which device='cuda' "
                                  "does not run; use device='cpu'")
    plan = make_plan(sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, bm=bm, dtype=dtype,
                     brownian_dtype=brownian_dtype, save_brownian=save_brownian, brownian_dt=brownian_dt, reduce=reduce,
                     functional=functional, functional_dim=functional_dim, on_nonfinite=on_nonfinite,
                     n_threads=n_threads, debug=debug)
    return run_cuda(plan, threads_per_block=threads_per_block, grid_threads=grid_threads)


def run_cuda(plan, *, progress=False, threads_per_block=None, grid_threads=None):
    """Run ``plan`` (a :class:`~sdesim.plan.Plan`) on the GPU -> :class:`~sdesim.Solution`
    (``progress`` is ignored; for the launch options see :func:`solve`)."""
    if plan.debug:
        raise GPUUnsupportedError("debug mode (bounds-checked user functions) runs on device='cpu' only")
    if any(plan.args_mask):
        raise GPUUnsupportedError("per-path args (sdesim.per_path) run on device='cpu' only")
    if plan.brownian.dtype != np.float64:
        raise GPUUnsupportedError("a float32 Brownian path (brownian_dtype='float32') runs on device='cpu' only; "
                                  "the GPU reads the float64 path (in either state dtype)")
    sde, solver, method, dtype, ts, dt = plan.sde, plan.solver, plan.method, plan.dtype, plan.ts, plan.dt
    y0s, n_paths, reduce, functional = plan.y0s, plan.n_paths, plan.reduce, plan.functional
    save_brownian, bm, depth = plan.save_brownian, plan.brownian, plan.step_depth
    n_steps = plan.n_steps
    if threads_per_block is None:  # the simulator runs a Python thread per CUDA thread: fewer
        tpb = 32 if simulated() else THREADS_PER_BLOCK
    else:
        tpb = int(threads_per_block)
    if tpb < 1 or tpb > 1024:
        raise ValueError(f"threads_per_block must be in 1..1024, got {threads_per_block!r}")
    if grid_threads is not None and (isinstance(grid_threads, bool) or int(grid_threads) < 1):
        raise ValueError(f"grid_threads must be a positive integer, got {grid_threads!r}")
    check_gpu_compatible(sde, method, functional if reduce else None)
    if plan.levy_levels > 0:  # (refused above with the scheme; a plan made elsewhere)
        raise GPUUnsupportedError("device='cuda' has no Levy areas; use device='cpu'")
    off = np.flatnonzero(plan.save_pos >= 0.0)
    if plan.x0 > 0.0 or off.size:
        i = 0 if plan.x0 > 0.0 else int(off[0])
        raise GPUUnsupportedError(
            f"device='cuda' runs on the step grid of dt (the times n*dt) only; ts[{i}] = {float(ts[i])!r} "
            f"is not on it (dt = {dt!r}). Choose dt so that every time in ts is a multiple of it, or use "
            "device='cpu', which bridges the Brownian path to off-grid times.")
    n_f = plan.functional_dim if reduce else sde.dim  # values written per path and save time

    cuda = _cuda()
    store_state = functional is None
    from .kernel import build_kernel
    from .walk import depth_bound
    max_depth = depth_bound(depth)
    key = (sde.kernel_key(), method, np.dtype(dtype).str, max_depth, store_state, bool(save_brownian),
           functional, n_f)
    compile_s = 0.0
    launch = _Launch(cuda, sde, y0s, plan, dtype, tpb, grid_threads)
    if key not in _KERNELS:
        t_c = time.perf_counter()
        kern = build_kernel(sde, solver, dtype=dtype, max_depth=max_depth, store_state=store_state,
                            save_w=bool(save_brownian), functional=functional, n_functional=n_f)
        try:  # compile with a one-path launch
            launch.run(kern, 0, 1, n_f, bool(save_brownian))
        except Exception as exc:
            if any(w in type(exc).__name__ for w in ("Typing", "Lowering", "Unsupported")):
                raise GPUUnsupportedError(
                    f"the functions of {sde!r} could not be compiled for CUDA ({type(exc).__name__}); "
                    f"the CUDA target accepts a subset of what numba.njit does. Numba said:\n{exc}") from exc
            raise
        _KERNELS[key] = kern
        compile_s = time.perf_counter() - t_c
    kern = _KERNELS[key]

    t_r = time.perf_counter()
    sol = Solution(ts=ts, method=method, dt=dt, brownian=bm, seed=plan.seed, dtype=np.dtype(dtype).name)
    launch.kernel_s = launch.device_s = 0.0
    if not reduce:
        out, ws, fail_q = launch.run(kern, 0, n_paths, n_f, bool(save_brownian), to_host=True)
        sol.ys = out
        failed = np.flatnonzero(fail_q >= 0)
        if save_brownian and failed.size:  # the kernel stops a failed path: read its W on its own (as the CPU)
            ws[:, failed] = bm.values(ts, failed, dt=dt)
        sol.ws = ws if save_brownian else None
    else:
        sol.count, sol.mean, sol.var, fail_q = _reduce(launch, kern, n_paths, n_f, ts.size, dtype)
    run_s = time.perf_counter() - t_r
    sol.stats = {"compile_s": compile_s, "run_s": run_s, "kernel_s": launch.kernel_s,
                 "device_s": launch.device_s, "n_steps": n_steps, "n_paths": n_paths,
                 "levy_substeps": None, "brownian_step_depth": depth, "device": _device_name(cuda),
                 "threads_per_block": tpb, "grid_threads": grid_threads}
    failed = np.flatnonzero(fail_q >= 0)
    return finish_failures(sol, failed, fail_q[failed], ts, n_paths, plan.on_nonfinite)


def _device_name(cuda):
    if simulated():
        return "numba CUDA simulator"
    try:
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # pragma: no cover
        return "cuda"


def _to_device(cuda, args):
    """``args`` with every array copied to the device, nested tuples too (a NamedTuple keeps its class)."""
    items = [cuda.to_device(np.ascontiguousarray(a)) if isinstance(a, np.ndarray)
             else _to_device(cuda, a) if isinstance(a, tuple) else a for a in args]
    return same_kind(args, items)


class _Launch:
    """What every launch of one solve shares: device copies of y0, args, times and tables."""

    def __init__(self, cuda, sde, y0s, plan, dtype, tpb, grid_threads):
        from .rng import device_keys, tables
        self.cuda, self.sde, self.tpb, self.dtype = cuda, sde, tpb, dtype
        self.grid_threads = grid_threads
        self.y0s = y0s
        bm = plan.brownian
        self.g0, self.t0, self.dt = np.int64(plan.g0), float(plan.ts[0]), float(plan.dt)
        self.n_steps, self.depth = np.int64(plan.n_steps), np.int64(plan.step_depth)
        self.T = plan.ts.size
        self.d_save = cuda.to_device(np.ascontiguousarray(plan.save_step))
        self.d_keys = cuda.to_device(device_keys(bm.keys))
        self.d_sds = cuda.to_device(np.ascontiguousarray(bm.sds, dtype=np.float64))
        self.top_sd = float(bm.top_sd)
        self.tab = tables()
        self.d_args = _to_device(cuda, sde.args)
        self.kernel_s = self.device_s = 0.0

    def run(self, kern, path0, n, n_out, save_w, to_host=False):
        """Paths ``path0 .. path0 + n - 1``: device arrays (or host copies) ``out, ws, fail_q``."""
        cuda = self.cuda
        t_d = time.perf_counter()
        y0 = self.y0s if self.y0s.shape[0] == 1 else self.y0s[path0:path0 + n]
        d_y0 = cuda.to_device(np.ascontiguousarray(y0))
        out = cuda.device_array((self.T, n, n_out), dtype=self.dtype)
        ws = cuda.device_array((self.T, n, self.sde.noise_dim) if save_w else (1, 1, 1), dtype=np.float64)
        fail_q = cuda.to_device(np.full(n, -1, dtype=np.int64))
        blocks = max(1, -(-n // self.tpb))
        if self.grid_threads is not None:
            blocks = min(blocks, max(1, -(-int(self.grid_threads) // self.tpb)))
        cuda.synchronize()
        t_k = time.perf_counter()
        with warnings.catch_warnings():  # small launches (the compiling one) warn of low occupancy
            warnings.filterwarnings("ignore", message=".*under-utilization.*")
            kern[blocks, self.tpb](d_y0, np.int64(path0), np.int64(n), self.g0, self.t0, self.dt,
                                   self.n_steps, self.depth, self.d_save, self.d_keys, self.d_sds, self.top_sd, *self.tab,
                                   self.d_args, out, ws, fail_q)
            cuda.synchronize()
        t_e = time.perf_counter()
        self.kernel_s += t_e - t_k
        self.device_s += t_e - t_d
        if to_host:
            return out.copy_to_host(), (ws.copy_to_host() if save_w else None), fail_q.copy_to_host()
        return out, ws, fail_q


def _reduce(launch, kern, n_paths, n_f, T, dtype):
    """Blocks of paths on the device, reduced on the host in the CPU backend's order.

    Per chunk of :data:`~sdesim.runners.kernel.CHUNK` paths: Welford in the state dtype; chunks merged in
    path order (Chan et al.) in float64, as :func:`sdesim.solve` does.
    """
    itemsize = np.dtype(dtype).itemsize
    block = max(CHUNK, (REDUCE_BYTES // max(1, T * n_f * itemsize)) // CHUNK * CHUNK)
    count = np.zeros(T)
    mean = np.zeros((T, n_f))
    m2 = np.zeros((T, n_f))
    fail_all = np.full(n_paths, -1, dtype=np.int64)
    for start in range(0, n_paths, block):
        size = min(block, n_paths - start)
        vals, _, fail_q = launch.run(kern, start, size, n_f, False, to_host=True)
        n_chunks = -(-size // CHUNK)
        acc_n = np.zeros((n_chunks, T), dtype=np.int64)
        acc_mean = np.zeros((n_chunks, T, n_f), dtype=dtype)
        acc_m2 = np.zeros_like(acc_mean)
        _welford_chunks(vals, fail_q, acc_n, acc_mean, acc_m2)
        count, mean, m2 = merge_chunk_moments(count, mean, m2, acc_n, acc_mean, acc_m2)
        fail_all[start:start + size] = fail_q
    return count, reduced_mean(count, mean), sample_variance(count, m2), fail_all


def _welford_chunks(vals, fail_q, acc_n, acc_mean, acc_m2):
    _welford_kernel()(vals, fail_q, acc_n, acc_mean, acc_m2)


_WELFORD = []


def _welford_kernel():
    if not _WELFORD:
        import numba as nb

        @nb.njit(cache=False)
        def welford(vals, fail_q, acc_n, acc_mean, acc_m2):
            T, P, n_f = vals.shape
            for p in range(P):
                ch = p // CHUNK
                last = T if fail_q[p] < 0 else fail_q[p]
                for q in range(last):
                    cnt = acc_n[ch, q] + 1
                    acc_n[ch, q] = cnt
                    for i in range(n_f):
                        delta = vals[q, p, i] - acc_mean[ch, q, i]
                        acc_mean[ch, q, i] += delta / cnt
                        acc_m2[ch, q, i] += delta * (vals[q, p, i] - acc_mean[ch, q, i])

        _WELFORD.append(welford)
    return _WELFORD[0]


def normals_per_second(n_paths, n_cells, m, *, seed=0, threads_per_block=None, repeats=1):
    """The card's random-number ceiling: normals per second of a bare kernel that makes as many
    normals as a solve of ``n_paths`` paths, ``n_cells`` steps and ``m`` noise components draws on
    average (one tree split of ``m`` normals per step; same generator, plain tag-0 counters), and
    only sums them. Returns ``(rate, seconds)``."""
    cuda = _cuda()
    from .rng import build_normals_kernel, seed_words, tables
    key = ("normals",)
    if key not in _KERNELS:
        _KERNELS[key] = build_normals_kernel()
    kern = _KERNELS[key]
    tpb = THREADS_PER_BLOCK if threads_per_block is None else int(threads_per_block)
    k0, k1 = seed_words(*seed_to_key(seed))
    out = cuda.device_array(n_paths, dtype=np.float64)
    blocks = max(1, -(-n_paths // tpb))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*under-utilization.*")
        kern[1, tpb](np.int64(1), np.int64(1), np.int64(m), k0, k1, *tables(), out)  # compile
        cuda.synchronize()
    best = math.inf
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        kern[blocks, tpb](np.int64(n_paths), np.int64(n_cells), np.int64(m), k0, k1, *tables(), out)
        cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return n_paths * n_cells * m / best, best

"""The driver: :func:`solve` validates its arguments into a plan and runs it on the CPU or on CUDA."""

from typing import Callable, Optional

from numpy.typing import ArrayLike

from .brownian.path import BrownianPath
from .plan import make_plan
from .runners.cpu import run_cpu
from .sde import SDE
from .solution import Solution

__all__ = ["solve"]


def solve(sde: SDE, y0: ArrayLike, ts: ArrayLike, *, method: str = "euler", dt: float,
          n_paths: Optional[int] = None, seed=None, bm: Optional[BrownianPath] = None, dtype: str = "float64",
          brownian_dtype: Optional[str] = None, save_brownian: bool = False, brownian_dt: Optional[float] = None,
          levy_substeps: Optional[int] = None, reduce: bool = False, functional: Optional[Callable] = None,
          functional_dim: Optional[int] = None, on_nonfinite: str = "raise", progress: bool = False,
          n_threads: Optional[int] = None, device: str = "cpu", debug: Optional[bool] = None,
          event: Optional[Callable] = None, stop_at_event: bool = False) -> Solution:
    """Integrate an ensemble of paths of ``sde`` and return a :class:`Solution`.

    Parameters
    ----------
    sde : SDE
    y0 : (dim,) or (n_paths, dim)
        Initial state, shared by all paths or one per path.
    ts : (T,) strictly increasing save times; integration runs from ``ts[0]`` to ``ts[-1]``.
    method : ``"euler"`` (strong order 0.5, weak 1), ``"milstein"`` (strong order 1),
        ``"euler_heun"`` (Stratonovich, strong order 1 for commutative noise), ``"srk"`` (strong
        order 1.5: scalar, diagonal, additive noise) or ``"sra1"`` (strong order 1.5, additive noise);
        see :data:`sdesim.solvers.SOLVERS` for what each accepts.
    dt : step size. Steps lie on the absolute grid ``g dt`` (``g`` integer); a save time (or
        ``ts[0]``) off that grid gets a shortened step to it, and the next step ends on the grid
        again. A time within about ``1e-12 max(|t|, 1)`` of a dyadic point of the step family is
        taken as that point, whatever ``dt`` (so float rounding in ``ts`` does not matter, and
        every ``dt`` reads the same path values).
    n_paths : number of paths (default: ``y0.shape[0]`` for a 2-d ``y0``, else 1).
    seed : an int in [0, 2**64) (default 0) or a ``numpy.random.SeedSequence``. Path ``i`` reads
        Brownian motion ``i`` of ``BrownianPath(seed, noise_dim, unit=dt)``: a function of absolute
        time, the same for every ``dt * 2**k`` and every interval (a solve on [1, 2] continues one
        on [0, 1]), and independent of threads, blocks and ``n_paths``. ``SeedSequence(s).spawn(n)``
        gives independent ensembles.
    bm : a :class:`~sdesim.BrownianPath` to read instead of ``seed`` (``dt`` must be its unit
        times a power of two); ``Solution.brownian`` is the path a solve read.
    dtype : ``"float64"`` (default) or ``"float32"`` for the state.
    brownian_dtype : ``"float64"`` (default) or ``"float32"``: the precision of the Brownian path
        (``BrownianPath(seed, noise_dim, unit=dt, dtype=brownian_dtype)``). A float32 path is a path of
        its own (other normals than the float64 one, with the same properties) and cheaper to draw:
        with ``dtype="float32"`` too the solve runs in float32 throughout (the fastest choice; CPU only).
        Default: ``bm``'s precision, else float64 (so float32 and float64 solves read the same path).
    save_brownian : also return ``ws = W(ts) - W(ts[0])``.
    brownian_dt : deprecated and without effect (solves at ``dt * 2**k`` read the same path).
    levy_substeps : sub-steps of the Brownian path per step from which areas are read (a power of
        two): the Levy areas of general-noise Milstein (default the smallest power of two >= 1/dt,
        which keeps strong order 1) and the space-time areas of ``srk``/``sra1`` (default the smallest
        power of two >= 2/sqrt(dt), at least 2, which keeps strong order 1.5).
    reduce : if True, do not store paths; return ``mean``/``var`` over paths at each save
        time of the state, or of ``functional(t, y, args, out)`` (``functional_dim`` values).
        Memory does not grow with ``n_paths``.
    on_nonfinite : ``"raise"`` (default) raises :class:`NonFiniteError` naming the paths
        and times; ``"flag"`` returns them in ``Solution.failed``/``failed_at``.
    progress : show a progress bar over blocks of paths (reduce mode).
    n_threads : worker threads (default: the number of CPU cores). Results do not depend on it.
    device : ``"cpu"`` (default: compiled kernels on threads) or ``"cuda"``: one fused GPU kernel,
        one thread per path, the same Brownian paths; see :mod:`sdesim.cuda` for what it
        runs and how its results relate to the CPU's.
    debug : compile the user functions bounds-checked and not inlined (slower), so that an error
        inside them during the solve (an index out of bounds, which otherwise corrupts memory or
        crashes the process) raises ``IndexError`` naming the function. Default: the environment
        variable ``SDESIM_DEBUG`` (``1`` turns it on).
    event : ``event(t, y, args) -> float`` (compiled like the SDE's functions): each path's event is
        the first time the value is ``>= 0``, returned in ``Solution.event_t`` (NaN where it is not
        reached by ``ts[-1]``). It is evaluated at the end of every step and located in the step
        where it changes sign by linear interpolation of its value: exact for a value linear in
        time over the step, ``O(dt**2)`` for a smooth path; for a diffusing path a crossing inside
        a step that returns before the step ends is missed, so the times are late by
        ``O(sqrt(dt))`` on average (discrete monitoring; for Brownian motion with unit volatility
        the shift is as if the level were ``0.5826 sqrt(dt)`` further away). CPU only.
    stop_at_event : end each path at its event: its later save times are NaN (stored) or not
        counted (``reduce=True``: ``count`` says how many paths each time has).

    Ctrl-C stops a solve within about a second (``KeyboardInterrupt``; nothing is returned and
    the process stays usable). Grids the kernel cannot run (too many steps, a step below the
    resolution of the times) are refused before anything runs.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":  # numba.cuda is imported only when asked for; the same plan, run on the GPU
        if event is not None:
            raise ValueError("events (event=) run on device='cpu' only")
        from .cuda import solve as solve_cuda
        return solve_cuda(sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, bm=bm, dtype=dtype,
                          brownian_dtype=brownian_dtype,
                          save_brownian=save_brownian, brownian_dt=brownian_dt, levy_substeps=levy_substeps,
                          reduce=reduce, functional=functional, functional_dim=functional_dim,
                          on_nonfinite=on_nonfinite, progress=progress, n_threads=n_threads, debug=debug)
    plan = make_plan(sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, bm=bm, dtype=dtype,
                     brownian_dtype=brownian_dtype, save_brownian=save_brownian, brownian_dt=brownian_dt,
                     levy_substeps=levy_substeps,
                     reduce=reduce, functional=functional, functional_dim=functional_dim,
                     on_nonfinite=on_nonfinite, n_threads=n_threads, debug=debug, event=event,
                     stop_at_event=stop_at_event)
    return run_cpu(plan, progress=progress)

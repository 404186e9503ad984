"""A validated plan of a solve, built once and run by the CPU runner or by the CUDA runner.

:func:`make_plan` makes every check that does not depend on where the solve runs (the scheme and
the noise, shapes, dtype, the time grid and its limits, seeds, the user functions at
``(ts[0], y0)``) and lays out the time grid, the save times and the Brownian levels.
"""

import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .brownian.path import BrownianPath
from .brownian.tree import MAX_DEPTH, TOP_LEVEL, leaf_depth, leaf_position
from .noise_check import check_noise_structure
from .sde import SDE
from .path_args import PerPath, args_of_path, split_args
from .solvers import Solver, check_method

__all__ = ["Plan", "make_plan", "check_y0", "check_count", "check_positive", "MAX_CELLS",
           "MAX_BUFFER_BYTES"]

#: Most steps a path may have.
MAX_CELLS = 2**31
#: Largest Brownian buffer one thread may hold (bytes).
MAX_BUFFER_BYTES = 1 << 28


@dataclass(frozen=True)
class Plan:
    """What a runner needs, checked. Times are the SDE's own (SGD steps for the paper's SDEs).

    ``y0s``: ``(1, dim)`` (shared) or ``(n_paths, dim)``; ``brownian``: the path read (its unit
    is in ``dt``'s family); steps are the intervals ``[g dt, (g + 1) dt]`` of the absolute grid,
    ``g = g0, g0 + 1, ...``; ``ts[0]`` lies at fraction ``x0`` of step ``g0`` (0 on the grid).
    ``step_depth``: depth of a step's node in the Brownian tree (negative: a step spans
    ``2**-step_depth`` depth-0 nodes); ``levy_levels``: ``2**levy_levels`` Levy-area sub-steps per
    step (0 unless the scheme needs areas); ``save_step[q]``: the step in which save time ``q``
    ends (-1 for ``ts[0]``), ``save_pos[q]``: its fraction of that step, -1 on the grid;
    ``save_leaf``/``x0_leaf``: ``(depths, indices, fractions)`` of the leaves of off-grid points
    (:func:`~sdesim.brownian.tree.leaf_position`); ``functional_dim``: values per path
    reduced (``dim`` without a functional); ``args``: the SDE's arguments with per-path entries
    unwrapped to their arrays, ``args_mask``: which entries are per path (:mod:`sdesim.path_args`);
    ``event``/``stop_at_event``: the event function (see :func:`sdesim.solve`) and whether a path ends there.
    """

    sde: SDE
    solver: Solver
    method: str
    dtype: type
    ts: np.ndarray
    dt: float
    y0s: np.ndarray
    n_paths: int
    seed: object
    brownian: BrownianPath
    step_depth: int
    g0: int
    x0: float
    x0_leaf: tuple
    levy_levels: int
    save_step: np.ndarray
    save_pos: np.ndarray
    save_leaf: tuple
    n_steps: int
    reduce: bool
    save_brownian: bool
    functional: Optional[Callable]
    functional_dim: int
    on_nonfinite: str
    n_threads: int
    debug: bool
    args: tuple
    args_mask: tuple
    event: Optional[Callable]
    stop_at_event: bool

    @property
    def needs_buffer(self):
        """Whether steps fill their sub-points (Levy areas) or bridge to off-grid points."""
        return self.levy_levels > 0 or self.x0 > 0.0 or bool(np.any(self.save_pos >= 0.0))

    @property
    def work(self):
        """Work units of the whole solve: path-steps x (dim + noise_dim) x Levy sub-steps."""
        return (float(self.n_paths) * max(self.n_steps, 1) * (self.sde.dim + self.sde.noise_dim)
                * 2.0**self.levy_levels)


def make_plan(sde, y0, ts, *, method="euler", dt, n_paths=None, seed=None, bm=None, dtype="float64",
              brownian_dtype=None, save_brownian=False, brownian_dt=None, levy_substeps=None, reduce=False,
              functional=None, functional_dim=None, on_nonfinite="raise", n_threads=None,
              debug=None, event=None, stop_at_event=False) -> Plan:
    """Check the arguments of :func:`sdesim.solve` and lay out the solve (see there)."""
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be an sdesim.SDE, got {type(sde).__name__}")
    solver = check_method(method, sde.noise, sde.calculus)
    dtype = check_dtype(dtype)
    ts = check_ts(ts)
    dt = check_positive(dt, "dt")
    y0s, n_paths = check_y0(y0, sde.dim, n_paths, dtype)
    bm = check_brownian(bm, seed, sde.noise_dim, dt, brownian_dt, brownian_dtype)
    if on_nonfinite not in ("raise", "flag"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'flag', got {on_nonfinite!r}")
    if reduce and save_brownian:
        raise ValueError("save_brownian=True stores every path; it cannot be combined with reduce=True")
    if functional is not None and not reduce:
        raise ValueError("functional is only used with reduce=True")
    stop_at_event = check_event(event, stop_at_event)
    check_args(sde.args)
    args, args_mask = split_args(sde.args, n_paths)
    n_threads = (os.cpu_count() or 1) if n_threads is None else check_count(n_threads, "n_threads")
    debug = debug_mode(debug)
    if sde.state_check is not None:
        sde.state_check(y0s)
    if debug:
        sde = sde.debug_twin()
    # the functions are checked at path 0's state and arguments
    checked = _path0_twin(sde) if any(args_mask) else sde
    checked.check_at(ts[0], y0s[0], dtype, dense=solver.uses_dense_diffusion(sde))
    check_noise_structure(checked, ts[0], y0s[0])
    if event is not None:
        checked.check_event(event, ts[0], y0s[0], dtype)

    K = 0
    default_p = solver.default_substeps(sde.noise, dt)  # (None: the scheme reads no areas)
    if default_p is not None:
        K = dyadic_levels(default_p if levy_substeps is None else levy_substeps, "levy_substeps")
    elif levy_substeps is not None:
        raise ValueError(f"levy_substeps only applies to schemes that need Levy areas (method='milstein' "
                         f"with general noise, 'srk', 'sra1'), not method={method!r} with noise={sde.noise!r}")
    if (2 ** K + 1) * sde.noise_dim * 8 * 2 > MAX_BUFFER_BYTES:
        raise ValueError(f"Brownian buffer of 2**{K} x {sde.noise_dim} per thread is too large; "
                         "use fewer levy_substeps")
    layout = save_layout(ts, dt, bm, K)

    functional_dim = check_functional(functional, functional_dim, sde, reduce)
    if functional is not None:
        checked.check_functional(functional, functional_dim, ts[0], y0s[0], dtype)
        if debug:
            functional = sde.debug_functional(functional)
    return Plan(sde=sde, solver=solver, method=method, dtype=dtype, ts=ts, dt=dt, y0s=y0s,
                n_paths=n_paths, seed=bm.seed, brownian=bm, levy_levels=K, **layout,
                reduce=bool(reduce), save_brownian=bool(save_brownian), functional=functional,
                functional_dim=functional_dim, on_nonfinite=on_nonfinite, n_threads=n_threads,
                debug=debug, args=args, args_mask=args_mask, event=event, stop_at_event=stop_at_event)


# ----------------------------------------------------------------------------- checks
def check_dtype(dtype):
    try:
        dt_ = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt_ not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt_.type


def check_ts(ts):
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError(f"ts must be a 1-d array of at least 2 times, got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError("ts contains NaN or inf")
    if np.any(np.diff(ts) <= 0):
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0])
        raise ValueError(f"ts must be strictly increasing; ts[{i}]={ts[i]} >= ts[{i + 1}]={ts[i + 1]}")
    return np.ascontiguousarray(ts)


def check_positive(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {x!r}")
    return float(x)


def check_y0(y0, dim, n_paths, dtype, name="y0", count="n_paths", owner="the SDE has dim"):
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


def check_event(event, stop_at_event):
    """``stop_at_event`` as a bool, after checking that ``event`` is a function (or None)."""
    if event is not None and not callable(event):
        raise TypeError(f"event must be a function event(t, y, args) -> float, got {type(event).__name__}")
    if not isinstance(stop_at_event, (bool, np.bool_)):
        raise TypeError(f"stop_at_event must be True or False, got {stop_at_event!r}")
    if stop_at_event and event is None:
        raise ValueError("stop_at_event=True needs an event function")
    return bool(stop_at_event)


def check_args(args, where="args", nested=False):
    """Entries of ``args`` are numbers, numeric arrays, ``per_path`` entries (at the top level) or
    tuples (NamedTuples: read by name) of numbers and arrays."""
    for i, a in enumerate(args):
        name = f"{where}[{i}]"
        if isinstance(a, (bool, numbers.Number, np.number)) or (isinstance(a, PerPath) and not nested):
            continue
        if isinstance(a, np.ndarray):
            if a.dtype == object:
                raise TypeError(f"{name} is an object array; only numeric arrays can be passed")
            continue
        if isinstance(a, tuple):
            check_args(a, name, nested=True)
            continue
        what = "per_path entries go at the top level of args only" if isinstance(a, PerPath) else \
            "args may hold numbers, numpy arrays and tuples of them only"
        raise TypeError(f"{name} has type {type(a).__name__}; {what}")


def dyadic_levels(ratio, name):
    if isinstance(ratio, numbers.Integral):
        ratio = int(ratio)
    k = round(math.log2(ratio)) if ratio > 0 else -1
    if k < 0 or abs(ratio - 2.0**k) > 1e-9 * ratio:
        raise ValueError(f"{name} must be a power of two (1, 2, 4, ...), got {ratio!r}")
    return k


def check_brownian(bm, seed, noise_dim, dt, brownian_dt, brownian_dtype=None):
    """The :class:`BrownianPath` a solve reads: ``bm``, or the path of ``seed`` with unit ``dt`` and
    precision ``brownian_dtype`` (default float64)."""
    if brownian_dt is not None:
        check_positive(brownian_dt, "brownian_dt")
        dyadic_levels(brownian_dt / dt, "brownian_dt / dt")
        warnings.warn("brownian_dt no longer changes anything: solves with steps dt * 2**k always read the same "
                      "Brownian path (see sdesim.BrownianPath); drop the argument", DeprecationWarning, stacklevel=4)
    if bm is None:
        return BrownianPath(0 if seed is None else seed, noise_dim, unit=dt,
                            dtype="float64" if brownian_dtype is None else brownian_dtype)
    if not isinstance(bm, BrownianPath):
        raise TypeError(f"bm must be an sdesim.BrownianPath, got {type(bm).__name__}")
    if seed is not None:
        raise ValueError("pass either seed or bm (the seed of a BrownianPath is its own)")
    if brownian_dtype is not None and BrownianPath(0, 1, dtype=brownian_dtype).dtype != bm.dtype:
        raise ValueError(f"brownian_dtype={brownian_dtype!r} differs from bm's dtype {bm.dtype.name!r} (a "
                         "BrownianPath has its own precision: pass one of the two)")
    if bm.noise_dim != noise_dim:
        raise ValueError(f"bm has noise_dim={bm.noise_dim} but the SDE has noise_dim={noise_dim}")
    bm.step_level(dt)  # raises unless dt = bm.unit * 2**k
    return bm


def save_layout(ts, dt, bm, K):
    """Where the solve's points fall on the absolute step grid of ``dt``, as Plan fields.

    Times are snapped by :func:`sdesim.brownian.path.snap_coordinates` (within about 1e-12 of a dyadic
    point of the unit: that point, whatever ``dt``); a time on the grid is a grid point; any other time gets a shortened
    step to it (``save_pos``, its fraction of the step) and is bridged in the Brownian tree to its
    leaf depth, which depends on the time only, so coarse and fine solves read the very same value.
    Grids the kernel cannot run are refused here, with the counts computed in floating point
    before any integer cast.
    """
    t_max = max(abs(ts[0]), abs(ts[-1]))
    n_cells = (ts[-1] - ts[0]) / dt
    if not math.isfinite(n_cells) or n_cells >= MAX_CELLS:
        raise ValueError(f"the grid needs {n_cells:.3g} steps of dt={dt:g} over [{ts[0]:g}, {ts[-1]:g}]; at most "
                         f"{MAX_CELLS - 1} are supported: use a larger dt or a shorter interval")
    if t_max * 2.0**-52 > 1e-6 * dt:
        raise ValueError(f"dt={dt:g} is below the resolution of the times (|t| up to {t_max:g}): the steps "
                         "t_{n+1} - t_n could not be represented to 1e-6; shift the times towards 0 "
                         "or use a larger dt")
    e_dt = bm.step_level(dt)
    depth = TOP_LEVEL - e_dt  # of a step's node
    u_max = t_max / bm.scale
    if u_max >= 2.0 ** (TOP_LEVEL + MAX_DEPTH) or depth + K > int(leaf_depth(u_max)):
        raise ValueError(f"dt={dt:g} (with {2**K} Levy sub-steps) is finer than the Brownian tree resolves at "
                         f"|t| = {t_max:g}; use a larger dt or fewer levy_substeps")
    u = bm.coordinates(ts)  # snapped, whatever dt (SNAP)
    p = np.ldexp(u, -e_dt)  # in steps (exact: a power-of-two scaling)
    base = np.floor(p)
    on_grid = p == base
    g0 = int(base[0])
    x0 = 0.0 if on_grid[0] else float(p[0] - base[0])
    save_step = np.where(on_grid, base - 1, base).astype(np.int64) - g0
    save_pos = np.where(on_grid, -1.0, p - base)
    save_step[0], save_pos[0] = -1, -1.0
    leaf = leaf_position(u)
    leaves = leaf[0]
    if np.any(np.diff(u) < 4.0 * np.ldexp(1.0, TOP_LEVEL - leaves[1:])):
        raise ValueError("save times closer than a few Brownian leaves (about 2**-45 of their magnitude) "
                         "are not supported")
    if depth < 0 and (K > 0 or x0 > 0.0 or np.any(save_pos >= 0.0)):
        raise ValueError(f"dt={dt:g} spans several of the Brownian tree's top nodes ({bm.top_width:g} time units): "
                         "such steps support neither save times off the step grid nor Levy sub-steps; put "
                         "ts on the grid of dt or use a smaller dt")
    return {"step_depth": depth, "g0": g0, "x0": x0, "x0_leaf": (int(leaf[0][0]), int(leaf[1][0]), float(leaf[2][0])),
            "save_step": save_step, "save_pos": save_pos, "save_leaf": leaf, "n_steps": int(save_step[-1] + 1)}


def check_count(value, name, minimum=1):
    """``value`` as an int if it is an integer (not a bool, not 2.5, not "2") >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_functional(functional, functional_dim, sde, reduce):
    if not reduce:
        return 1
    if functional is None:
        if functional_dim is not None:
            raise ValueError("functional_dim given without a functional")
        return sde.dim
    if functional_dim is None:
        raise ValueError("a functional needs functional_dim, the number of values it writes")
    return check_count(functional_dim, "functional_dim")


def debug_mode(debug):
    """``debug`` as a bool; None reads the environment variable ``SDESIM_DEBUG``."""
    if debug is None:
        return os.environ.get("SDESIM_DEBUG", "").strip() not in ("", "0")
    if not isinstance(debug, (bool, np.bool_)):
        raise TypeError(f"debug must be True or False, got {debug!r}")
    return bool(debug)


def _path0_twin(sde):
    """``sde`` with path 0's arguments, kept on ``sde`` (with the ``args`` it was made from), so that
    its functions' check (cached per SDE) runs once per SDE rather than once per solve. Copies of an
    SDE (``with_args``, ``debug_twin``) do not take the entry along."""
    entry = sde.__dict__.get("_path0_twin")
    if entry is None or entry[0] is not sde.args:
        entry = sde.__dict__["_path0_twin"] = (sde.args, sde.with_args(args_of_path(sde.args, 0)))
    return entry[1]

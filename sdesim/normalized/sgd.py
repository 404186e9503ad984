"""Discrete SGD (plain, heavy-ball momentum, SVAG) on the scale-invariant models, compiled and
reproducible. Time is in SGD steps, the SDE's clock.

Update (``eta_k``, ``lam_k`` the learning rate and weight decay in force at step ``k``)::

    plain:       w_{k+1} = (1 - eta_k lam_k) w_k - eta_k g_k
    heavy ball:  v_{k+1} = a v_k + g_k + lam_k w_k,   w_{k+1} = w_k - eta_k v_{k+1},   v_0 = 0

Stochastic gradients ``g_k``:

* data models (:class:`NormalizedLinearClassifier`, :class:`WeightNormMLP`): a real minibatch
  gradient, the mean of ``B = model.batch_size`` per-sample gradients of samples drawn with
  replacement (``model.replace``) or as ``B`` distinct indices (Floyd's algorithm), computed
  from those ``B`` rows only;
* the sphere model: ``g_k = grad L(w_k) + S(w_k) z_k`` with ``z_k`` standard normal of
  dimension ``noise_dim`` (so ``Cov g_k = Sigma(w_k)`` exactly).

SVAG with factor ``l`` (Li, Malladi & Arora 2021): one unit of time is ``l`` sub-steps, each
with learning rate ``eta/l`` and the gradient ``r1 g' + r2 g''`` of two independent minibatches
(independent noises on the sphere), ``r1,2 = (1 +- sqrt(2l - 1))/2``; mean ``grad L``, covariance
``l Sigma``, so ``l`` sub-steps carry the SDE's ``eta^2 Sigma`` noise per unit time and the
runs tend to the SDE as ``l -> inf``. ``l = 1`` is plain SGD.

The API is here; the compiled loop is in :mod:`.sgd_kernel`, the draws in :mod:`.sgd_random`.
Random numbers are counter-based (:mod:`sdesim.brownian.rng`): the draws of sub-step ``s`` of run ``r``
are a function of ``(seed, r, s, draw)`` only, so results do not depend on ``n_threads``, on how
runs are split, or on ``n_runs`` (run ``r`` is the same in every ensemble that holds it), and
the same seed gives the same minibatch/noise sequence whatever the rates and the start
(what the exact scale equivalence needs).
"""

import math
import numbers
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..brownian.rng import seed_to_key
from ..plan import check_y0 as _check_y0
from ..runners.interrupts import sigint_deferred
from ..runners.threads import QUICK_WORK, blas_single_thread, new_stop_flag, run_ranges
from ._checks import check_bool, check_groups, check_int
from .schedules import Schedule, as_schedule
from .sgd_kernel import _eval_args, _info, _pieces
from .sgd_random import MAX_RUNS, MAX_SUBSTEPS

__all__ = ["run_sgd", "SGDResult", "SGDDivergenceError", "sgd_draws", "svag_coefficients"]

class SGDDivergenceError(FloatingPointError):
    """Some runs became non-finite or had a group collapse to norm zero.

    ``runs``: their indices; ``steps``: the step (time unit) at which each was first seen bad.
    """

    def __init__(self, runs, steps, n_runs):
        self.runs = np.asarray(runs)
        self.steps = np.asarray(steps)
        shown = ", ".join(f"run {r} at step {s}" for r, s in zip(self.runs[:5], self.steps[:5]))
        more = "" if len(self.runs) <= 5 else f", ... ({len(self.runs) - 5} more)"
        super().__init__(
            f"{len(self.runs)} of {n_runs} SGD runs diverged (non-finite weights or a zero group "
            f"norm): {shown}{more}. Lower the learning rate, or pass on_nonfinite='flag' to get the "
            "other runs with the failed ones marked.")


@dataclass
class SGDResult:
    """What :func:`run_sgd` returns. ``T`` recorded steps, ``R`` runs, ``k`` scale-invariant groups.

    Attributes
    ----------
    steps : (T,) the recorded steps (time units; one unit is ``svag`` sub-steps).
    norms : (T, R, k) ``|w_j|`` of each group.
    eta_eff : (T, R, k) effective learning rate ``eta / |w_j|^2`` with the ``eta`` in force at
        that step (the SDE's ``eta``, not the SVAG sub-step's ``eta / l``).
    angle : (T, R, k) angle between group ``j`` of the iterate and of the iterate one step
        (one time unit) earlier; NaN at step 0.
    loss : (T, R) training loss: mean cross-entropy over the whole training set (data models)
        or ``model.loss`` (sphere); None when ``record_loss=False``.
    train_acc, test_acc : (T, R) accuracy on the training / held-out set (data models; None on
        the sphere, without a held-out set, or with ``record_loss=False``).
    iterates : (T, R, d) the weights, when ``record_iterate=True``; else None.
    failed, failed_at : runs that diverged and the step at which each was seen bad (only
        with ``on_nonfinite='flag'``); their records are NaN from there on.
    group_offsets, lr, wd, momentum, svag, seed : how the runs were made.
    stats : ``compile_s``, ``run_s``, ``n_substeps``.
    """

    steps: np.ndarray
    norms: np.ndarray
    eta_eff: np.ndarray
    angle: np.ndarray
    loss: np.ndarray = None
    train_acc: np.ndarray = None
    test_acc: np.ndarray = None
    iterates: np.ndarray = None
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    failed_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    group_offsets: np.ndarray = None
    lr: Schedule = None
    wd: Schedule = None
    momentum: float = 0.0
    svag: int = 1
    seed: int = 0
    stats: dict = field(default_factory=dict)

    @property
    def n_runs(self):
        return self.norms.shape[1]

    @property
    def success(self):
        """True when no run diverged."""
        return self.failed.size == 0

    def __repr__(self):
        return (f"SGDResult(T={self.steps.size}, runs={self.n_runs}, groups={self.norms.shape[2]}, "
                f"momentum={self.momentum}, svag={self.svag}, failed={self.failed.size})")


def svag_coefficients(l):
    """``(r1, r2) = ((1 + sqrt(2l - 1))/2, (1 - sqrt(2l - 1))/2)``: ``r1 + r2 = 1``, ``r1^2 + r2^2 = l``
    (``l`` an integer >= 1)."""
    l = _check_svag(l)
    s = math.sqrt(2.0 * l - 1.0)
    return 0.5 * (1.0 + s), 0.5 * (1.0 - s)


# ----------------------------------------------------------------------------- public API
def run_sgd(model, lr, wd, w0, record_steps, *, n_runs=None, seed=0, momentum=0.0, svag=1,
            record_iterate=False, record_loss=True, on_nonfinite="raise", n_threads=None,
            progress=False):
    """Run ``n_runs`` independent discrete-SGD runs on ``model`` and record them -> :class:`SGDResult`.

    Parameters
    ----------
    model : :class:`SphereModel`, :class:`NormalizedLinearClassifier` or :class:`WeightNormMLP`.
        Data models use real minibatches of ``model.batch_size`` samples (with or without
        replacement per ``model.replace``); the sphere model uses ``grad L + S(w) z``.
    lr, wd : positive numbers or :class:`Schedule` (the value at step ``k`` is ``schedule(k)``;
        under SVAG sub-step ``s`` of step ``k`` uses the value at time ``k + s/l``).
        ``eta lam / svag < 1`` is required at every step.
    w0 : (d,) shared start, or (n_runs, d), one per run.
    record_steps : strictly increasing non-negative integers (steps = time units); 0 records
        the start. The runs go to ``record_steps[-1]``.
    n_runs : number of runs (default ``w0.shape[0]`` for a 2-d ``w0``, else 1).
    seed : non-negative integer. Run ``r`` depends on ``(seed, r)`` only.
    momentum : heavy-ball coefficient ``a`` in ``[0, 1)``:
        ``v_{k+1} = a v_k + g_k + lam_k w_k``, ``w_{k+1} = w_k - eta_k v_{k+1}``, ``v_0 = 0``
        (``a = 0`` is plain SGD ``w_{k+1} = (1 - eta_k lam_k) w_k - eta_k g_k``).
    svag : SVAG factor ``l >= 1`` (integer): ``l`` sub-steps of ``eta/l`` with the two-minibatch
        gradient make one step; ``l = 1`` is plain SGD. Not combined with momentum.
    record_iterate : also return the weights at the recorded steps.
    record_loss : record the training loss (and accuracies on data models). On data models each
        record costs a pass over the whole training (and test) set; turn off for dense records.
    on_nonfinite : ``"raise"`` (default: :class:`SGDDivergenceError`) or ``"flag"`` (return,
        with ``failed``/``failed_at`` set and the failed runs' records NaN from there on).
    n_threads : worker threads (default: CPU count). Results are bitwise independent of it.
    progress : progress bar over blocks of runs.

    Ctrl-C stops the runs within about a second (``KeyboardInterrupt``; nothing is returned and
    the process stays usable).
    """
    kind, _, _, _, _, kernel = _pieces(model)
    lr_s, wd_s = as_schedule(lr, "lr"), as_schedule(wd, "wd")
    rec = _check_record_steps(record_steps)
    l = _check_svag(svag)
    mom = _check_momentum(momentum)
    if mom != 0.0 and l > 1:
        raise ValueError("SVAG is implemented for plain SGD only; use momentum=0 with svag > 1")
    _check_decay(lr_s, wd_s, l, int(rec[-1]))
    w0s, R = _check_w0(model, w0, n_runs)
    k0, k1 = seed_to_key(_check_seed(seed))
    if on_nonfinite not in ("raise", "flag"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'flag', got {on_nonfinite!r}")
    n_threads = (os.cpu_count() or 1) if n_threads is None else n_threads
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    if int(rec[-1]) * l >= MAX_SUBSTEPS:
        raise ValueError(f"record_steps[-1] * svag must be below 2**32 sub-steps, got {int(rec[-1]) * l}")
    store_iter = check_bool(record_iterate, "record_iterate")
    do_eval = check_bool(record_loss, "record_loss")
    progress = check_bool(progress, "progress")

    r1, r2 = svag_coefficients(l)
    T, k, d = rec.size, model.n_groups, model.d
    has_acc = do_eval and kind == "data"
    has_test = has_acc and model.data.y_test.size > 0
    norms = np.empty((T, R, k))
    eta_eff = np.empty((T, R, k))
    angle = np.empty((T, R, k))
    loss = np.empty((T, R) if do_eval else (1, 1))
    acc = np.empty((T, R) if do_eval else (1, 1))
    tacc = np.empty((T, R) if do_eval else (1, 1))
    iters = np.empty((T, R, d) if store_iter else (1, 1, 1))
    fail = np.full(R, -1, dtype=np.int64)
    offsets = np.ascontiguousarray(model.group_offsets, dtype=np.int64)
    fixed = (w0s, np.int64(l), float(r1), float(r2), float(mom), rec, lr_s.times, lr_s.values,
             wd_s.times, wd_s.values, k0, k1, model.params, _info(model, kind), offsets,
             _eval_args(model, kind), do_eval, store_iter, norms, eta_eff, angle, loss, acc, tacc, iters, fail,
             new_stop_flag())

    t_c = time.perf_counter()
    with sigint_deferred():  # (a Ctrl-C inside the compiler's callbacks is not lost)
        kernel(*fixed, np.int64(0), np.int64(0))  # compiles for these types (no run is made)
    compile_s = time.perf_counter() - t_c
    t_r = time.perf_counter()
    _run_parallel(kernel, fixed, R, int(n_threads), progress, _work(model, kind, R, int(rec[-1]) * l, T, do_eval))
    run_s = time.perf_counter() - t_r

    res = SGDResult(steps=rec.copy(), norms=norms, eta_eff=eta_eff, angle=angle,
                    loss=loss if do_eval else None, train_acc=acc if has_acc else None,
                    test_acc=tacc if has_test else None, iterates=iters if store_iter else None,
                    group_offsets=offsets, lr=lr_s, wd=wd_s, momentum=mom, svag=l, seed=_check_seed(seed),
                    stats={"compile_s": compile_s, "run_s": run_s, "n_substeps": int(rec[-1]) * l,
                           "n_runs": R})
    bad = np.flatnonzero(fail >= 0)
    if bad.size:
        if on_nonfinite == "raise":
            raise SGDDivergenceError(bad, fail[bad], R)
        res.failed, res.failed_at = bad, fail[bad]
    return res


def _work(model, kind, R, n_sub, T, do_eval):
    """Work units of a call, in :data:`sdesim.runners.threads.QUICK_WORK`'s scale: per sub-step the
    gradient and noise (sphere: ``d + noise_dim``, plus ``d^2`` with an ``H``; data models:
    ``2 B d``), per record a full-data pass when the loss is recorded. Conservative: a call of
    ``QUICK_WORK`` units measured 0.01-0.03 s."""
    d = model.d
    if kind == "data":
        step = 2 * model.batch_size * d
        record = (model.data.n + model.data.y_test.size) * d if do_eval else d
    else:
        step = d + model.noise_dim + (d * d if model.H.size else 0)
        record = step
    return float(R) * (float(n_sub) * step + float(T) * record)


def _run_parallel(kernel, fixed, R, n_threads, progress, work):
    """Runs ``0..R-1`` on :func:`sdesim.runners.threads.run_ranges` (the kernel releases the GIL and polls
    the stop flag, the last of ``fixed``), BLAS held to one thread meanwhile (the data models'
    full-data evaluation calls ``np.dot``). A short call (``work < QUICK_WORK``) lets the calling
    thread work too; a long one keeps it free to take Ctrl-C."""
    tick = bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=R, desc="SGD runs", unit="run")
        lock = threading.Lock()

        def tick(n):  # called from the worker threads
            with lock:
                bar.update(n)
    stop = fixed[-1]

    def call(lo, hi):
        kernel(*fixed, np.int64(lo), np.int64(hi))

    try:
        with blas_single_thread():
            run_ranges(call, R, n_threads, stop, quick=work < QUICK_WORK, progress=tick)
    finally:
        if bar is not None:
            bar.close()


def sgd_draws(model, seed, run, substep, *, svag=1):
    """The random draws run ``run`` uses at sub-step ``substep`` (``= step * svag + s``).

    Data models: a list of one (two under SVAG) index arrays of ``model.batch_size`` samples.
    Sphere model: a list of one (two) standard-normal vectors ``z`` of size ``noise_dim``; the
    gradient is ``grad L + S(w)(r1 z' + r2 z'')`` (``z`` alone for plain SGD).
    For checks: :func:`run_sgd` draws exactly these.
    """
    kind, alloc, draws, _, _, _ = _pieces(model)
    l = _check_svag(svag)
    k0, k1 = seed_to_key(_check_seed(seed))
    run = check_int(run, "run", minimum=0, maximum=MAX_RUNS - 1)
    substep = check_int(substep, "substep", minimum=0, maximum=MAX_SUBSTEPS - 1)
    info = _info(model, kind)
    ws = alloc(info)
    draws(k0, k1, np.int64(run), np.int64(substep), l > 1, info, ws)
    if kind == "data":
        B = model.batch_size
        return [ws[0][:B].copy()] + ([ws[0][B:].copy()] if l > 1 else [])
    return [ws[0].copy()] + ([ws[1].copy()] if l > 1 else [])


# ----------------------------------------------------------------------------- validation
def _check_seed(seed):
    seed = seed[()] if isinstance(seed, np.ndarray) and seed.ndim == 0 else seed
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer or a numpy.random.SeedSequence, got {seed!r}")
    return int(seed)


def _check_record_steps(steps):
    arr = np.asarray(steps)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"record_steps must be a non-empty 1-d array of steps, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"record_steps must hold integers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise ValueError("record_steps must hold integers (steps), not fractions, NaN or inf")
    if np.any(arr < 0):
        raise ValueError(f"record_steps must be non-negative, got {arr[np.argmax(arr < 0)]}")
    if np.any(arr >= MAX_SUBSTEPS):  # before the cast to int64, which would wrap
        raise ValueError(f"record_steps must be below 2**32 (steps are counted in 32 bits), got {arr.max()}")
    arr = arr.astype(np.int64)
    if np.any(np.diff(arr) <= 0):
        i = int(np.flatnonzero(np.diff(arr) <= 0)[0])
        raise ValueError(f"record_steps must be strictly increasing; record_steps[{i}]={arr[i]} >= "
                         f"record_steps[{i + 1}]={arr[i + 1]}")
    return np.ascontiguousarray(arr)


def _check_svag(svag):
    svag = svag[()] if isinstance(svag, np.ndarray) and svag.ndim == 0 else svag
    if isinstance(svag, (bool, np.bool_)) or not isinstance(svag, numbers.Integral) or svag < 1:
        raise ValueError(f"svag must be an integer >= 1, got {svag!r}")
    return int(svag)


def _check_momentum(a):
    a = a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a
    if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Real) or not (0.0 <= a < 1.0):
        raise ValueError(f"momentum must lie in [0, 1), got {a!r}")
    return float(a)


def _check_decay(lr, wd, l, last):
    """``eta lam / l < 1`` on every piece of the two schedules that the runs reach."""
    times = np.union1d(lr.times, wd.times)
    ts = np.concatenate([[0.0], times[(times > 0) & (times < last)]])
    prod = lr(ts) * wd(ts) / l
    if np.any(prod >= 1.0):
        i = int(np.argmax(prod))
        raise ValueError(f"eta * lam / svag must be < 1 (the weight-decay factor 1 - eta lam / l would "
                         f"not be positive); it is {prod[i]:g} from step {ts[i]:g}")


def _check_w0(model, w0, n_runs):
    w0s, R = _check_y0(w0, model.d, n_runs, np.float64, name="w0", count="n_runs", owner="the model has d")
    check_groups(w0s, model.group_offsets, "w0", rows="run")
    return w0s, int(R)

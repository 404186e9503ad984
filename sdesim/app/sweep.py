"""Parameter sweeps through Dask (``sdesim sweep``): a grid of simulations, resumable.

The grid (model x lr x wd x seed, :func:`sdesim.app.config.expand_sweep`) is handed to a
``dask.distributed`` cluster: by default a ``LocalCluster`` of worker processes started here,
or an existing cluster given by its scheduler address. Workers only compute
(:func:`sdesim.app.simulate.run_point`); this process writes each result as it arrives, so the
workers need no shared file system.

Results folder, keyed by the hash of each point's parameters (:func:`sdesim.app.config.point_hash`)::

    <results>/<hash>.npz     arrays (written first, atomically)
    <results>/<hash>.json    {"status": "ok" | "error", "hash", "spec", "run_id", "versions",
                              "npz": {"bytes", "sha256"}, timings, error, ...}
                             (written last, atomically: a point is done when its JSON says "ok"
                             AND its spec hashes to <hash> AND the .npz has that size and SHA-256)
    <results>/<hash>.claim   {"pid", "host", "started", "time", "run_id"}: the sweep computing the
                             point (created with an exclusive link, removed once the result is written)
    <results>/sweep.json     the grid: every point's hash and spec (rewritten at each start)
    <results>/.tmp-*         temporary files of atomic writes (a kill can leave them)

A rerun skips the points that are verifiably done and runs the rest (failed points again, unless
``retry_failed=False``): a point whose .npz is missing, truncated or altered, or whose JSON is
unreadable or does not match its hash, is redone, with one line saying why. Points done with
other package versions are kept, with a warning line. At start, claims of sweeps that are gone
(same host: the process no longer exists; another host: no heartbeat for ``CLAIM_STALE_S``) and
temporary files nobody is writing are removed. Claiming before computing means that two sweeps on
one folder share the points instead of both computing all of them; a point claimed by a live
sweep is left to it (``stats["busy"]``).

Before anything is computed the results folder is probed (:class:`sdesim.app._io.OutputError`) and a
scheduler address checked (:class:`ValueError`). Every wait is bounded, with a one-line message: a
scheduler that cannot be reached raises :class:`ConnectionError`, one that accepts but does not
answer within ``connect_timeout`` :class:`TimeoutError`, a cluster without workers for
``worker_timeout`` seconds :class:`TimeoutError`, a scheduler lost mid-sweep :class:`ConnectionError`
(its points are not recorded as failed). Ctrl-C (KeyboardInterrupt) stops the sweep within about a
second: the point being written is finished (its .npz and JSON both or neither), the others are
dropped, the local workers killed, the claims released, and the exception propagates.

The results folder is kept by :mod:`.sweep_store`, the Dask side by :mod:`.sweep_cluster`.
"""

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import time
import traceback
import uuid
from collections import deque


from ..runners.interrupts import sigint_deferred, sigint_noted
from ._io import OutputError, probe_output_dir, write_json_atomic
from .config import check_sweep, expand_sweep, load_toml, point_hash
from .sweep_cluster import (_drop_cancel_race, _kill_local_workers, _probe_scheduler, _quiet_distributed,
                            _start_local_cluster, check_scheduler_address)
from .sweep_store import (CLAIM_STALE_S, COMPARED_VERSIONS, HEARTBEAT_S, _HOST, _LIVE_RUNS, _claim, _claim_path,
                          _clean, _proc_started, _release, _record_error, _record_ok, _versions, check_point,
                          load_point, point_status)

__all__ = ["plan", "run_sweep", "sweep_config", "load_point", "point_status", "check_point", "CLAIM_STALE_S",
           "check_scheduler_address"]


def plan(config_path):
    """Read and check a sweep config: ``(points, options)`` with ``points = [(hash, spec), ...]``."""
    cfg = load_toml(config_path)
    base, axes, opts = check_sweep(cfg, base_dir=os.path.dirname(os.path.abspath(config_path)))
    points = [(point_hash(p), p) for p in expand_sweep(base, axes)]
    seen = {}
    for h, p in points:
        seen.setdefault(h, p)
    return list(seen.items()), opts


def _compute(spec):
    """What a worker runs: one point -> (arrays, meta)."""
    from .simulate import run_point
    started = time.time()
    arrays, meta = run_point(spec)
    meta["worker_started"] = started
    meta["worker_pid"] = os.getpid()
    meta["versions"] = _versions()
    return arrays, meta


# ---------------------------------------------------------------------------------------------
# the sweep


def run_sweep(points, results, *, client=None, scheduler=None, workers=2, retry_failed=True,
              progress=True, log=print, connect_timeout=30.0, worker_timeout=60.0):
    """Run the points not yet done on a Dask cluster and write their results.

    ``client``: an existing ``distributed.Client``; otherwise ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``) or, if None, a ``LocalCluster(n_workers=workers, threads_per_worker=1,
    processes=True)`` started here and closed at the end. Raises ValueError (bad address),
    ConnectionError, TimeoutError (scheduler unreachable, silent, or without workers for
    ``worker_timeout`` s), :class:`sdesim.app._io.OutputError` (results folder not writable), each with
    a one-line message, before anything is computed, or KeyboardInterrupt.

    Returns ``{"total", "skipped", "ran", "ok", "failed", "busy", "redone", "run_id", "wall_s"}``
    (``busy``: points left to another live sweep; ``redone``: corrupt results run again).
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("sdesim sweep needs dask.distributed: pip install 'sdesim[sweep]'") from None
    t0 = time.perf_counter()
    if client is None and scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
    results = os.fspath(results)
    probe_output_dir(results, "sweep results folder")
    sweep = _Sweep(points, results, client, scheduler, retry_failed, log, connect_timeout, worker_timeout)
    interrupted = False
    with _drop_cancel_race():
        try:
            todo = sweep.triage()
            if todo:
                sweep.connect(Client, workers)
                sweep.run(todo, progress)
        except BaseException:
            interrupted = True
            raise
        finally:
            sweep.close(interrupted)
            sweep.stats["wall_s"] = time.perf_counter() - t0
    return sweep.stats


class _Sweep:
    """One run of :func:`run_sweep`: its claims, the points in flight, the counts and the Dask side."""

    def __init__(self, points, results, client, scheduler, retry_failed, log, connect_timeout, worker_timeout):
        self.points, self.results, self.client, self.scheduler = points, results, client, scheduler
        self.log, self.connect_timeout, self.worker_timeout = log, connect_timeout, worker_timeout
        self.done = {"ok"} if retry_failed else {"ok", "error"}  # states of a point that is not run again
        self.run_id = uuid.uuid4().hex
        _LIVE_RUNS.add(self.run_id)
        self.mine = {"pid": os.getpid(), "host": _HOST, "started": _proc_started(os.getpid()), "time": time.time(),
                     "run_id": self.run_id}
        self.held, self.inflight, self.busy = set(), {}, {}
        self.cluster = self.own_client = self.bar = None
        self.stats = {"total": len(points), "skipped": 0, "ran": 0, "ok": 0, "failed": 0, "busy": 0, "redone": 0,
                      "run_id": self.run_id}

    def say(self, msg):
        if self.log:
            (self.bar.write if self.bar is not None else self.log)(msg)

    def triage(self):
        """Clean the folder, write sweep.json, and return the points to run (saying what is skipped,
        corrupt, or done with other versions)."""
        results, stats = self.results, self.stats
        _clean(results, self.say)
        sweep_json = os.path.join(results, "sweep.json")
        try:
            write_json_atomic(sweep_json, {"points": [{"hash": h, "spec": p} for h, p in self.points]})
        except OSError as exc:
            raise OutputError(f"cannot write {sweep_json!r}: {exc.strerror or exc}") from None
        todo, corrupt, other_versions = [], [], {}
        current = None
        for h, p in self.points:
            state, meta, why = check_point(results, h)
            if state in self.done:
                stats["skipped"] += 1
                old = meta.get("versions") if meta else None
                if isinstance(old, dict):
                    current = current or _versions()
                    for k in COMPARED_VERSIONS:
                        if old.get(k) is not None and current.get(k) is not None and old[k] != current[k]:
                            other_versions.setdefault((k, old[k]), 0)
                            other_versions[(k, old[k])] += 1
            else:
                todo.append((h, p))
                if state == "corrupt":
                    corrupt.append((h, why))
        stats["redone"] = len(corrupt)
        self.say(f"sweep: {len(self.points)} points, {stats['skipped']} already done, {len(todo)} to run -> {results}")
        for h, why in corrupt[:5]:
            self.say(f"sweep: point {h} is corrupt ({why}): redoing it")
        if len(corrupt) > 5:
            self.say(f"sweep: ... and {len(corrupt) - 5} more corrupt points: redoing them")
        if other_versions:
            diffs = ", ".join(f"{k} {v} in {n} point(s) (now {current[k]})"
                              for (k, v), n in sorted(other_versions.items(), key=str))
            self.say(f"sweep: warning: results done with other versions kept, not rerun: {diffs}")
        return todo

    def connect(self, Client, workers):
        """The client: the one given, one connected to ``scheduler`` (``Client``: dask's class), or a
        local cluster's."""
        if self.client is None:
            if self.scheduler is not None:
                _probe_scheduler(self.scheduler, self.connect_timeout)
                try:
                    self.client = self.own_client = Client(self.scheduler, timeout=self.connect_timeout,
                                                           set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise ConnectionError(f"--scheduler: could not connect to {self.scheduler} "
                                          f"({str(exc).splitlines()[0]})") from None
            else:
                self.cluster, self.client = _start_local_cluster(workers)
                self.own_client = self.client
        self.where = self.scheduler or getattr(self.client.scheduler, "address", "the scheduler")

    def run(self, todo, progress):
        """Submit the points (a window of twice the workers' threads), write each result as it comes."""
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=len(todo), desc="sweep", unit="point")
        finished = queue.SimpleQueue()
        pending = deque(todo)
        self.nthreads, self.no_workers_since, last_check, last_beat = None, None, 0.0, time.monotonic()
        with sigint_noted() as noted:  # (a Ctrl-C that a Dask future's __del__ swallowed is raised again here)
            second_look = False
            while True:
                noted.check()
                now = time.monotonic()
                if now - last_check >= 0.5 or self.nthreads is None:
                    last_check = now
                    self._check_workers(now)
                if now - last_beat >= HEARTBEAT_S:
                    last_beat = now
                    for h in self.held:
                        with contextlib.suppress(OSError):
                            os.utime(_claim_path(self.results, h))
                window = max(2, 2 * (self.nthreads or 0))
                while pending and len(self.inflight) < window:
                    self._submit(*pending.popleft(), finished)
                if not self.inflight:
                    if self.busy and not second_look:  # the other sweep may have finished or died meanwhile
                        second_look = True
                        pending.extend((h, p) for h, (p, _) in self.busy.items())
                        self.busy.clear()
                        continue
                    break
                try:
                    fut = finished.get(timeout=0.25)
                except queue.Empty:
                    continue
                self._collect(fut)
                del fut
            noted.check()
        stats = self.stats
        stats["busy"] = len(self.busy)
        stats["skipped"] = stats["total"] - stats["ran"] - stats["busy"]
        if self.busy:
            who = next(iter(self.busy.values()))[1]
            self.say(f"sweep: {len(self.busy)} point(s) being computed by another sweep ({who}), left to it; "
                     "rerun later to check them")

    def _check_workers(self, now):
        """Count the workers' threads; a lost scheduler or ``worker_timeout`` s without workers raise."""
        try:
            self.nthreads = sum(self.client.nthreads(callback_timeout=self.connect_timeout).values())
        except Exception as exc:  # noqa: BLE001 - lost the scheduler
            raise ConnectionError(f"sweep: lost the Dask scheduler {self.where} "
                                  f"({type(exc).__name__}); rerun to resume") from None
        if self.nthreads:
            self.no_workers_since = None
        elif self.no_workers_since is None:
            self.no_workers_since = now
            self.say(f"sweep: no Dask workers at {self.where}; waiting up to {self.worker_timeout:g} s for some")
        elif now - self.no_workers_since > self.worker_timeout:
            raise TimeoutError(f"sweep: no Dask workers at {self.where} for {self.worker_timeout:g} s "
                               f"(start some: dask worker {self.where}); rerun to resume")

    def _submit(self, h, p, finished):
        """Claim point ``h`` and submit it (a point claimed by a live sweep is left to it)."""
        results = self.results
        got = _claim(results, h, {**self.mine, "time": time.time()})
        if got is not True:
            self.busy[h] = (p, got)
            return
        self.held.add(h)
        if check_point(results, h)[0] in self.done:  # finished by another sweep meanwhile
            _release(results, h, self.run_id)
            self.held.discard(h)
            self.stats["skipped"] += 1
            if self.bar is not None:
                self.bar.update()
            return
        fut = self.client.submit(_compute, p, key=f"sdesim-point-{h}-{self.run_id[:8]}", retries=0, pure=False)
        self.inflight[fut.key] = (h, p, fut)
        fut.add_done_callback(finished.put)

    def _collect(self, fut):
        """Write the result (or the error) of a finished point and release its claim."""
        results, stats, run_id = self.results, self.stats, self.run_id
        h, p, _ = self.inflight.pop(fut.key)
        stats["ran"] += 1
        try:
            arrays, meta = fut.result()
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            # not by us: the client lost its scheduler, which dropped the tasks
            raise ConnectionError(f"sweep: lost the Dask scheduler {self.where} (its tasks were cancelled); "
                                  "rerun to resume") from None
        except Exception as exc:  # noqa: BLE001 - it raised, or its worker died (KilledWorker)
            tb = fut.traceback()
            tb = "".join(traceback.format_tb(tb)) if tb is not None else ""
            with sigint_deferred():
                _record_error(results, h, p, exc, tb, run_id)
                _release(results, h, run_id)
            stats["failed"] += 1
            self.say(f"point {h} failed: {type(exc).__name__}: {exc}".splitlines()[0])
        else:
            with sigint_deferred():
                _record_ok(results, h, p, arrays, meta, run_id)
                _release(results, h, run_id)
            stats["ok"] += 1
        self.held.discard(h)
        if self.bar is not None:
            self.bar.update()

    def close(self, interrupted):
        """Stop what runs (killed on Ctrl-C or an error), release the claims, close what was opened."""
        if self.bar is not None:
            self.bar.close()
        with _quiet_distributed() if interrupted else contextlib.nullcontext():
            try:
                if interrupted and self.cluster is not None:
                    _kill_local_workers(self.cluster)
                elif interrupted and self.inflight and self.client is not None:
                    with contextlib.suppress(Exception):
                        self.client.cancel([f for _, _, f in self.inflight.values()])
                self.inflight.clear()
            finally:
                for h in list(self.held):
                    with contextlib.suppress(OSError):
                        _release(self.results, h, self.run_id)
                _LIVE_RUNS.discard(self.run_id)
                if self.own_client is not None:
                    with contextlib.suppress(Exception):
                        self.own_client.close(timeout=2 if interrupted else 10)
                if self.cluster is not None:
                    with contextlib.suppress(Exception):
                        self.cluster.close(timeout=2 if interrupted else 30)


def sweep_config(config_path, *, scheduler=None, workers=None, retry_failed=True, progress=True, client=None,
                 log=print, connect_timeout=30.0, worker_timeout=60.0):
    """``sdesim sweep CONFIG``: plan the grid from the config and run it (:func:`run_sweep`)."""
    points, opts = plan(config_path)
    return run_sweep(points, opts["results"], client=client, scheduler=scheduler,
                     workers=workers or opts["workers"], retry_failed=retry_failed, progress=progress, log=log,
                     connect_timeout=connect_timeout, worker_timeout=worker_timeout)

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
import signal
import threading
import time
import traceback
import uuid
from collections import deque


from ._io import OutputError, probe_output_dir, write_json_atomic
from .config import check_sweep, expand_sweep, load_toml, point_hash
from .sweep_cluster import (_kill_local_workers, _probe_scheduler, _quiet_distributed, _start_local_cluster,
                            check_scheduler_address)
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


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C while a point's .npz and JSON are written (both or neither), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda *a: got.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got and old != signal.SIG_IGN:
            if callable(old):
                old(*got[0])
            else:
                raise KeyboardInterrupt


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
    run_id = uuid.uuid4().hex
    bar = None

    def say(msg):
        if log:
            (bar.write if bar is not None else log)(msg)

    _LIVE_RUNS.add(run_id)
    mine = {"pid": os.getpid(), "host": _HOST, "started": _proc_started(os.getpid()), "time": time.time(),
            "run_id": run_id}
    held = set()
    inflight = {}
    cluster = own_client = None
    stats = {"total": len(points), "skipped": 0, "ran": 0, "ok": 0, "failed": 0, "busy": 0, "redone": 0,
             "run_id": run_id}
    interrupted = False
    try:
        _clean(results, say)
        sweep_json = os.path.join(results, "sweep.json")
        try:
            write_json_atomic(sweep_json, {"points": [{"hash": h, "spec": p} for h, p in points]})
        except OSError as exc:
            raise OutputError(f"cannot write {sweep_json!r}: {exc.strerror or exc}") from None
        done = {"ok"} if retry_failed else {"ok", "error"}
        todo, corrupt, other_versions = [], [], {}
        current = None
        for h, p in points:
            state, meta, why = check_point(results, h)
            if state in done:
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
        say(f"sweep: {len(points)} points, {stats['skipped']} already done, {len(todo)} to run -> {results}")
        for h, why in corrupt[:5]:
            say(f"sweep: point {h} is corrupt ({why}): redoing it")
        if len(corrupt) > 5:
            say(f"sweep: ... and {len(corrupt) - 5} more corrupt points: redoing them")
        if other_versions:
            diffs = ", ".join(f"{k} {v} in {n} point(s) (now {current[k]})"
                              for (k, v), n in sorted(other_versions.items(), key=str))
            say(f"sweep: warning: results done with other versions kept, not rerun: {diffs}")
        if not todo:
            return stats

        if client is None:
            if scheduler is not None:
                _probe_scheduler(scheduler, connect_timeout)
                try:
                    client = own_client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise ConnectionError(f"--scheduler: could not connect to {scheduler} "
                                          f"({str(exc).splitlines()[0]})") from None
            else:
                cluster, client = _start_local_cluster(workers)
                own_client = client
        where = scheduler or getattr(client.scheduler, "address", "the scheduler")

        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(todo), desc="sweep", unit="point")
        finished = queue.SimpleQueue()
        pending = deque(todo)
        busy = {}
        nthreads, no_workers_since, last_check, last_beat = None, None, 0.0, time.monotonic()
        second_look = False
        while True:
            now = time.monotonic()
            if now - last_check >= 0.5 or nthreads is None:
                last_check = now
                try:
                    nthreads = sum(client.nthreads(callback_timeout=connect_timeout).values())
                except Exception as exc:  # noqa: BLE001 - lost the scheduler
                    raise ConnectionError(f"sweep: lost the Dask scheduler {where} "
                                          f"({type(exc).__name__}); rerun to resume") from None
                if nthreads:
                    no_workers_since = None
                elif no_workers_since is None:
                    no_workers_since = now
                    say(f"sweep: no Dask workers at {where}; waiting up to {worker_timeout:g} s for some")
                elif now - no_workers_since > worker_timeout:
                    raise TimeoutError(f"sweep: no Dask workers at {where} for {worker_timeout:g} s "
                                       f"(start some: dask worker {where}); rerun to resume")
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                for h in held:
                    with contextlib.suppress(OSError):
                        os.utime(_claim_path(results, h))
            window = max(2, 2 * (nthreads or 0))
            while pending and len(inflight) < window:
                h, p = pending.popleft()
                got = _claim(results, h, {**mine, "time": time.time()})
                if got is not True:
                    busy[h] = (p, got)
                    continue
                held.add(h)
                state = check_point(results, h)[0]
                if state in done:  # finished by another sweep meanwhile
                    _release(results, h, run_id)
                    held.discard(h)
                    stats["skipped"] += 1
                    if bar is not None:
                        bar.update()
                    continue
                fut = client.submit(_compute, p, key=f"sdesim-point-{h}-{run_id[:8]}", retries=0, pure=False)
                inflight[fut.key] = (h, p, fut)
                fut.add_done_callback(finished.put)
            if not inflight:
                if busy and not second_look:  # the other sweep may have finished or died meanwhile
                    second_look = True
                    pending.extend((h, p) for h, (p, _) in busy.items())
                    busy.clear()
                    continue
                break
            try:
                fut = finished.get(timeout=0.25)
            except queue.Empty:
                continue
            h, p, _ = inflight.pop(fut.key)
            stats["ran"] += 1
            try:
                arrays, meta = fut.result()
            except (asyncio.CancelledError, concurrent.futures.CancelledError):
                # not by us: the client lost its scheduler, which dropped the tasks
                raise ConnectionError(f"sweep: lost the Dask scheduler {where} (its tasks were cancelled); "
                                      "rerun to resume") from None
            except Exception as exc:  # noqa: BLE001 - it raised, or its worker died (KilledWorker)
                tb = fut.traceback()
                tb = "".join(traceback.format_tb(tb)) if tb is not None else ""
                with _sigint_deferred():
                    _record_error(results, h, p, exc, tb, run_id)
                    _release(results, h, run_id)
                stats["failed"] += 1
                say(f"point {h} failed: {type(exc).__name__}: {exc}".splitlines()[0])
            else:
                with _sigint_deferred():
                    _record_ok(results, h, p, arrays, meta, run_id)
                    _release(results, h, run_id)
                stats["ok"] += 1
            held.discard(h)
            del fut
            if bar is not None:
                bar.update()
        stats["busy"] = len(busy)
        stats["skipped"] = stats["total"] - stats["ran"] - stats["busy"]
        if busy:
            who = next(iter(busy.values()))[1]
            say(f"sweep: {len(busy)} point(s) being computed by another sweep ({who}), left to it; "
                "rerun later to check them")
    except BaseException:
        interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        with _quiet_distributed() if interrupted else contextlib.nullcontext():
            try:
                if interrupted and cluster is not None:
                    _kill_local_workers(cluster)
                elif interrupted and inflight and client is not None:
                    with contextlib.suppress(Exception):
                        client.cancel([f for _, _, f in inflight.values()])
                inflight.clear()
            finally:
                for h in list(held):
                    with contextlib.suppress(OSError):
                        _release(results, h, run_id)
                _LIVE_RUNS.discard(run_id)
                if own_client is not None:
                    with contextlib.suppress(Exception):
                        own_client.close(timeout=2 if interrupted else 10)
                if cluster is not None:
                    with contextlib.suppress(Exception):
                        cluster.close(timeout=2 if interrupted else 30)
                stats["wall_s"] = time.perf_counter() - t0
    return stats


def sweep_config(config_path, *, scheduler=None, workers=None, retry_failed=True, progress=True, client=None,
                 log=print, connect_timeout=30.0, worker_timeout=60.0):
    """``sdesim sweep CONFIG``: plan the grid from the config and run it (:func:`run_sweep`)."""
    points, opts = plan(config_path)
    return run_sweep(points, opts["results"], client=client, scheduler=scheduler,
                     workers=workers or opts["workers"], retry_failed=retry_failed, progress=progress, log=log,
                     connect_timeout=connect_timeout, worker_timeout=worker_timeout)

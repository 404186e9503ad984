"""Parameter sweeps through Dask (``sdesim sweep``): a grid of simulations, resumable.

The grid (model x lr x wd x seed, :func:`sdesim.app.config.expand_sweep`) is handed to a
``dask.distributed`` cluster: by default a ``LocalCluster`` of worker processes started here,
or an existing cluster given by its scheduler address. Workers only compute
(:func:`sdesim.app.simulate.run_point`); this process writes each result as it arrives, so the
workers need no shared file system.

Results folder, one pair per grid point, keyed by the hash of the point's parameters
(:func:`sdesim.app.config.point_hash`)::

    <results>/<hash>.npz     arrays (written first, atomically)
    <results>/<hash>.json    {"status": "ok" | "error", "spec", "run_id", timings, error, ...}
                             (written last, atomically: a point is done when its JSON says "ok")
    <results>/sweep.json     the grid: every point's hash and spec (rewritten at each start)

A rerun skips the points whose JSON says ``ok`` and runs the rest (failed points again, unless
``retry_failed=False``), so a sweep killed half way loses nothing it had finished. A point that
raises, or whose worker dies, gets a JSON with ``status = "error"`` and its error; the others go on.
"""

import asyncio
import json
import os
import time
import traceback
import uuid

import numpy as np

from ._io import write_json_atomic, write_npz_atomic
from .config import check_sweep, expand_sweep, load_toml, point_hash

__all__ = ["plan", "run_sweep", "sweep_config", "load_point", "point_status"]


def plan(config_path):
    """Read and check a sweep config: ``(points, options)`` with ``points = [(hash, spec), ...]``."""
    cfg = load_toml(config_path)
    base, axes, opts = check_sweep(cfg, base_dir=os.path.dirname(os.path.abspath(config_path)))
    points = [(point_hash(p), p) for p in expand_sweep(base, axes)]
    seen = {}
    for h, p in points:
        seen.setdefault(h, p)
    return list(seen.items()), opts


def point_status(results, h):
    """``"ok"``, ``"error"`` or None (never run, or killed before its result was written)."""
    path = os.path.join(results, f"{h}.json")
    try:
        with open(path) as f:
            return json.load(f).get("status")
    except (OSError, ValueError):
        return None


def load_point(results, h):
    """``(meta, arrays)`` of a finished point (arrays loaded without pickles)."""
    with open(os.path.join(results, f"{h}.json")) as f:
        meta = json.load(f)
    arrays = None
    if meta.get("status") == "ok":
        with np.load(os.path.join(results, f"{h}.npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return meta, arrays


def _compute(spec):
    """What a worker runs: one point -> (arrays, meta)."""
    from .simulate import run_point
    started = time.time()
    arrays, meta = run_point(spec)
    meta["worker_started"] = started
    meta["worker_pid"] = os.getpid()
    return arrays, meta


def _record_ok(results, h, spec, arrays, meta, run_id):
    write_npz_atomic(os.path.join(results, f"{h}.npz"), **arrays)
    write_json_atomic(os.path.join(results, f"{h}.json"),
                      {**meta, "status": "ok", "hash": h, "spec": spec, "run_id": run_id,
                       "finished": time.time()})


def _record_error(results, h, spec, exc, tb, run_id):
    write_json_atomic(os.path.join(results, f"{h}.json"),
                      {"status": "error", "hash": h, "spec": spec, "run_id": run_id, "finished": time.time(),
                       "error": f"{type(exc).__name__}: {exc}", "traceback": tb})


def run_sweep(points, results, *, client=None, scheduler=None, workers=2, retry_failed=True,
              progress=True, log=print):
    """Run the points not yet done on a Dask cluster and write their results.

    ``client``: an existing ``distributed.Client``; otherwise ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``) or, if None, a ``LocalCluster(n_workers=workers, threads_per_worker=1,
    processes=True)`` started here and closed at the end.

    Returns ``{"total", "skipped", "ran", "ok", "failed", "run_id", "wall_s"}``.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("sdesim sweep needs dask.distributed: pip install 'sdesim[sweep]'") from None
    t0 = time.perf_counter()
    os.makedirs(results, exist_ok=True)
    write_json_atomic(os.path.join(results, "sweep.json"),
                      {"points": [{"hash": h, "spec": p} for h, p in points]})
    done = {"ok"} if retry_failed else {"ok", "error"}
    todo = [(h, p) for h, p in points if point_status(results, h) not in done]
    stats = {"total": len(points), "skipped": len(points) - len(todo), "ran": 0, "ok": 0, "failed": 0,
             "run_id": uuid.uuid4().hex}
    if log:
        log(f"sweep: {len(points)} points, {stats['skipped']} already done, {len(todo)} to run -> {results}")
    if not todo:
        stats["wall_s"] = time.perf_counter() - t0
        return stats

    cluster = own_client = None
    if client is None:
        if scheduler:
            try:
                client = own_client = Client(scheduler, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(f"--scheduler: could not connect to {scheduler!r} ({exc})") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = own_client = Client(cluster)
    run_id = stats["run_id"]
    try:
        by_key = {}
        futures = []
        for h, p in todo:
            fut = client.submit(_compute, p, key=f"sdesim-point-{h}-{run_id[:8]}", retries=0)
            by_key[fut.key] = (h, p)
            futures.append(fut)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(futures), desc="sweep", unit="point")
        completed = as_completed(futures)
        del futures  # as_completed holds each future until it is yielded; then the loop lets it go
        for fut in completed:
            h, p = by_key[fut.key]
            stats["ran"] += 1
            try:
                arrays, meta = fut.result()
            except (Exception, asyncio.CancelledError) as exc:  # it raised, its worker died, or it was cancelled
                tb = fut.traceback()
                tb = "".join(traceback.format_tb(tb)) if tb is not None else ""
                _record_error(results, h, p, exc, tb, run_id)
                stats["failed"] += 1
                if log:
                    msg = f"point {h} failed: {type(exc).__name__}: {exc}"
                    (bar.write if bar else log)(msg.splitlines()[0])
            else:
                _record_ok(results, h, p, arrays, meta, run_id)
                stats["ok"] += 1
            del fut
            if bar:
                bar.update()
        if bar:
            bar.close()
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
    stats["wall_s"] = time.perf_counter() - t0
    return stats


def sweep_config(config_path, *, scheduler=None, workers=None, retry_failed=True, progress=True, client=None,
                 log=print):
    """``sdesim sweep CONFIG``: plan the grid from the config and run it (:func:`run_sweep`)."""
    points, opts = plan(config_path)
    return run_sweep(points, opts["results"], client=client, scheduler=scheduler,
                     workers=workers or opts["workers"], retry_failed=retry_failed, progress=progress, log=log)

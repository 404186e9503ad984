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
"""

import asyncio
import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import deque

import numpy as np

from ._io import OutputError, probe_output_dir, write_json_atomic, write_npz_atomic
from .config import check_sweep, expand_sweep, load_toml, point_hash

__all__ = ["plan", "run_sweep", "sweep_config", "load_point", "point_status", "check_point",
           "check_scheduler_address"]

#: a claim from another host is stale after this long without a heartbeat (claims are touched
#: every ``HEARTBEAT_S`` while their sweep runs)
CLAIM_STALE_S = 300.0
HEARTBEAT_S = 30.0
#: temporary files not tied to a point (probes, sweep.json) are removed at start once this old
TMP_STALE_S = 60.0
#: versions whose difference is reported on resume (the platform and plotting libraries are not)
COMPARED_VERSIONS = ("python", "numpy", "numba", "scipy", "sklearn", "sdesim", "git_commit")
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = socket.gethostname()
_LIVE_RUNS = set()  # run ids of sweeps running in this process (their claims are live)
_POINT_TMP = re.compile(r"^\.tmp-.*?([0-9a-f]{16})(?:\.npz|\.json|\.claim-.*)$")


def plan(config_path):
    """Read and check a sweep config: ``(points, options)`` with ``points = [(hash, spec), ...]``."""
    cfg = load_toml(config_path)
    base, axes, opts = check_sweep(cfg, base_dir=os.path.dirname(os.path.abspath(config_path)))
    points = [(point_hash(p), p) for p in expand_sweep(base, axes)]
    seen = {}
    for h, p in points:
        seen.setdefault(h, p)
    return list(seen.items()), opts


# ---------------------------------------------------------------------------------------------
# verified results


def _sha256(path):
    """``(size in bytes, sha256 hex)`` of a file."""
    d = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            d.update(block)
            n += len(block)
    return n, d.hexdigest()


def check_point(results, h, *, verify=True):
    """State of point ``h`` in ``results``: ``(state, meta, why)``.

    ``state`` is ``"ok"`` (JSON says ok, its spec hashes to ``h``, the .npz has the recorded size and
    SHA-256; results of older versions without a checksum: the .npz loads), ``"error"`` (a recorded
    failure), ``"missing"`` (no JSON) or ``"corrupt"`` (``why`` says what is wrong). ``verify=False``
    skips reading the .npz (size check only).
    """
    path = os.path.join(results, f"{h}.json")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read())
    except FileNotFoundError:
        return "missing", None, None
    except (OSError, ValueError) as exc:
        return "corrupt", None, f"unreadable JSON ({type(exc).__name__})"
    if not isinstance(meta, dict) or meta.get("status") not in ("ok", "error"):
        return "corrupt", None, "JSON without a status"
    try:
        spec_hash = point_hash(meta["spec"])
    except Exception:  # noqa: BLE001 - anything unhashable is a corrupt record
        spec_hash = None
    if meta.get("hash") != h or spec_hash != h:
        return "corrupt", meta, "its JSON is for other parameters (hash mismatch)"
    if meta["status"] == "error":
        return "error", meta, None
    npz = os.path.join(results, f"{h}.npz")
    try:
        size = os.path.getsize(npz)
    except OSError:
        return "corrupt", meta, ".npz missing"
    rec = meta.get("npz")
    if isinstance(rec, dict):
        if size != rec.get("bytes"):
            return "corrupt", meta, f".npz has {size} bytes, {rec.get('bytes')} recorded"
        if verify:
            try:
                _, digest = _sha256(npz)
            except OSError as exc:
                return "corrupt", meta, f".npz unreadable ({exc.strerror or exc})"
            if digest != rec.get("sha256"):
                return "corrupt", meta, ".npz checksum mismatch"
        return "ok", meta, None
    if not verify:
        return "ok", meta, None
    try:  # written before checksums were recorded: the zip's own CRCs, by reading every array
        with np.load(npz, allow_pickle=False) as z:
            for k in z.files:
                z[k]
    except Exception as exc:  # noqa: BLE001 - BadZipFile, ValueError, EOFError, OSError...
        return "corrupt", meta, f".npz does not load ({type(exc).__name__})"
    return "ok", meta, None


def point_status(results, h):
    """``"ok"`` (verified, see :func:`check_point`), ``"error"`` or None (never run, killed before
    its result was written, or corrupt)."""
    state = check_point(results, h)[0]
    return state if state in ("ok", "error") else None


def load_point(results, h):
    """``(meta, arrays)`` of a point (arrays None unless it is ok; loaded without pickles). The
    .npz is checked against the size and SHA-256 in its JSON: :class:`ValueError` if it differs."""
    with open(os.path.join(results, f"{h}.json")) as f:
        meta = json.load(f)
    arrays = None
    if meta.get("status") == "ok":
        import io
        npz = os.path.join(results, f"{h}.npz")
        with open(npz, "rb") as f:
            data = f.read()
        rec = meta.get("npz")
        if isinstance(rec, dict) and (len(data) != rec.get("bytes")
                                      or hashlib.sha256(data).hexdigest() != rec.get("sha256")):
            raise ValueError(f"point {h}: {npz} does not match the size/SHA-256 in its JSON (corrupt; "
                             f"a rerun of the sweep redoes it)")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return meta, arrays


_VERSIONS = None


def _versions():
    """:func:`sdesim.app.simulate.versions`, once per process."""
    global _VERSIONS
    if _VERSIONS is None:
        from .simulate import versions
        _VERSIONS = versions()
    return _VERSIONS


def _compute(spec):
    """What a worker runs: one point -> (arrays, meta)."""
    from .simulate import run_point
    started = time.time()
    arrays, meta = run_point(spec)
    meta["worker_started"] = started
    meta["worker_pid"] = os.getpid()
    meta["versions"] = _versions()
    return arrays, meta


def _record_ok(results, h, spec, arrays, meta, run_id):
    npz = os.path.join(results, f"{h}.npz")
    write_npz_atomic(npz, **arrays)
    size, digest = _sha256(npz)
    write_json_atomic(os.path.join(results, f"{h}.json"),
                      {**meta, "status": "ok", "hash": h, "spec": spec, "run_id": run_id,
                       "versions": meta.get("versions") or _versions(),
                       "npz": {"file": f"{h}.npz", "bytes": size, "sha256": digest}, "finished": time.time()})


def _record_error(results, h, spec, exc, tb, run_id):
    write_json_atomic(os.path.join(results, f"{h}.json"),
                      {"status": "error", "hash": h, "spec": spec, "run_id": run_id, "finished": time.time(),
                       "versions": _versions(), "error": f"{type(exc).__name__}: {exc}", "traceback": tb})
    with contextlib.suppress(FileNotFoundError):  # an older result of this point is not its result
        os.remove(os.path.join(results, f"{h}.npz"))


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
# claims: one sweep computes a point


def _claim_path(results, h):
    return os.path.join(results, f"{h}.claim")


def _proc_started(pid):
    try:
        import psutil
        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - no psutil, or no such process
        return None


def _pid_alive(pid, started):
    try:
        import psutil
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        # the pid may have been reused by another process since the claim
        return started is None or abs(p.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def _read_claim(path):
    """``(info or None, mtime)``; ``FileNotFoundError`` if there is none."""
    mtime = os.stat(path).st_mtime
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read())
        if not isinstance(info, dict):
            info = None
    except ValueError:
        info = None
    return info, mtime


def _stale(info, mtime):
    """Why a claim is stale (its sweep is gone), or None if it is live."""
    age = time.time() - mtime
    if info is None:
        return "unreadable claim" if age > 10 else None  # (a plain O_EXCL claim is being written)
    host, pid = info.get("host"), info.get("pid")
    if host == _HOST and isinstance(pid, int):
        if pid == os.getpid():
            return None if info.get("run_id") in _LIVE_RUNS else "left by an earlier sweep in this process"
        return None if _pid_alive(pid, info.get("started")) else f"its sweep (pid {pid}) is gone"
    if age > CLAIM_STALE_S:
        return f"no heartbeat from {host}:{pid} for {age:.0f} s"
    return None


def _holder(info):
    if not info:
        return "another sweep"
    when = time.strftime("%H:%M:%S", time.localtime(info.get("time", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} since {when}"


def _claim(results, h, mine):
    """Claim point ``h``: True, or a description of the live sweep that holds it. A stale claim
    is taken over."""
    path = _claim_path(results, h)
    data = json.dumps(mine).encode()
    for _ in range(3):
        tmp = os.path.join(results, f".tmp-{uuid.uuid4().hex[:8]}{h}.claim-{os.getpid()}")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
            try:
                os.link(tmp, path)  # atomic and exclusive, with the content already in place
                return True
            except FileExistsError:
                pass
            except FileNotFoundError:  # our temporary file removed by a starting sweep: again
                continue
            except OSError as exc:  # no hard links here: O_EXCL, content written right after
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        try:
            info, mtime = _read_claim(path)
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if _stale(info, mtime) is None:
            return _holder(info)
        _take_over(path, info)
    return "another sweep"


def _take_over(path, info):
    """Remove a stale claim, unless it changed meanwhile (then another sweep took it over first)."""
    aside = os.path.join(os.path.dirname(path), f".tmp-{uuid.uuid4().hex[:8]}{os.path.basename(path)}-stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        now, _ = _read_claim(aside)
    except FileNotFoundError:
        return
    if now != info:  # a fresh claim moved aside by mistake: put it back
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    os.remove(aside)


def _release(results, h, run_id):
    path = _claim_path(results, h)
    try:
        info, _ = _read_claim(path)
    except FileNotFoundError:
        return
    if info and info.get("run_id") == run_id:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _clean(results, say):
    """Remove stale claims and the temporary files nobody is writing."""
    try:
        names = os.listdir(results)
    except OSError:
        return
    live = set()
    n_claims = 0
    for name in names:
        if name.endswith(".claim") and not name.startswith("."):
            path = os.path.join(results, name)
            try:
                info, mtime = _read_claim(path)
            except FileNotFoundError:
                continue
            why = _stale(info, mtime)
            if why is None:
                live.add(name[:-6])
            else:
                _take_over(path, info)
                n_claims += 1
    n_tmp = 0
    now = time.time()
    for name in names:
        if not name.startswith(".tmp-"):
            continue
        m = _POINT_TMP.match(name)
        path = os.path.join(results, name)
        try:
            if m:
                if m.group(1) in live:  # the live sweep that holds the point may be writing it
                    continue
            elif now - os.stat(path).st_mtime < TMP_STALE_S:
                continue
            os.remove(path)
            n_tmp += 1
        except OSError:
            pass
    if n_claims or n_tmp:
        say(f"sweep: removed {n_claims} claim(s) of sweeps that are gone and {n_tmp} leftover temporary file(s)")


# ---------------------------------------------------------------------------------------------
# the scheduler


def check_scheduler_address(address):
    """``address`` (``[scheme://]host:port``, scheme tcp, tls, ws, wss or ucx) in full form, or a
    one-line :class:`ValueError`."""
    def bad(why):
        return ValueError(f"--scheduler: expected an address like tcp://10.0.0.5:8786, got {address!r} ({why})")
    if not isinstance(address, str) or not address.strip():
        raise bad("empty")
    a = address.strip()
    if any(c.isspace() for c in a):
        raise bad("it contains spaces")
    scheme, sep, loc = a.partition("://")
    if not sep:
        if "/" in a:
            raise bad("expected scheme://host:port")
        scheme, loc = "tcp", a
    if scheme not in _SCHEMES:
        raise bad(f"unknown scheme {scheme!r}; expected one of {', '.join(_SCHEMES)}")
    if loc.startswith("["):
        host, close, rest = loc[1:].partition("]")
        if not close:
            raise bad("unclosed [ in an IPv6 address")
        if not rest.startswith(":"):
            raise bad("no port")
        port = rest[1:]
    else:
        host, colon, port = loc.rpartition(":")
        if not colon:
            raise bad("no port: add one, e.g. :8786")
        if ":" in host:
            raise bad("an IPv6 address needs brackets, e.g. tcp://[::1]:8786")
    if not host:
        raise bad("no host")
    if "/" in host or "/" in port:
        raise bad("unexpected '/'")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise bad("the port must be a number from 1 to 65535")
    return f"{scheme}://{loc}"


def _in_thread(fn, timeout):
    """Run ``fn()`` in a daemon thread, waiting at most ``timeout`` s (interruptible):
    ``(done, value, error)``."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            out["error"] = exc
    th = threading.Thread(target=target, daemon=True, name="sdesim-sweep-connect")
    th.start()
    deadline = time.monotonic() + timeout
    while th.is_alive() and time.monotonic() < deadline:
        th.join(0.1)
    return not th.is_alive(), out.get("value"), out.get("error")


def _probe_scheduler(address, timeout):
    """Check that ``address`` is a Dask scheduler answering within ``timeout`` s: ConnectionError
    if it cannot be reached or is something else, TimeoutError if it does not answer."""
    scheme, _, loc = address.partition("://")
    if scheme in ("tcp", "tls"):
        host, _, port = loc.rpartition(":")
        host = host.strip("[]")

        def tcp():
            socket.create_connection((host, int(port)), timeout=timeout).close()
        done, _, err = _in_thread(tcp, timeout + 5)
        if not done or isinstance(err, (socket.timeout, TimeoutError)):
            raise ConnectionError(f"--scheduler: no answer from {address} within {timeout:g} s "
                                  f"(is the host reachable?)")
        if isinstance(err, socket.gaierror):
            raise ConnectionError(f"--scheduler: unknown host {host!r} in {address}") from None
        if isinstance(err, OSError):
            raise ConnectionError(f"--scheduler: cannot connect to {address} ({err.strerror or err})") from None
        if err is not None:
            raise err

    async def identity():
        from distributed.comm import connect
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    done, reply, err = _in_thread(lambda: asyncio.run(asyncio.wait_for(identity(), timeout)), timeout + 5)
    if not done or isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        raise TimeoutError(f"--scheduler: {address} accepted the connection but did not answer as a Dask "
                           f"scheduler within {timeout:g} s")
    if isinstance(err, KeyboardInterrupt):
        raise err
    if err is not None:
        raise ConnectionError(f"--scheduler: {address} did not answer as a Dask scheduler "
                              f"({type(err).__name__})") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise ConnectionError(f"--scheduler: {address} is a Dask {kind}, not a scheduler")


@contextlib.contextmanager
def _quiet_distributed():
    """Silence distributed's shutdown warnings (a sweep stopped on purpose)."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _kill_local_workers(cluster):
    """SIGKILL the worker processes of our LocalCluster (they only compute; their work is dropped)."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        with contextlib.suppress(Exception):
            nanny.close_gracefully(reason="sdesim-sweep-stopped")  # no restart of the killed worker
        proc = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(proc, "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


#: run by our local workers as they start (a preload given as text): Ctrl-C in a terminal reaches
#: the whole process group; the workers leave it to the sweep process, which stops them
_WORKER_PRELOAD = ("import signal, threading\n"
                   "if threading.current_thread() is threading.main_thread():\n"
                   "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n")


def _start_local_cluster(workers):
    """``(cluster, client)``: a LocalCluster of worker processes. Started in a helper thread, so that
    Ctrl-C meanwhile (KeyboardInterrupt here) does not leave a half-started cluster behind: the
    cluster is then closed as soon as it is up."""
    from dask.distributed import Client, LocalCluster
    box = {}

    def start():
        try:
            box["cluster"] = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None, preload=[_WORKER_PRELOAD])
            box["client"] = Client(box["cluster"], set_as_default=False)
        except BaseException as exc:  # noqa: BLE001 - handed back
            box["error"] = exc
    th = threading.Thread(target=start, daemon=True, name="sdesim-sweep-cluster")
    th.start()
    try:
        while th.is_alive():
            th.join(0.1)
    except BaseException:
        th.join(10)  # rarely more than a second or two: then close what was started
        with _quiet_distributed():
            if "cluster" in box:
                _kill_local_workers(box["cluster"])
            for k in ("client", "cluster"):
                if k in box:
                    with contextlib.suppress(Exception):
                        box[k].close(timeout=2)
        raise
    if "error" in box:
        raise box["error"]
    return box["cluster"], box["client"]


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

"""The results folder of a sweep (layout in :mod:`sdesim.app.sweep`): verified results (size and
SHA-256 of each .npz in its JSON), the versions a point was computed with, and claims (one sweep
computes a point; claims of dead sweeps and leftover temporary files are cleared)."""

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import time
import uuid

import numpy as np

from ._io import write_json_atomic, write_npz_atomic
from .config import point_hash

__all__ = ["check_point", "point_status", "load_point", "CLAIM_STALE_S", "HEARTBEAT_S", "TMP_STALE_S",
           "COMPARED_VERSIONS"]

#: a claim from another host is stale after this long without a heartbeat (claims are touched
#: every ``HEARTBEAT_S`` while their sweep runs)
CLAIM_STALE_S = 300.0
HEARTBEAT_S = 30.0
#: temporary files not tied to a point (probes, sweep.json) are removed at start once this old
TMP_STALE_S = 60.0
#: versions whose difference is reported on resume (the platform and plotting libraries are not)
COMPARED_VERSIONS = ("python", "numpy", "numba", "scipy", "sklearn", "sdesim", "git_commit")
_HOST = socket.gethostname()
_LIVE_RUNS = set()  # run ids of sweeps running in this process (their claims are live)
_POINT_TMP = re.compile(r"^\.tmp-.*?([0-9a-f]{16})(?:\.npz|\.json|\.claim-.*)$")



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



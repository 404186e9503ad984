"""Atomic writes of results in open formats (JSON, .npz without pickles)."""

import json
import os
import tempfile

import numpy as np

__all__ = ["OutputError", "probe_output_file", "probe_output_dir", "write_json_atomic", "write_npz_atomic"]


class OutputError(OSError):
    """An output location that cannot be written (found before any work is done)."""


def probe_output_dir(folder, what="output folder"):
    """Make sure ``folder`` exists (creating it) and a file can be written in it; else raise
    :class:`OutputError` with a one-line message. Call it before computing anything."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"{what} {folder!r} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write to {what} {folder!r}: {exc.strerror or exc}") from None
    return folder


def probe_output_file(path, what="output file"):
    """Make sure ``path`` can be written atomically later (its folder exists or can be made and is
    writable, and ``path`` is not a folder); else raise :class:`OutputError`."""
    path = os.fspath(path)
    if path == "" or path.endswith(os.sep):
        raise OutputError(f"{what} {path!r} names a folder, not a file")
    if os.path.isdir(path):
        raise OutputError(f"{what} {path!r} is a folder")
    probe_output_dir(os.path.dirname(os.path.abspath(path)), f"the folder of {what}")
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path, write):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def write_json_atomic(path, obj):
    """Write ``obj`` as JSON to ``path`` via a temporary file and an atomic rename."""
    data = json.dumps(obj, indent=1, default=_default).encode()
    _atomic(path, lambda f: f.write(data))


def write_npz_atomic(path, **arrays):
    """Write numeric arrays to ``path`` (.npz) atomically; object arrays are refused."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric arrays are written")
    _atomic(path, lambda f: np.savez(f, **arrays))

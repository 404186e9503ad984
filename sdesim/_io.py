"""Atomic writes of results in open formats (JSON, .npz without pickles)."""

import json
import os
import tempfile

import numpy as np

__all__ = ["write_json_atomic", "write_npz_atomic"]


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

"""A persistent, per-user cache of compiled kernels, so that a new process does not compile again.

Numba's own ``cache=True`` keys an entry by the function's name and source file, so it cannot tell
apart the kernels sdesim generates from one factory (closures). This cache keys each entry by a
digest of everything the kernel was compiled from (:mod:`.fingerprints`: the user's functions,
sdesim's source, the library versions, the options and dtype), the argument types and Numba's
description of the CPU, and stores one file per entry; it plugs into a Numba dispatcher in place of
Numba's cache (:func:`attach`).

* Location: ``$SDESIM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/sdesim`` (``~/.cache/sdesim``).
  ``SDESIM_CACHE=0`` switches it off. Entries are Numba's serialised compile results, the format
  of Numba's own cache (pickle): keep the folder private to you, as Numba's ``__pycache__``.
* Safety: an entry is written to a temporary file and renamed into place (readers never see half
  a file; concurrent writers of one key write the same thing); each file records its full key
  and is used only if it matches; a file that cannot be read (corrupt, truncated, from another
  Numba) is removed with a warning and the kernel is compiled again.
"""

import hashlib
import logging
import os
import pickle
import uuid
import warnings

from numba.core import compiler, serialize
from numba.core.caching import _Cache

__all__ = ["cache_dir", "cache_enabled", "attach", "DiskCache"]

log = logging.getLogger("sdesim")

_FORMAT = b"sdesim-kernel-cache 1\n"


def cache_enabled():
    """False when ``SDESIM_CACHE`` is ``0``, ``off``, ``false`` or ``no``."""
    return os.environ.get("SDESIM_CACHE", "1").strip().lower() not in ("0", "off", "false", "no")


def cache_dir():
    """The folder of the kernel cache (created on the first write)."""
    path = os.environ.get("SDESIM_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "sdesim")
    return os.path.join(path, "kernels")


class DiskCache(_Cache):
    """Numba's cache interface for one dispatcher whose compile inputs have digest ``digest``."""

    def __init__(self, digest, name, folder, what="a kernel"):
        self._digest = digest
        self._name = name
        self._folder = folder
        self._what = what
        self._enabled = True

    @property
    def cache_path(self):
        return self._folder

    def enable(self):
        self._enabled = True

    def disable(self):
        self._enabled = False

    def flush(self):
        pass

    def _key(self, sig, codegen):
        return hashlib.sha256(repr((self._digest, str(sig), codegen.magic_tuple())).encode()).hexdigest()

    def _path(self, key):
        return os.path.join(self._folder, f"{self._name}-{key[:32]}.nbk")

    def load_overload(self, sig, target_context):
        if not self._enabled:
            return None
        target_context.refresh()
        key = self._key(sig, target_context.codegen())
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            if self._what:
                log.info("sdesim: compiling %s (a few seconds, once: cached in %s)", self._what, self._folder)
            return None
        except OSError as exc:
            log.warning("sdesim kernel cache: cannot read %s (%s); compiling", path, exc)
            return None
        try:
            head, stored_key, payload = blob.split(b"\n", 2)
            if head + b"\n" != _FORMAT or stored_key.decode() != key:
                raise ValueError("not an entry for this kernel")
            return compiler.CompileResult._rebuild(target_context, *pickle.loads(payload))
        except Exception as exc:  # corrupt, truncated or foreign: compile again, never fail
            warnings.warn(f"sdesim kernel cache: dropping unreadable entry {path} ({type(exc).__name__}: {exc}); "
                          "compiling again", RuntimeWarning, stacklevel=2)
            _remove(path)
            return None

    def save_overload(self, sig, cres):
        if not self._enabled or cres.lifted or cres.library.has_dynamic_globals:
            return
        key = self._key(sig, cres.codegen)
        path = self._path(key)
        try:
            payload = serialize.dumps(cres._reduce())
            os.makedirs(self._folder, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
            with open(tmp, "wb") as f:
                f.write(_FORMAT + key.encode() + b"\n" + payload)
            os.replace(tmp, path)
        except Exception as exc:  # a full disk or a read-only folder must not fail the solve
            log.warning("sdesim kernel cache: cannot write %s (%s)", path, exc)
            _remove(locals().get("tmp"))


def _remove(path):
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def attach(dispatcher, digest, name, what="a kernel"):
    """Let ``dispatcher`` (not compiled yet) load and save its compile results in the kernel cache
    under ``digest`` (a hex string; ``None`` or a disabled cache: nothing is attached). ``name``
    prefixes the file names; ``what`` names the kernel in log messages. Returns True if attached."""
    if digest is None or not cache_enabled():
        return False
    dispatcher._cache = DiskCache(digest, name, cache_dir(), what)
    return True

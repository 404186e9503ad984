"""Compile once: fingerprints of compiled code's inputs and the persistent kernel cache.

:func:`use_disk_cache` is called on a freshly built kernel before its first call: it attaches the
disk cache under the digest of what the kernel is compiled from and says (logging, INFO, logger
``"sdesim"``) when a compile is about to take a while.
"""

import logging

from .disk import attach, cache_dir, cache_enabled
from .fingerprints import fingerprint, package_digest

__all__ = ["fingerprint", "package_digest", "cache_dir", "cache_enabled", "use_disk_cache", "disk_cached", "loaded_from_disk"]

log = logging.getLogger("sdesim")


def use_disk_cache(dispatcher, kind, inputs, what):
    """Before the first call of ``dispatcher`` (a kernel of ``kind``, e.g. ``"solve"``, built from
    ``inputs``): attach the disk cache under the fingerprint of ``inputs`` and sdesim's source. The
    compile that follows is announced once (logging, INFO, logger ``"sdesim"``). Returns True if
    the cache is attached (False: switched off, or ``inputs`` have no fingerprint)."""
    digest = fingerprint((kind, package_digest(), inputs))
    attached = attach(dispatcher, digest, kind, what)
    if not attached:
        log.info("sdesim: compiling %s (a few seconds; not cached on disk: %s)", what,
                 "SDESIM_CACHE is off" if not cache_enabled() else "a function without a fingerprint")
    return attached


#: Functions made by factories, by fingerprint (see disk_cached).
_SHARED = {}


def disk_cached(dispatcher):
    """A compiled function made by a factory (which Numba's ``cache=True`` cannot cache), shared:
    the one made before from the same code and closure values if any (its compiled code is reused
    in the process), else ``dispatcher`` with the disk cache attached under its fingerprint.
    Compiles are not announced."""
    digest = fingerprint(("function", package_digest(), dispatcher))
    if digest is None:
        return dispatcher
    if digest not in _SHARED:
        attach(dispatcher, digest, "function", None)
        _SHARED[digest] = dispatcher
    return _SHARED[digest]


def loaded_from_disk(dispatcher):
    """True if ``dispatcher``'s compiled code came from the disk cache."""
    return sum(dispatcher._cache_hits.values()) > 0

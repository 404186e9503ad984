"""Running a compiled kernel over ranges of work on threads: one runner for ``solve`` and ``run_sgd``.

- One process-wide pool of worker threads (starting threads per call cost ~1 ms).
- BLAS held to one thread while kernels run (user functions calling ``np.dot`` would otherwise
  start a BLAS team inside every path thread: measured 10x slower), with a process-wide count so
  that calls from several Python threads at once restore the limit exactly once, when the last ends.
- Ctrl-C: kernels poll ``stop[0]`` (an int64 array of one entry) and return early once it is set.
  For a long call the calling thread only waits (interruptibly); on ``KeyboardInterrupt`` it sets
  ``stop``, waits for the workers to return (within one poll interval) and re-raises, so the
  process stays usable. A short call (``quick=True``) lets the calling thread work too: one thread
  wake-up fewer, and it ends within a second anyway.
"""

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["new_stop_flag", "run_ranges", "blas_single_thread", "QUICK_WORK"]

#: Work units (path-steps x (dim + noise_dim)) below which a call counts as short: ~0.1 s at
#: today's speed for the sphere model, about 1 s for the data models.
QUICK_WORK = 1 << 22


def new_stop_flag():
    """The flag kernels poll: ``stop[0] != 0`` asks them to return."""
    return np.zeros(1, dtype=np.int64)


def run_ranges(call, n_units, n_threads, stop, *, quick=False, progress=None):
    """Run ``call(lo, hi)`` over ``[0, n_units)`` in pieces on ``n_threads`` threads.

    ``call`` releases the GIL (a ``nogil`` kernel) and returns early once ``stop[0]`` is set.
    ``progress``, if given, is called with the number of units of each finished piece.
    Raises ``KeyboardInterrupt`` within about one poll interval of Ctrl-C.
    """
    n_threads = max(1, min(int(n_threads), n_units))
    if quick and n_threads == 1 and progress is None:
        call(0, n_units)
        return
    n_pieces = min(n_units, 4 * n_threads)
    bounds = np.linspace(0, n_units, n_pieces + 1).round().astype(np.int64)
    pieces = iter(range(n_pieces))
    lock = threading.Lock()

    def worker():  # take pieces until none is left (or Ctrl-C)
        while not stop[0]:
            with lock:
                i = next(pieces, None)
            if i is None:
                return
            call(bounds[i], bounds[i + 1])
            if progress is not None:
                progress(int(bounds[i + 1] - bounds[i]))

    n_helpers = n_threads - 1 if quick else n_threads
    futures = [_thread_pool(n_threads).submit(worker) for _ in range(n_helpers)]
    try:
        if quick:
            worker()
        for f in futures:
            f.result()  # an interruptible wait: Ctrl-C raises KeyboardInterrupt here
    except BaseException:
        stop[0] = 1
        for f in futures:
            _wait_quietly(f)
        raise


def _wait_quietly(future):
    while True:
        try:
            future.result()
            return
        except KeyboardInterrupt:  # a second Ctrl-C: keep waiting, the workers end within a poll
            continue
        except BaseException:
            return


# ----------------------------------------------------------------------------- the pool
_POOL = {"pool": None, "size": 0}
_POOL_LOCK = threading.Lock()


def _thread_pool(n_threads):
    """One process-wide pool of worker threads, grown on demand."""
    with _POOL_LOCK:
        if _POOL["size"] < n_threads:
            old = _POOL["pool"]
            _POOL["pool"] = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="sdesim")
            _POOL["size"] = n_threads
            if old is not None:
                old.shutdown(wait=False)
        return _POOL["pool"]


def _forget_pool():  # a forked child has none of the parent's threads
    _POOL["pool"], _POOL["size"] = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


# ----------------------------------------------------------------------------- BLAS limit
_BLAS_LOCK = threading.Lock()
_BLAS = {"depth": 0, "limiter": None, "controller": None, "n_modules": -1}


class blas_single_thread:
    """Context manager: BLAS limited to one thread while at least one caller is inside.

    Re-entrant across threads: the first to enter sets the limit, the last to leave restores what
    was there before (threadpoolctl's own ``limit`` saves and restores per caller, which races when
    two Python threads solve at once and can leave BLAS pinned to one thread).
    """

    def __enter__(self):
        with _BLAS_LOCK:
            if _BLAS["depth"] == 0:
                _release_openblas()
                _BLAS["limiter"] = _controller().limit(limits=1, user_api="blas")
                _release_openblas()
            _BLAS["depth"] += 1
        return self

    def __exit__(self, *exc):
        with _BLAS_LOCK:
            _BLAS["depth"] -= 1
            if _BLAS["depth"] == 0:
                limiter, _BLAS["limiter"] = _BLAS["limiter"], None
                _release_openblas()
                limiter.restore_original_limits()
                _release_openblas()
        return False


def _release_openblas():
    """threadpoolctl >= 3.8 lets only the thread that first set an OpenBLAS limit change it again;
    the last caller to leave may be another thread, so control is released around every change."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # older threadpoolctl: any thread may set the limit
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _controller():
    """A threadpoolctl controller, rebuilt only when new modules were imported (building one scans
    every loaded library: ~1 ms, which dominated short solves). Called under ``_BLAS_LOCK``."""
    from threadpoolctl import ThreadpoolController

    n_modules = len(sys.modules)
    if _BLAS["controller"] is None or _BLAS["n_modules"] != n_modules:
        _BLAS["controller"], _BLAS["n_modules"] = ThreadpoolController(), n_modules
    return _BLAS["controller"]

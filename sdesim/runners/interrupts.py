"""Ctrl-C never lost: held over a critical stretch and delivered at its end, or noted so that a
waiting loop raises it again where Python dropped it.

Two stretches need it. Writing a result's files (both or neither). And compiling: Numba compiles
through llvmlite, which calls back into Python from C (ctypes) while it builds and caches code; a
``KeyboardInterrupt`` raised inside such a callback is printed ("Exception ignored on calling
ctypes callback function") and dropped, so a Ctrl-C that lands there was lost and the solve then
ran to its end. Inside :func:`sigint_deferred`, SIGINT only records itself; on leaving, the
handler that was in place runs (Python's default raises ``KeyboardInterrupt``). So a Ctrl-C waits
for the end of the block: wrap only stretches that run no user code and end by themselves
(compiling a kernel with no paths to run; writing files), never a call of the user's functions. Off
the main thread (where signals are not delivered) and where SIGINT is ignored, nothing changes.
"""

import contextlib
import signal
import threading

__all__ = ["sigint_deferred", "sigint_noted"]


@contextlib.contextmanager
def sigint_deferred():
    """Hold SIGINT inside the ``with`` block; deliver it (once) when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN or old is None:  # (None: a handler not installed from Python)
        yield
        return
    got = []
    signal.signal(signal.SIGINT, lambda *a: got.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got:
            if callable(old):
                old(*got[0])
            else:  # SIG_DFL (the process would end): a KeyboardInterrupt, which the caller can clean up after
                raise KeyboardInterrupt


class _Noted:
    """What :func:`sigint_noted` yields: ``check()`` raises ``KeyboardInterrupt`` once a SIGINT came."""

    def __init__(self):
        self.signals = []

    def check(self):
        if self.signals:
            raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_noted():
    """SIGINT inside the block acts as before (the handler in place runs: Python's default raises
    ``KeyboardInterrupt``) and is also noted. A ``KeyboardInterrupt`` raised where Python drops
    exceptions (an object's ``__del__``, e.g. a Dask future released while the main thread waits;
    a ctypes callback) is then not lost: the waiting loop calls ``noted.check()`` on each turn."""
    noted = _Noted()
    old = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or old == signal.SIG_IGN or old is None:
        yield noted
        return

    def handler(signum, frame):
        noted.signals.append(signum)
        if callable(old):
            old(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, old)

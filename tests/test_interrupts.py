"""Ctrl-C is never lost (sdesim.runners.interrupts): a SIGINT that lands inside a ctypes callback
(as llvmlite calls back into Python while Numba compiles) or an object's ``__del__`` (as a Dask
future's, while the sweep waits) is dropped by Python; inside ``sigint_deferred`` it is held and
delivered when the block ends, inside ``sigint_noted`` the waiting loop's ``check()`` raises it."""

import ctypes
import os
import signal
import threading

import pytest

from sdesim.runners.interrupts import sigint_deferred, sigint_noted

_CALLBACK = ctypes.CFUNCTYPE(None)


def _interrupt_inside_a_callback():
    def body():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # bytecode boundaries: the handler runs here, inside the callback
            pass

    _CALLBACK(body)()


def test_a_sigint_inside_a_ctypes_callback_is_delivered_after_the_block():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _interrupt_inside_a_callback()  # unguarded: the KeyboardInterrupt is printed and dropped (the bug)
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            _interrupt_inside_a_callback()
            reached_the_end = True
    assert reached_the_end  # (held until the block ended)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_no_sigint_no_exception_and_ignored_stays_ignored():
    with sigint_deferred():
        pass
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_users_own_handler_runs_once_after_the_block():
    calls = []
    old = signal.signal(signal.SIGINT, lambda *a: calls.append(a[0]))
    try:
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):
                pass
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old)


def test_off_the_main_thread_it_changes_nothing():
    seen = []

    def run():
        with sigint_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]


class _InterruptOnDelete:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs here, inside __del__, whose exceptions Python drops
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sigint_dropped_by_a_finalizer_is_raised_by_check():
    _InterruptOnDelete()  # unguarded: printed and dropped (what made a real sweep miss a Ctrl-C)
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with sigint_noted() as noted:
            _InterruptOnDelete()
            reached = True
            noted.check()
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with sigint_noted() as noted:  # no SIGINT: check() passes
        noted.check()

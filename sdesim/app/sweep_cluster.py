"""The Dask side of a sweep: scheduler addresses checked, every wait bounded, a local cluster whose
workers ignore Ctrl-C (the sweep process handles it and kills them)."""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time


__all__ = ["check_scheduler_address"]

_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")

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


class _CancelRaceFilter(logging.Filter):
    """Drops tornado's report of distributed's ``sync`` cancel callback failing (a race inside
    distributed when Ctrl-C interrupts a client call: the callback can run before the future it
    cancels exists); the sweep stops as it should, the report is noise."""

    def filter(self, record):
        return "sync.<locals>.cancel" not in record.getMessage()


@contextlib.contextmanager
def _drop_cancel_race():
    """:class:`_CancelRaceFilter` on tornado's callback errors for the duration of a sweep."""
    logger, flt = logging.getLogger("tornado.application"), _CancelRaceFilter()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


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



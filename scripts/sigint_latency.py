"""Measure how long sdesim.solve takes to stop after SIGINT (issue 13): prints JSON.

    python scripts/sigint_latency.py [--threads N] [--delay S]
"""
import argparse
import json
import os
import signal
import threading
import time

import numpy as np

import sdesim
from sdesim.normalized import SphereModel, sgd_sde


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--delay", type=float, default=1.5)
    a = ap.parse_args()
    sde = sgd_sde(SphereModel(100), 0.1, 1e-3)
    w0 = np.ones(100) / 10
    sdesim.solve(sde, w0, [0.0, 1.0], dt=1.0, n_paths=2, seed=0)  # compile first
    sent = {}

    def interrupt():
        sent["t"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(a.delay, interrupt).start()
    t0 = time.perf_counter()
    try:  # ~100 s of work if not stopped
        sdesim.solve(sde, w0, [0.0, 2000.0], dt=1.0, n_paths=100_000, seed=0, reduce=True,
                     n_threads=a.threads)
        result = {"interrupted": False}
    except KeyboardInterrupt:
        result = {"interrupted": True, "latency_s": time.perf_counter() - sent["t"]}
    result["ran_s"] = time.perf_counter() - t0
    after = sdesim.solve(sde, w0, [0.0, 5.0], dt=1.0, n_paths=10, seed=0)  # still usable
    result["usable_after"] = bool(np.all(np.isfinite(after.ys)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Compiled Euler-Maruyama against a vectorised NumPy Euler-Maruyama, and the random-number ceiling.

Problem: a ``dim``-dimensional Ornstein-Uhlenbeck process with diagonal noise,
``dY = -theta Y dt + sigma dW``, whose cost is the random numbers. All three are measured in
one run, alternating, median of ``--repeats``; compile time is reported apart.

* ``sdesim``: :func:`sdesim.solve` (method="euler"), all cores.
* ``numpy``: the same scheme vectorised over paths with ``Generator.standard_normal``.
* ``ceiling``: NumPy's ``Generator`` called inside Numba-compiled code, one generator per
  core on its own thread, filling a buffer with normals.

Figures: paths x steps per second, normals per second, and ``fraction_of_ceiling`` = normals
the solver consumes per second / normals the generator alone makes per second.

    python benchmarks/bench_core.py [--quick] [--out benchmarks/results/bench_core.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic


@nb.njit
def ou_drift(t, y, args, out):
    theta = args[0]
    for i in range(y.size):
        out[i] = -theta * y[i]


@nb.njit
def ou_diffusion(t, y, args, out):
    sigma = args[1]
    for i in range(y.size):
        out[i] = sigma


def numpy_em(y0, n_paths, n_steps, dt, theta, sigma, rng):
    y = np.broadcast_to(y0, (n_paths, y0.size)).copy()
    sq = np.sqrt(dt)
    for _ in range(n_steps):
        y += -theta * y * dt + sigma * sq * rng.standard_normal(y.shape)
    return y


@nb.njit(nogil=True)
def _fill_normals(gen, buf, rounds):
    for _ in range(rounds):
        for i in range(buf.size):
            buf[i] = gen.standard_normal()
    return buf[0]


def ceiling_rate(n_threads, per_thread, rounds):
    """Normals per second from one NumPy Generator per thread inside compiled code."""
    gens = [np.random.default_rng(1000 + i) for i in range(n_threads)]
    bufs = [np.empty(per_thread) for _ in range(n_threads)]
    _fill_normals(gens[0], bufs[0][:10], 1)
    with ThreadPoolExecutor(n_threads) as pool:
        t = time.perf_counter()
        list(pool.map(lambda i: _fill_normals(gens[i], bufs[i], rounds), range(n_threads)))
        el = time.perf_counter() - t
    return n_threads * per_thread * rounds / el


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--quick", action="store_true", help="fewer paths and repeats")
    ap.add_argument("--out", default="benchmarks/results/bench_core.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.paths, a.steps, a.repeats = 2000, 100, 3
    n_threads = os.cpu_count() or 1
    theta, sigma, dt = 1.0, 0.5, 0.01
    sde = sdesim.SDE(ou_drift, ou_diffusion, dim=a.dim, noise="diagonal", args=(theta, sigma))
    y0 = np.ones(a.dim)
    ts = np.array([0.0, a.steps * dt])

    t = time.perf_counter()
    sdesim.solve(sde, y0, ts, dt=dt, n_paths=1, dtype=a.dtype)
    compile_s = time.perf_counter() - t

    work = a.paths * a.steps
    normals = work * a.dim
    runs = {"sdesim": [], "numpy": [], "ceiling": []}
    rng = np.random.default_rng(0)
    for r in range(a.repeats):
        t = time.perf_counter()
        sdesim.solve(sde, y0, ts, dt=dt, n_paths=a.paths, seed=r, dtype=a.dtype)
        runs["sdesim"].append(normals / (time.perf_counter() - t))
        t = time.perf_counter()
        numpy_em(y0, a.paths, a.steps, dt, theta, sigma, rng)
        runs["numpy"].append(normals / (time.perf_counter() - t))
        runs["ceiling"].append(ceiling_rate(n_threads, 1 << 16, max(1, normals // (n_threads << 16))))
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "problem": f"OU, dim={a.dim}, diagonal noise, {a.paths} paths x {a.steps} steps, {a.dtype}",
        "threads": n_threads,
        "compile_s": compile_s,
        "normals_per_s": med,
        "path_steps_per_s": {k: v / a.dim for k, v in med.items()},
        "speedup_vs_numpy": med["sdesim"] / med["numpy"],
        "fraction_of_ceiling": med["sdesim"] / med["ceiling"],
        "repeats": runs,
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__, "numba": nb.__version__,
                    "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    write_json_atomic(a.out, result)
    print(json.dumps({k: result[k] for k in ("problem", "compile_s", "normals_per_s",
                                              "speedup_vs_numpy", "fraction_of_ceiling")}, indent=1))
    return result


if __name__ == "__main__":
    main()

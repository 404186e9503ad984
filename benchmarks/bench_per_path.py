"""Per-path parameters: one solve over a grid of parameters against one solve per grid point.

A 2-d geometric Brownian motion (diagonal noise) with a grid of ``--points`` drift vectors,
``--paths`` paths per point, ``--steps`` Euler steps: (a) one solve of ``points * paths`` paths with
the drift as ``sdesim.per_path`` (each path its point's drift), (b) ``points`` solves of ``paths``
paths each. Compile time excluded (one warm-up each); best of ``--repeats``; one thread and all
threads. Checks that path ``p`` of (a) equals a solve with that point's drift in every path.

    python benchmarks/bench_per_path.py [--points 64] [--paths 64] [--steps 1000] [--out FILE.json]
"""

import argparse
import os
import platform
import sys

import numpy as np

import sdesim
from sdesim.reference import gbm_diffusion, gbm_drift

from _timing import best_time


def _best(run, repeats):
    return best_time(run, repeats)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--paths", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/bench_per_path.json")
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from sdesim.app._io import write_json_atomic
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)  # before measuring
    G, n = a.points, a.paths
    mus = np.stack([np.linspace(-0.5, 0.5, G), np.linspace(0.3, -0.3, G)], axis=1)
    s = np.array([0.4, 0.3])
    y0, ts, dt = np.array([1.0, 0.5]), np.array([0.0, 1.0]), 1.0 / a.steps
    per_path_mu = sdesim.per_path(np.repeat(mus, n, axis=0))  # path p has point p // n
    grid_sde = sdesim.SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(per_path_mu, s))
    point_sdes = [sdesim.SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(mus[g].copy(), s))
                  for g in range(G)]
    rows = []
    for threads in (1, os.cpu_count() or 1):
        grid = _best(lambda: sdesim.solve(grid_sde, y0, ts, dt=dt, n_paths=G * n, seed=1, n_threads=threads),
                     a.repeats)
        loop = _best(lambda: [sdesim.solve(sde, y0, ts, dt=dt, n_paths=n, seed=1, n_threads=threads)
                              for sde in point_sdes], a.repeats)
        rows.append({"threads": threads, "grid_one_solve_s": grid, "one_solve_per_point_s": loop,
                     "speedup": loop / grid})
        print(f"threads {threads}: one solve {grid:.3f} s, {G} solves {loop:.3f} s, ratio {loop / grid:.2f}")
    # correctness: path p of the grid solve = a solve with its point's drift everywhere (same index)
    sol = sdesim.solve(grid_sde, y0, ts, dt=dt, n_paths=G * n, seed=1)
    p = G * n - 1
    alone = sdesim.solve(point_sdes[p // n], y0, ts, dt=dt, n_paths=G * n, seed=1)
    assert np.array_equal(sol.ys[:, p], alone.ys[:, p])
    write_json_atomic(a.out, {"rows": rows, "points": G, "paths_per_point": n, "steps": a.steps,
                              "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg())})
    print("->", a.out)


if __name__ == "__main__":
    main()

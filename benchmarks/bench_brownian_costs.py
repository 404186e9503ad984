"""What the non-default ways of reading the Brownian path cost, against the default, in one run.

Sphere model (``sgd_sde(SphereModel(d))``, Euler, float64, one thread, ``dt = 1``), path-steps per
second for: the default (every save time on the step grid: increments made per block of 16 steps);
one extra save time off the grid (the whole solve then walks step by step and bridges that point);
steps of ``dt = 4 * 4096`` (wider than a top node: each step sums 4 top nodes); and
``BrownianPath.values`` at arbitrary times (points per second per path). Compile time excluded;
minimum of ``--repeats``.

    python benchmarks/bench_brownian_costs.py [--dims 10 100] [--out FILE.json]
"""

import argparse
import os
import platform

import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic

from _timing import best_time
from sdesim.normalized import SphereModel, sgd_sde


def best(f, repeats):
    return best_time(f, repeats)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/bench_brownian_costs.json")
    a = ap.parse_args(argv)
    rows = []
    for d in a.dims:
        sde = sgd_sde(SphereModel(d), 0.1, 1e-3)
        w0 = np.full(d, 1.0)
        P, S = a.paths, a.steps
        grid = np.array([0.0, float(S)])
        off = np.array([0.0, S - 0.5, float(S)])
        solve = lambda ts, dt: sdesim.solve(sde, w0, ts, dt=dt, n_paths=P, seed=1, n_threads=1)
        rate = {"default": P * S / best(lambda: solve(grid, 1.0), a.repeats),
                "one_off_grid_save": P * S / best(lambda: solve(off, 1.0), a.repeats)}
        wide = 4 * 4096.0
        rate["dt_4_top_nodes"] = P * 20 / best(lambda: solve(np.array([0.0, 20 * wide]), wide), a.repeats)
        bm = sdesim.BrownianPath(1, d, unit=1.0)
        pts = np.sort(np.random.default_rng(0).uniform(0, S, 200))
        rate["brownian_path_values_points"] = 100 * pts.size / best(lambda: bm.values(pts, np.arange(100)), a.repeats)
        row = {"d": d, "per_second": rate, "relative_to_default": {k: v / rate["default"] for k, v in rate.items()}}
        rows.append(row)
        print(f"d={d}: " + ", ".join(f"{k} {v:.3g}/s ({row['relative_to_default'][k]:.2f}x)" for k, v in rate.items()),
              flush=True)
    write_json_atomic(a.out, {"rows": rows, "paths": a.paths, "steps": a.steps, "threads": 1,
                              "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg())})
    print("->", a.out)


if __name__ == "__main__":
    main()

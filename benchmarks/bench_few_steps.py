"""Solves of few steps, where each path's start weighs: the whole ``sdesim.solve`` call, this
checkout and optionally an earlier one, side by side.

A path's first step descends the Brownian tree from its top (about 12 levels at dt = 1) and fills
its first block of steps; with 1-50 steps that start is a large part of a path's cost (the rows of
``bench_vs_torchsde.py`` and ``bench_vs_diffrax.py`` with many paths run few steps). Each row times
one ``solve`` of the sphere model (the paper's SDE, no H, Euler, dt = 1, native precision: the
float32 rows read a float32 path) on one thread, best of ``--repeats`` after a warm-up (compile
excluded). With ``--baseline PATH`` (a checkout of an earlier sdesim, e.g. a git worktree) the same
rows run there too, in alternating subprocesses of one run.

    python benchmarks/bench_few_steps.py [--baseline /tmp/base] [--out FILE.json]
"""

import argparse

from _timing import add_comparison_options, comparison_sides, run_in_checkout, write_comparison

#: (d, dtype, paths, steps): the few-step rows of the peer benchmarks, and one step alone
ROWS = ((10, "float32", 100_000, 1), (10, "float32", 100_000, 50), (10, "float64", 100_000, 21),
        (100, "float32", 10_000, 20), (100, "float64", 10_000, 21))

_CHILD = r"""
import json, sys, time
import numpy as np
import sdesim
from sdesim.normalized import SphereModel, sgd_sde
d, dtype, paths, steps, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
model = SphereModel(d, s=1.0)
sde = sgd_sde(model, 0.1, 1e-3)
w0 = np.full(d, (0.1 * model.tau / 2e-3) ** 0.25 / np.sqrt(d))  # the equilibrium norm
ts = np.array([0.0, float(steps)])
run = lambda: sdesim.solve(sde, w0, ts, dt=1.0, n_paths=paths, seed=1, n_threads=1, dtype=dtype, brownian_dtype=dtype)
run()
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_comparison_options(ap, "benchmarks/results/bench_few_steps.json", repeats=3)
    a = ap.parse_args(argv)
    sides = comparison_sides(a)
    rows = []
    for d, dtype, paths, steps in ROWS:
        row = {"d": d, "dtype": dtype, "paths": paths, "steps": steps, "seconds": {}}
        for _ in range(a.rounds):
            for side, root in sides:
                s = run_in_checkout(root, _CHILD, d, dtype, paths, steps, a.repeats)["seconds"]
                row["seconds"][side] = min(row["seconds"].get(side, float("inf")), s)
        row["path_steps_per_s"] = {k: paths * steps / v for k, v in row["seconds"].items()}
        if a.baseline:
            row["new_over_baseline"] = row["seconds"]["baseline"] / row["seconds"]["new"]
        rows.append(row)
        print(f"d={d:4d} {dtype} paths={paths:6d} steps={steps:3d}  "
              + "  ".join(f"{k} {v * 1e3:.1f} ms" for k, v in row["seconds"].items())
              + (f"  new/baseline speed {row['new_over_baseline']:.2f}" if a.baseline else ""), flush=True)
    write_comparison(a, rows, threads=1)

if __name__ == "__main__":
    main()

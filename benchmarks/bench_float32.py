"""Native float32 against float64: the sphere model's throughput in each precision, before and after.

Path-steps per second of ``sgd_sde(SphereModel(d))`` (Euler, ``dt = 1``, no H, 200 steps) on one
thread, for each ``d`` and three set-ups:

* ``float64``: state and Brownian path in float64;
* ``float32_state``: a float32 state reading the float64 path (``dtype="float32"`` alone);
* ``float32``: state and path in float32 (``dtype="float32", brownian_dtype="float32"``).

With ``--baseline PATH`` (a checkout of an earlier sdesim, e.g. a git worktree) its ``float64``
and ``float32_state`` rows are measured too, in alternating subprocesses of the same run (both
sides see the same machine state; compile excluded; each sample the least of ``--repeats``
solves; the best of ``--rounds`` samples kept). Also: the CPU/wall ratio of a 100-path solve on
all threads, float64 and float32 (process CPU time over wall time: how many cores a small solve
keeps busy), with its throughput.

    python benchmarks/bench_float32.py [--baseline /tmp/base] [--dims 10 100 1000] [--out FILE.json]
"""

import argparse
import os

from _timing import add_comparison_options, comparison_sides, run_in_checkout, write_comparison

_CHILD = r"""
import json, os, sys, time
import numpy as np
import sdesim
from sdesim.normalized import SphereModel, sgd_sde
d, steps, paths, repeats, threads = (int(x) for x in sys.argv[1:6])
dtype, brownian = sys.argv[6], sys.argv[7]
sde = sgd_sde(SphereModel(d), 0.1, 1e-3)
w0 = np.full(d, 1.0)
ts = np.array([0.0, float(steps)])
kw = dict(dt=1.0, n_paths=paths, seed=1, n_threads=threads, dtype=dtype)
if brownian != "-":
    kw["brownian_dtype"] = brownian
run = lambda: sdesim.solve(sde, w0, ts, **kw)
run()
best, cpu = float("inf"), 0.0
for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    el, ce = time.perf_counter() - t0, time.process_time() - c0
    if el < best:
        best, cpu = el, ce
print(json.dumps({"path_steps_per_s": paths * steps / best, "cpu_over_wall": cpu / best}))
"""

#: (name, state dtype, Brownian dtype or "-" for the solve's default)
SETUPS = [("float64", "float64", "-"), ("float32_state", "float32", "-"), ("float32", "float32", "float32")]


def sample(root, d, steps, paths, repeats, threads, dtype, brownian):
    return run_in_checkout(root, _CHILD, d, steps, paths, repeats, threads, dtype, brownian)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="*", default=[10, 100, 1000])
    ap.add_argument("--steps", type=int, default=200)
    add_comparison_options(ap, "benchmarks/results/bench_float32.json", repeats=5)
    a = ap.parse_args(argv)
    here = comparison_sides(a)[0][1]
    sides = [("new", here, SETUPS)]
    if a.baseline:  # (native float32 too where the baseline has it: brownian_dtype)
        native = "brownian_dtype" in open(os.path.join(a.baseline, "sdesim", "driver.py")).read()
        sides.insert(0, ("baseline", a.baseline, [s for s in SETUPS if s[2] == "-" or native]))
    n_threads = os.cpu_count() or 1
    rows = []
    for d in a.dims:
        paths = 1000 if d <= 100 else 200
        row = {"d": d, "steps": a.steps, "paths": paths, "path_steps_per_s": {}}
        for _ in range(a.rounds):
            for side, root, setups in sides:
                for name, dtype, brownian in setups:
                    key = f"{side}_{name}"
                    r = sample(root, d, a.steps, paths, a.repeats, 1, dtype, brownian)
                    row["path_steps_per_s"][key] = max(row["path_steps_per_s"].get(key, 0.0), r["path_steps_per_s"])
        thr = row["path_steps_per_s"]
        row["float32_over_float64"] = thr["new_float32"] / thr["new_float64"]
        row["float32_state_over_float64"] = thr["new_float32_state"] / thr["new_float64"]
        if a.baseline:
            row["new_float32_over_baseline_float32"] = thr["new_float32"] / thr.get("baseline_float32",
                                                                                      thr["baseline_float32_state"])
            row["new_float64_over_baseline_float64"] = thr["new_float64"] / thr["baseline_float64"]
        all_threads = {name: sample(here, d, a.steps, 100, a.repeats, n_threads, dtype, brownian)
                       for name, dtype, brownian in SETUPS if name != "float32_state"}
        row["all_threads_100_paths"] = all_threads
        rows.append(row)
        print(f"d={d:5d} " + "  ".join(f"{k} {v:.4g}" for k, v in thr.items())
              + f"  float32/float64 {row['float32_over_float64']:.2f}"
              + "  cpu/wall (100 paths, {} threads) {}".format(
                  n_threads, ", ".join(f"{k} {v['cpu_over_wall']:.2f}" for k, v in all_threads.items())), flush=True)
    write_comparison(a, rows, threads_per_row=1, cores=n_threads,
                     what="sphere sgd_sde, Euler, dt = 1, no H; path-steps per second, best of rounds")

if __name__ == "__main__":
    main()

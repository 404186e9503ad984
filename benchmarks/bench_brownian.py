"""Throughput of the hot path (sphere model, Euler, float64, one thread), this checkout against another.

Path-steps per second of ``sgd_sde(SphereModel(d))`` at ``dt = 1`` for d = 10 and 100, measured
for the working tree and for a baseline checkout (``--baseline PATH``, e.g. a git worktree of
the previous commit) in alternating subprocesses in one run, so both see the same machine state.
Compile time is excluded (one warm-up solve per process); each sample is the minimum of
``--repeats`` solves.

    python benchmarks/bench_brownian.py --baseline /tmp/base [--steps 200 1000] [--out FILE.json]
"""

import argparse
import os
import platform
import sys

from _timing import run_in_checkout, writable_out_dir

_CHILD = r"""
import json, sys, time
import numpy as np
import sdesim
from sdesim.normalized import SphereModel, sgd_sde
d, steps, paths, repeats = (int(x) for x in sys.argv[1:5])
sde = sgd_sde(SphereModel(d), 0.1, 1e-3)
w0 = np.full(d, 1.0)
ts = np.array([0.0, float(steps)])
run = lambda: sdesim.solve(sde, w0, ts, dt=1.0, n_paths=paths, seed=1, n_threads=1)
run()
best = min((lambda t0: (run(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(repeats))
print(json.dumps({"path_steps_per_s": paths * steps / best, "sdesim": sdesim.__file__}))
"""


def sample(root, d, steps, paths, repeats):
    return run_in_checkout(root, _CHILD, d, steps, paths, repeats)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a checkout of sdesim to compare against")
    ap.add_argument("--dims", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--steps", type=int, nargs="*", default=[200, 1000])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side is kept")
    ap.add_argument("--out", default="benchmarks/results/bench_brownian.json")
    a = ap.parse_args(argv)
    writable_out_dir(a.out)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for d in a.dims:
        for steps in a.steps:
            best = {"new": 0.0, "baseline": 0.0}
            for _ in range(a.rounds):
                for side, root in (("baseline", a.baseline), ("new", here)):
                    r = sample(root, d, steps, a.paths, a.repeats)
                    best[side] = max(best[side], r["path_steps_per_s"])
            row = {"d": d, "steps": steps, "paths": a.paths, "new_path_steps_per_s": best["new"],
                   "baseline_path_steps_per_s": best["baseline"], "new_over_baseline": best["new"] / best["baseline"]}
            rows.append(row)
            print(f"d={d:4d} steps={steps:5d}  new {best['new']:.4g}/s  baseline {best['baseline']:.4g}/s  "
                  f"ratio {row['new_over_baseline']:.3f}", flush=True)
    sys.path.insert(0, here)
    from sdesim.app._io import write_json_atomic
    write_json_atomic(a.out, {"rows": rows, "baseline": os.path.abspath(a.baseline), "threads": 1,
                              "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg())})
    print("->", a.out)


if __name__ == "__main__":
    main()

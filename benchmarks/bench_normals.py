"""The normal generators alone: nanoseconds per normal, float64 (Philox + ziggurat) and float32
(Philox + Box-Muller), for this checkout and optionally an earlier one, side by side.

Each sample draws ``count`` consecutive normals of one counter block (as the Brownian tree's node
draws do: ``sdesim.brownian.rng.normals_range`` / ``rng32.normals_range32``) into one buffer,
``--calls`` times in a compiled loop; one thread; compile excluded; the best of ``--repeats``. With
``--baseline PATH`` (a checkout of an earlier sdesim, e.g. a git worktree) the same is measured
there, in alternating subprocesses of the same run. Both generators give the same numbers in both
checkouts where their streams are unchanged (the tests check the block draws against random access).

    python benchmarks/bench_normals.py [--baseline /tmp/base] [--counts 10 100 1000] [--out FILE.json]
"""

import argparse

from _timing import add_comparison_options, comparison_sides, run_in_checkout, write_comparison

_CHILD = r"""
import json, sys, time
import numba as nb
import numpy as np
from sdesim.brownian.rng import normals_range
from sdesim.brownian.rng32 import normals_range32
count, calls, repeats = (int(x) for x in sys.argv[1:4])

@nb.njit(error_model="numpy")
def draw64(n, count, out):
    for i in range(n):
        normals_range(np.uint64(1), np.uint64(2), 1, i * count, count, 3, 4, out)

@nb.njit(error_model="numpy")
def draw32(n, count, out):
    for i in range(n):
        normals_range32(np.uint64(1), np.uint64(2), 1, i * count, count, 3, 4, out)

res = {}
for name, f, out in (("float64", draw64, np.empty(count)), ("float32", draw32, np.empty(count, np.float32))):
    f(2, count, out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(calls, count, out)
        best = min(best, time.perf_counter() - t0)
    res[name] = best / (calls * count) * 1e9
print(json.dumps(res))
"""


def sample(root, count, calls, repeats):
    return run_in_checkout(root, _CHILD, count, calls, repeats)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="*", default=[10, 100, 1000])
    ap.add_argument("--normals", type=int, default=2_000_000, help="normals per timed sample")
    add_comparison_options(ap, "benchmarks/results/bench_normals.json", repeats=5)
    a = ap.parse_args(argv)
    sides = comparison_sides(a)
    rows = []
    for count in a.counts:
        row = {"count": count, "ns_per_normal": {}}
        for _ in range(a.rounds):
            for side, root in sides:
                for dtype, ns in sample(root, count, max(1, a.normals // count), a.repeats).items():
                    key = f"{side}_{dtype}"
                    row["ns_per_normal"][key] = min(row["ns_per_normal"].get(key, float("inf")), ns)
        rows.append(row)
        print(f"count={count:5d}  " + "  ".join(f"{k} {v:.3g} ns" for k, v in row["ns_per_normal"].items()), flush=True)
    write_comparison(a, rows, threads=1)

if __name__ == "__main__":
    main()

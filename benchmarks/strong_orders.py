"""Strong orders with only the seed fixed, in float64 and in native float32 (state and Brownian path).

GBM (diagonal noise) against its exact solution on the path each solve read (``save_brownian``),
dt = 2**-3 .. 2**-7, 1500 paths; the non-commutative test SDE against a Milstein solve at
dt = 2**-9 on the same path, dt = 2**-3 .. 2**-6, 400 paths (Milstein with Levy areas). The fitted
slope of log(strong error) against log(dt), with its standard error.

    python benchmarks/strong_orders.py [--out FILE.json]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sdesim  # noqa: E402
from sdesim.analysis import fit_order, strong_error  # noqa: E402
from sdesim.app._io import write_json_atomic  # noqa: E402
from sdesim.reference import gbm, gbm_exact, noncommutative  # noqa: E402

TS = np.array([0.0, 0.5, 1.0])
DTS = [2.0**-k for k in range(3, 8)]


def orders(dtype):
    kw = dict(dtype=dtype, brownian_dtype=dtype)
    rows = []
    y0 = np.array([1.0, 0.7])
    for method in ("euler", "milstein"):
        errs = []
        for dt in DTS:
            sol = sdesim.solve(gbm, y0, TS, method=method, dt=dt, n_paths=1500, seed=11, save_brownian=True, **kw)
            errs.append(strong_error(sol.ys[-1].astype(np.float64), gbm_exact(sol.ts, sol.ws, y0)[-1])[0])
        rows.append(("gbm (diagonal)", method, DTS, errs))
    y0 = np.array([0.3, 0.0])
    ref = sdesim.solve(noncommutative, y0, TS, method="milstein", dt=2.0**-9, n_paths=400, seed=5, **kw)
    ref = ref.ys[-1].astype(np.float64)
    for method in ("euler", "milstein"):
        errs = [strong_error(sdesim.solve(noncommutative, y0, TS, method=method, dt=dt, n_paths=400, seed=5,
                                          **kw).ys[-1].astype(np.float64), ref)[0] for dt in DTS[:4]]
        rows.append(("non-commutative", method, DTS[:4], errs))
    out = []
    for sde, method, dts, errs in rows:
        slope, _, se = fit_order(dts, errs)
        out.append({"sde": sde, "method": method, "dtype": dtype, "dts": dts, "errors": errs,
                    "order": slope, "order_se": se})
        print(f"{sde:16s} {method:8s} {dtype}: order {slope:.3f} +- {se:.3f}", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/strong_orders.json")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    rows = orders("float64") + orders("float32")
    write_json_atomic(a.out, {"rows": rows, "seed_only": True})
    print("->", a.out)


if __name__ == "__main__":
    main()

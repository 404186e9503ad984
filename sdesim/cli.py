"""Command-line entry point: ``sdesim demo`` (the core demo) and ``sdesim bench``."""

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["main"]


def demo(out=None):
    """Fit the strong orders of Euler-Maruyama and Milstein on the reference SDEs and print them."""
    import sdesim
    from sdesim.analysis import fit_order, strong_error
    from sdesim.reference import LIN_B, gbm, gbm_exact, lin_commutative, linear_exact, noncommutative

    ts = np.array([0.0, 1.0])
    dts = [2.0**-k for k in range(3, 8)]
    report = {}
    t0 = time.perf_counter()
    cases = {
        "gbm (diagonal)": (gbm, np.array([1.0, 0.7]), lambda t, w, y: gbm_exact(t, w, y)),
        "linear (commutative)": (lin_commutative, np.array([1.0, 0.5]),
                                 lambda t, w, y: linear_exact(t, w, y, LIN_B)),
    }
    for name, (sde, y0, exact) in cases.items():
        for method in ("euler", "milstein"):
            errs = []
            for dt in dts:
                sol = sdesim.solve(sde, y0, ts, method=method, dt=dt, n_paths=2000, seed=1,
                                   brownian_dt=dts[0], save_brownian=True)
                errs.append(strong_error(sol.ys[-1], exact(sol.ts, sol.ws, y0)[-1])[0])
            order, _, se = fit_order(dts, errs)
            report[f"{name} / {method}"] = {"order": order, "stderr": se, "errors": errs}
            print(f"{name:24s} {method:9s} strong order {order:5.2f} +- {se:.2f}")
    y0 = np.array([0.3, 0.0])
    ref = sdesim.solve(noncommutative, y0, ts, method="milstein", dt=2.0**-9, n_paths=400, seed=1,
                       brownian_dt=dts[0])
    for method in ("euler", "milstein"):
        errs = [strong_error(sdesim.solve(noncommutative, y0, ts, method=method, dt=dt, n_paths=400,
                                          seed=1, brownian_dt=dts[0]).ys[-1], ref.ys[-1])[0]
                for dt in dts[:4]]
        order, _, se = fit_order(dts[:4], errs)
        report[f"non-commutative / {method}"] = {"order": order, "stderr": se, "errors": errs}
        print(f"{'non-commutative':24s} {method:9s} strong order {order:5.2f} +- {se:.2f}")
    report["wall_s"] = time.perf_counter() - t0
    if out:
        from sdesim._io import write_json_atomic
        write_json_atomic(out, report)
        print(f"wrote {out}")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sdesim", description="Fast, reproducible SDE simulation.")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="fit the strong orders of the schemes on reference SDEs")
    d.add_argument("--out", default="results/demo.json", help="JSON summary (written atomically)")
    b = sub.add_parser("bench", help="run the core benchmark (benchmarks/bench_core.py)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--out", default="results/bench_core.json")
    a = ap.parse_args(argv)
    if a.command == "demo":
        demo(a.out)
    elif a.command == "bench":
        import runpy
        import pathlib
        script = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_core.py"
        if not script.exists():
            print("sdesim bench needs a source checkout (benchmarks/ not found)", file=sys.stderr)
            return 2
        sys.argv = [str(script)] + (["--quick"] if a.quick else []) + ["--out", a.out]
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command-line entry point.

``sdesim reproduce`` (the paper's checks and a report), ``sdesim simulate CONFIG`` (one
simulation from a TOML file), ``sdesim sweep CONFIG`` (a grid of them on Dask), ``sdesim demo``
(the core demo) and ``sdesim bench``. User mistakes (a bad config, an unknown name) give one
line on stderr naming the key and exit status 2, never a traceback.
"""

import argparse
import os
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


def _error(command, msg, status=2):
    print(f"sdesim {command}: error: {msg}", file=sys.stderr)
    return status


def _cmd_reproduce(a):
    from sdesim import report
    only = None
    if a.only:
        only = [n.strip() for part in a.only for n in part.split(",") if n.strip()]
        for n in only:
            if n not in report.EXPERIMENTS:
                return _error("reproduce", f"--only: expected names from {', '.join(report.EXPERIMENTS)}, got {n!r}")
    if a.jobs < 1:
        return _error("reproduce", f"--jobs: expected a positive integer, got {a.jobs}")
    rep = report.reproduce(out=a.out, quick=a.quick, seed=a.seed, only=only, jobs=a.jobs,
                           progress=not a.no_progress)
    print(report.verdict_table_text(rep))
    print()
    print(report._summary_line(rep))
    print(f"report: {os.path.join(a.out, 'report.html')} and {os.path.join(a.out, 'report.md')}")
    c = rep["counts"]
    return 0 if c["fail"] == 0 and c["error"] == 0 else 1


def _cmd_simulate(a):
    from sdesim.config import ConfigError
    from sdesim.simulate import json_path, simulate
    from sdesim.solution import NonFiniteError
    try:
        meta = simulate(a.config)
    except ConfigError as exc:
        return _error("simulate", str(exc) if exc.key == "CONFIG" else f"{a.config}: {exc}")
    except NonFiniteError as exc:
        return _error("simulate", f"the simulation diverged: {str(exc).splitlines()[0]}", 1)
    except ValueError as exc:  # refused by the solver (e.g. dt against the save times): still the config
        return _error("simulate", f"{a.config}: {str(exc).splitlines()[0]}")
    out = meta["spec"]["output"]
    print(f"wrote {out} and {json_path(out)} ({meta['wall_s']:.1f} s, point {meta['hash']})")
    return 0


def _cmd_sweep(a):
    from sdesim.config import ConfigError
    from sdesim.sweep import sweep_config
    if a.workers is not None and a.workers < 1:
        return _error("sweep", f"--workers: expected a positive integer, got {a.workers}")
    try:
        stats = sweep_config(a.config, scheduler=a.scheduler, workers=a.workers,
                             retry_failed=not a.skip_failed, progress=not a.no_progress)
    except ConfigError as exc:
        return _error("sweep", str(exc) if exc.key == "CONFIG" else f"{a.config}: {exc}")
    except ConnectionError as exc:
        return _error("sweep", str(exc))
    except ImportError as exc:
        return _error("sweep", str(exc))
    print(f"sweep: {stats['total']} points: {stats['skipped']} already done, {stats['ok']} ran ok, "
          f"{stats['failed']} failed ({stats['wall_s']:.1f} s)")
    return 0 if stats["failed"] == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sdesim", description="Fast, reproducible SDE simulation.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run the paper's checks and write a report (HTML + Markdown)",
                       description="Run the checks of Li, Lyu & Arora (2020) and write OUT/report.html, "
                                   "OUT/report.md and OUT/reproduce.json. Exit status 1 if any check fails.")
    r.add_argument("--quick", action="store_true", help="short runs (a few minutes on 2 cores)")
    r.add_argument("--out", default="results", help="output folder (default: results)")
    r.add_argument("--seed", type=int, default=0, help="seed given to every experiment (default 0)")
    r.add_argument("--only", action="append", metavar="NAMES",
                   help="comma-separated experiments to run (default: all)")
    r.add_argument("--jobs", type=int, default=1,
                   help="experiments run side by side in this many processes (default 1)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    s = sub.add_parser("simulate", help="run one simulation described in a TOML file",
                       description="Run one simulation of the paper's SDE described in a TOML file "
                                   "(see sdesim.config); writes .npz + .json atomically.")
    s.add_argument("config", help="TOML file")
    w = sub.add_parser("sweep", help="run a grid of simulations (lr x wd x model x seed) on Dask",
                       description="Run the grid of a sweep config through dask.distributed; each point's "
                                   "result goes to the results folder, keyed by its hash; reruns skip done points.")
    w.add_argument("config", help="TOML file")
    w.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); "
                        "default: a local cluster started here")
    w.add_argument("--workers", type=int, default=None, help="local worker processes (default: sweep.workers)")
    w.add_argument("--skip-failed", action="store_true", help="do not retry points that failed before")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = sub.add_parser("demo", help="fit the strong orders of the schemes on reference SDEs")
    d.add_argument("--out", default="results/demo.json", help="JSON summary (written atomically)")
    b = sub.add_parser("bench", help="run the core benchmark (benchmarks/bench_core.py)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--out", default="results/bench_core.json")
    a = ap.parse_args(argv)
    try:
        if a.command == "reproduce":
            return _cmd_reproduce(a)
        if a.command == "simulate":
            return _cmd_simulate(a)
        if a.command == "sweep":
            return _cmd_sweep(a)
    except KeyboardInterrupt:
        print(f"sdesim {a.command}: interrupted", file=sys.stderr)
        return 130
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

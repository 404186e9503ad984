"""Command-line entry point.

``sdesim reproduce`` (the paper's checks and a report), ``sdesim simulate CONFIG`` (one
simulation from a TOML file), ``sdesim sweep CONFIG`` (a grid of them on Dask), ``sdesim demo``
(the core demo), ``sdesim bench`` and ``sdesim --version``.

Exit status: 0 done; 1 a check or a point failed, or the simulation diverged; 2 a user mistake (a
bad config or argument, an output that cannot be written: found before computing), with one line
on stderr naming the key or argument, never a traceback; 130 interrupted (Ctrl-C), nothing
half-written left behind.
"""

import argparse
import os
import sys
import time

import numpy as np

__all__ = ["main"]


def demo(out=None):
    """Fit the strong orders of every scheme on the reference SDEs (Ito and Stratonovich) and print them."""
    import sdesim
    from sdesim.analysis import fit_order, strong_error
    from sdesim import reference as ref

    ts = np.array([0.0, 1.0])
    dts = [2.0**-k for k in range(3, 8)]
    report = {}
    t0 = time.perf_counter()
    ito, strat = ("euler", "milstein"), ("euler_heun", "milstein")
    cases = {  # name: (sde, y0, exact solution on the path, schemes)
        "gbm (diagonal)": (ref.gbm, np.array([1.0, 0.7]), lambda t, w, y: ref.gbm_exact(t, w, y), ito + ("srk",)),
        "arctan (scalar)": (ref.arctan_sde, np.array([0.3]), ref.arctan_exact, ito + ("srk",)),
        "additive, t-dependent": (ref.additive_linear, np.array([1.0, 0.5]), ref.additive_exact, ("euler", "sra1")),
        "linear (commutative)": (ref.lin_commutative, np.array([1.0, 0.5]),
                                 lambda t, w, y: ref.linear_exact(t, w, y, ref.LIN_B), ito),
        "gbm, Stratonovich": (ref.gbm_stratonovich, np.array([1.0, 0.7]),
                              lambda t, w, y: ref.gbm_exact(t, w, y, "stratonovich"), strat),
        "linear scalar, Strat.": (ref.lin_scalar_stratonovich, np.array([1.0, 0.5]),
                                  lambda t, w, y: ref.linear_exact(t, w, y, ref.LIN_B[:1], "stratonovich"), strat),
        "linear commut., Strat.": (ref.lin_commutative_stratonovich, np.array([1.0, 0.5]),
                                   lambda t, w, y: ref.linear_exact(t, w, y, ref.LIN_B, "stratonovich"), strat),
    }
    for name, (sde, y0, exact, methods) in cases.items():
        for method in methods:
            errs = []
            for dt in dts:
                sol = sdesim.solve(sde, y0, ts, method=method, dt=dt, n_paths=2000, seed=1,
                                   save_brownian=True)
                errs.append(strong_error(sol.ys[-1], exact(sol.ts, sol.ws, y0)[-1])[0])
            order, _, se = fit_order(dts, errs)
            report[f"{name} / {method}"] = {"order": order, "stderr": se, "errors": errs}
            print(f"{name:24s} {method:10s} strong order {order:5.2f} +- {se:.2f}")
    y0 = np.array([0.3, 0.0])
    # no closed form: against a fine solve on the same paths
    for name, sde, methods, fine_method in (
            ("non-commutative", ref.noncommutative, ito, "milstein"),
            ("non-commut., Strat.", ref.noncommutative_stratonovich, strat, "milstein"),
            ("nonlinear diagonal", ref.nonlinear_diagonal, ito + ("srk",), "srk"),
            ("nonlinear additive", ref.double_well, ("euler", "sra1"), "sra1")):
        fine = sdesim.solve(sde, y0, ts, method=fine_method, dt=2.0**-9, n_paths=400, seed=1)
        for method in methods:
            errs = [strong_error(sdesim.solve(sde, y0, ts, method=method, dt=dt, n_paths=400,
                                              seed=1).ys[-1], fine.ys[-1])[0]
                    for dt in dts[:4]]
            order, _, se = fit_order(dts[:4], errs)
            report[f"{name} / {method}"] = {"order": order, "stderr": se, "errors": errs}
            print(f"{name:24s} {method:10s} strong order {order:5.2f} +- {se:.2f}")
    report["wall_s"] = time.perf_counter() - t0
    if out:
        from sdesim.app._io import write_json_atomic
        write_json_atomic(out, report)
        print(f"wrote {out}")
    return report


def _error(command, msg, status=2):
    print(f"sdesim {command}: error: {msg}", file=sys.stderr)
    return status


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: largest --seed of ``sdesim reproduce`` (the experiments derive further seeds by adding to it)
MAX_REPRODUCE_SEED = 2**32


def _cmd_reproduce(a):
    from sdesim.app import report
    from sdesim.app._io import OutputError
    only = None
    if a.only is not None:
        only = []
        for n in (n.strip() for part in a.only for n in part.split(",")):
            if n and n not in only:
                only.append(n)
        names = ", ".join(report.EXPERIMENTS)
        if not only:
            return _error("reproduce", f"--only: expected comma-separated names from {names}, got {','.join(a.only)!r}")
        for n in only:
            if n not in report.EXPERIMENTS:
                return _error("reproduce", f"--only: expected names from {names}, got {n!r}")
    if not 0 <= a.seed < MAX_REPRODUCE_SEED:
        return _error("reproduce", f"--seed: expected an integer in [0, 2**32), got {a.seed}")
    if a.jobs < 1:
        return _error("reproduce", f"--jobs: expected a positive integer, got {a.jobs}")
    try:
        rep = report.reproduce(out=a.out, quick=a.quick, seed=a.seed, only=only, jobs=a.jobs,
                               progress=not a.no_progress)
    except OutputError as exc:
        return _error("reproduce", f"--out: {exc}")
    print(report.verdict_table_text(rep))
    print()
    print(report._summary_line(rep))
    print(f"report: {os.path.join(a.out, 'report.html')} and {os.path.join(a.out, 'report.md')}")
    c = rep["counts"]
    return 0 if c["fail"] == 0 and c["error"] == 0 else 1


def _os_error(exc):
    text = exc.strerror or _first_line(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def _too_large(config, exc):
    return (f"{config}: the simulation does not fit in this machine's memory ({type(exc).__name__}: "
            f"{_first_line(exc)}); lower paths, save_times or the model's size")


def _cmd_simulate(a):
    from sdesim.app._io import OutputError
    from sdesim.app.config import ConfigError
    from sdesim.app.simulate import json_path, simulate
    from sdesim.solution import NonFiniteError
    try:
        meta = simulate(a.config)
    except ConfigError as exc:
        return _error("simulate", str(exc) if exc.key == "CONFIG" else f"{a.config}: {exc}")
    except OutputError as exc:
        return _error("simulate", f"{a.config}: {exc}")
    except NonFiniteError as exc:
        return _error("simulate", f"the simulation diverged: {_first_line(exc)}", 1)
    except ValueError as exc:  # refused by the solver (e.g. dt against the save times): still the config
        return _error("simulate", f"{a.config}: {_first_line(exc)}")
    except (MemoryError, OverflowError) as exc:  # sizes the checks let through but the machine cannot hold
        return _error("simulate", _too_large(a.config, exc))
    except OSError as exc:  # e.g. writing the result failed after all (disk full, folder removed meanwhile)
        return _error("simulate", _os_error(exc), 1)
    out = meta["spec"]["output"]
    print(f"wrote {out} and {json_path(out)} ({meta['wall_s']:.1f} s, point {meta['hash']})")
    return 0


def _cmd_sweep(a):
    from sdesim.app._io import OutputError
    from sdesim.app.config import ConfigError
    from sdesim.app.sweep import sweep_config
    if a.workers is not None and a.workers < 1:
        return _error("sweep", f"--workers: expected a positive integer, got {a.workers}")
    try:
        stats = sweep_config(a.config, scheduler=a.scheduler, workers=a.workers,
                             retry_failed=not a.skip_failed, progress=not a.no_progress)
    except ConfigError as exc:
        return _error("sweep", str(exc) if exc.key == "CONFIG" else f"{a.config}: {exc}")
    except (OutputError, ConnectionError, TimeoutError, ImportError) as exc:
        return _error("sweep", _first_line(exc))
    except ValueError as exc:  # e.g. a malformed --scheduler address
        return _error("sweep", _first_line(exc))
    except (MemoryError, OverflowError) as exc:
        return _error("sweep", _too_large(a.config, exc))
    except OSError as exc:  # e.g. writing a result failed (disk full, folder removed meanwhile)
        return _error("sweep", _os_error(exc), 1)
    print(f"sweep: {stats['total']} points: {stats['skipped']} already done, {stats['ok']} ran ok, "
          f"{stats['failed']} failed ({stats['wall_s']:.1f} s)")
    return 0 if stats["failed"] == 0 else 1


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (and exit status 2), like the others of the CLI."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_demo(a):
    from sdesim.app._io import OutputError, probe_output_file
    try:
        probe_output_file(a.out, "--out")
    except OutputError as exc:
        return _error("demo", str(exc))
    demo(a.out)
    return 0


def _cmd_bench(a):
    import pathlib
    import runpy
    from sdesim.app._io import OutputError, probe_output_file
    script = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_core.py"
    if not script.exists():
        return _error("bench", "it needs a source checkout (benchmarks/ not found)")
    try:
        probe_output_file(a.out, "--out")
    except OutputError as exc:
        return _error("bench", str(exc))
    argv = sys.argv
    sys.argv = [str(script)] + (["--quick"] if a.quick else []) + ["--out", a.out]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    return 0


_COMMANDS = {"reproduce": _cmd_reproduce, "simulate": _cmd_simulate, "sweep": _cmd_sweep, "demo": _cmd_demo,
             "bench": _cmd_bench}


def main(argv=None):
    """``sdesim``: returns the exit status (0 ok, 1 a failed check or point, 2 a user mistake,
    130 interrupted)."""
    from sdesim import __version__
    ap = _Parser(prog="sdesim", description="Fast, reproducible SDE simulation.")
    ap.add_argument("--version", action="version", version=f"sdesim {__version__}")
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
                                   "(see sdesim.app.config); writes .npz + .json atomically.")
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
    d = sub.add_parser("demo", help="fit the strong orders of the schemes on reference SDEs (Ito and Stratonovich)")
    d.add_argument("--out", default="results/demo.json", help="JSON summary (written atomically)")
    b = sub.add_parser("bench", help="run the core benchmark (benchmarks/bench_core.py)")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--out", default="results/bench_core.json")
    a = ap.parse_args(argv)
    try:
        return _COMMANDS[a.command](a)
    except KeyboardInterrupt:
        print(f"sdesim {a.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Work-precision: strong error at T = 1 against wall time, for every scheme, on an additive, a
diagonal and a non-commutative problem, each in Ito and in Stratonovich form, and a nonlinear
diagonal one (Ito) whose solution depends on the space-time areas.

For each problem and each scheme that integrates it, solves at ``dt = 2**-2 .. 2**-8`` (one
thread, ``--paths`` paths, compile time excluded, the best of ``--repeats`` solves) and measures
the root-mean-square error at ``T`` against the exact solution (diagonal: geometric Brownian
motion) or against a fine solve (``dt = 2**-11``; ``srk`` where it applies, else Milstein) on the
same Brownian path (the path
is a function of absolute time, so every ``dt`` reads it). Writes JSON (atomically) and a PNG of
error against time, one panel per problem, and says which scheme is fastest at each error level.

    python benchmarks/work_precision.py [--paths 1000] [--out benchmarks/results/work_precision]
"""

import argparse
import os
import platform
import sys

import numba as nb
import numpy as np

import sdesim
from sdesim.analysis import strong_error
from sdesim.reference import (GBM_MU, GBM_S, gbm_analytic, gbm_exact, gbm_stratonovich, noncommutative,
                              noncommutative_stratonovich, nonlinear_diagonal)
from sdesim.solvers import SOLVERS

from _timing import best_time

THETA = np.array([1.0, 0.5])
SIGMA = np.array([[0.6, 0.2], [-0.1, 0.4]])


@nb.njit(inline="always")
def _ou_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = -args[0][i] * y[i] + np.sin(t)


@nb.njit(inline="always")
def _ou_diffusion(t, y, args, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = args[1][i, j] * (1.0 + 0.5 * t)


def _problems():
    additive = {calc: sdesim.SDE(_ou_drift, _ou_diffusion, dim=2, noise_dim=2, noise="additive",
                                 args=(THETA, SIGMA), name=f"additive ({calc})", calculus=calc)
                for calc in ("ito", "stratonovich")}
    y_gbm, y_nc = np.array([1.0, 0.7]), np.array([0.3, 0.0])
    return [
        ("additive, Ito", additive["ito"], np.array([0.5, -0.2]), None),
        ("additive, Stratonovich", additive["stratonovich"], np.array([0.5, -0.2]), None),
        ("diagonal (GBM), Ito", gbm_analytic, y_gbm, lambda t, w, y0: gbm_exact(t, w, y0, "ito")),
        ("diagonal (GBM), Stratonovich", gbm_stratonovich, y_gbm,
         lambda t, w, y0: gbm_exact(t, w, y0, "stratonovich")),
        ("non-commutative, Ito", noncommutative, y_nc, None),
        ("non-commutative, Stratonovich", noncommutative_stratonovich, y_nc, None),
        ("nonlinear diagonal, Ito", nonlinear_diagonal, np.array([0.3, -0.8]), None),
    ]


def measure(name, sde, y0, exact, dts, paths, repeats):
    ts = np.array([0.0, 1.0])
    common = dict(n_paths=paths, seed=3, save_brownian=True, n_threads=1)
    ref = None
    if exact is None:
        fine = "srk" if SOLVERS["srk"].accepts(sde.noise) and sde.calculus == "ito" else "milstein"
        ref = sdesim.solve(sde, y0, ts, method=fine, dt=2.0**-11, **common).ys[-1]
    rows = []
    for method, solver in SOLVERS.items():
        if not solver.accepts(sde.noise) or sde.calculus not in solver.calculus:
            continue
        for dt in dts:
            secs, sol = best_time(lambda: sdesim.solve(sde, y0, ts, method=method, dt=dt, **common), repeats)
            target = ref if ref is not None else exact(sol.ts, sol.ws, y0)[-1]
            err, se = strong_error(sol.ys[-1], target)
            rows.append({"method": method, "dt": dt, "seconds": secs, "error": err, "error_se": se})
        print(f"{name:32s} {method:11s} " + "  ".join(f"{r['error']:.2e}@{r['seconds'] * 1e3:.0f}ms"
                                                     for r in rows if r["method"] == method), flush=True)
    return {"problem": name, "noise": sde.noise, "calculus": sde.calculus, "rows": rows,
            "reference": "exact solution" if exact is not None else "a fine solve (dt = 2**-11), same path",
            "winners": winners(rows)}


def winners(rows):
    """The fastest scheme at error levels spaced by factors of sqrt(10), from the largest error
    measured down to the smallest: at each level, among the schemes whose measured errors reach
    it, the least time (interpolated log-log between the measured step sizes; no extrapolation)."""
    curves = {}
    for m in sorted({r["method"] for r in rows}):
        pts = sorted((r["error"], r["seconds"]) for r in rows if r["method"] == m)
        curves[m] = (np.log([p[0] for p in pts]), np.log([p[1] for p in pts]))
    hi = max(c[0].max() for c in curves.values())
    lo = min(c[0].min() for c in curves.values())
    out = []
    for log_err in np.arange(hi, lo - 1e-12, -0.5 * np.log(10.0)):
        times = {m: float(np.exp(np.interp(log_err, *c))) for m, c in curves.items()
                 if c[0].min() - 1e-12 <= log_err <= c[0].max() + 1e-12}
        out.append({"error": float(np.exp(log_err)), "fastest": min(times, key=times.get), "seconds": times})
    return out


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed; no figure")
        return
    fig, axes = plt.subplots(4, 2, figsize=(10, 14), sharex=False)
    for ax, res in zip(axes.ravel(), results):
        for method in sorted({r["method"] for r in res["rows"]}):
            rows = [r for r in res["rows"] if r["method"] == method]
            ax.loglog([r["seconds"] for r in rows], [r["error"] for r in rows], "o-", label=method)
        ax.set_title(res["problem"], fontsize=10)
        ax.set_xlabel("wall time per solve (s)")
        ax.set_ylabel("strong error at T = 1")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/work_precision")
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from sdesim.app._io import write_json_atomic
    os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)  # before measuring
    dts = [2.0**-k for k in range(2, 9)]
    results = [measure(name, sde, y0, exact, dts, a.paths, a.repeats) for name, sde, y0, exact in _problems()]
    for res in results:
        print(f"{res['problem']}: " + ", ".join(f"{w['error']:.1e} -> {w['fastest']}" for w in res["winners"]))
    write_json_atomic(a.out + ".json", {"results": results, "paths": a.paths, "dts": dts,
                                        "machine": platform.processor() or platform.machine(),
                                        "load_average": list(os.getloadavg()), "units": "seconds, RMS error",
                                        "gbm": {"mu": GBM_MU, "s": GBM_S}})
    plot(results, a.out + ".png")
    print("->", a.out + ".json", a.out + ".png")


if __name__ == "__main__":
    main()

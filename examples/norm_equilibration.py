"""Norm equilibration in O(1/(lam*eta)) steps, on the sphere model (full-parameter SDE).

Sweeps the intrinsic learning rate lam_e = eta*lam over two decades with several (eta, lam)
pairs per value, starting every run at the same G_0/G_inf, measures the first time after
which the ensemble-mean |G_t/G_inf - 1| stays below eps, and fits log t_eq against
log lam_e. Theory: t_eq = ln(|G_0/G_inf - 1|/eps) / (4 lam_e), i.e. slope -1, prefactor 1.

    python examples/norm_equilibration.py [--quick] [--out results/norm_equilibration]

Not yet covered: the digits classifier (tr Sigma varies along the path), which needs the data
models of issue 3.
"""

import argparse
import os
import time

import numpy as np

import sdesim
from sdesim._io import write_json_atomic
from sdesim.normalized import SphereModel, sgd_sde, theory


def first_settled_time(ts, gap, eps):
    """First save time after which ``gap`` stays below ``eps`` (NaN if it never settles)."""
    above = np.flatnonzero(gap >= eps)
    if above.size == 0:
        return ts[0]
    if above[-1] == len(ts) - 1:
        return float("nan")
    return ts[above[-1] + 1]


def run(quick=False, out="results/norm_equilibration", seed=0):
    d, s = 10, 1.0
    model = SphereModel(d, s=s)
    tau = model.tau
    lam_es = np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    etas = [0.05, 0.2] if quick else [0.05, 0.1, 0.2, 0.4]
    ratio0, eps = 10.0, 0.05
    n_paths = 100 if quick else 400
    points = []
    t_start = time.perf_counter()
    for lam_e in lam_es:
        t_pred = theory.equilibration_time(ratio0, lam_e, eps)
        ts = np.linspace(0.0, 2.0 * t_pred, 801)
        for eta in etas:
            lam = lam_e / eta
            G_inf = theory.G_inf(lam_e, tau)
            norm0 = (ratio0 * G_inf * eta**2) ** 0.25
            w0 = np.zeros(d)
            w0[0] = norm0
            dt = 0.005 / lam_e
            sol = sdesim.solve(sgd_sde(model, eta, lam), w0, ts, dt=dt, n_paths=n_paths, seed=seed,
                               reduce=True, functional=_norm4, functional_dim=1)
            G_mean = sol.mean[:, 0] / eta**2
            gap = np.abs(G_mean / G_inf - 1.0)
            t_eq = first_settled_time(ts, gap, eps)
            points.append({"lam_e": lam_e, "eta": eta, "lam": lam, "dt": dt, "t_eq": t_eq,
                           "t_pred": t_pred, "ratio": t_eq / t_pred})
    x = np.log([p["lam_e"] for p in points])
    y = np.log([p["t_eq"] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    prefactors = np.array([p["ratio"] for p in points])
    summary = {"model": repr(model), "tau": tau, "G0_over_Ginf": ratio0, "eps": eps, "n_paths": n_paths,
               "slope": slope, "slope_target": -1.0,
               "prefactor_mean": prefactors.mean(), "prefactor_min": prefactors.min(),
               "prefactor_max": prefactors.max(), "points": points,
               "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "sphere.json"), summary)
    _plot(points, slope, intercept, os.path.join(out, "sphere.png"))
    print(f"slope {slope:.4f} (target -1 +- 0.05); t_eq * 4 lam_e / ln(|G0/Ginf - 1|/eps): "
          f"{prefactors.min():.3f} .. {prefactors.max():.3f} (target 1 +- 0.1); {summary['wall_s']:.1f} s")
    return summary


import numba as nb  # noqa: E402


@nb.njit
def _norm4(t, y, args, out):
    acc = 0.0
    for i in range(y.size):
        acc += y[i] * y[i]
    out[0] = acc * acc


def _plot(points, slope, intercept, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed; no figure")
        return
    lam_e = np.array([p["lam_e"] for p in points])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(lam_e, [p["t_eq"] for p in points], "o", label="measured (ensemble mean)")
    grid = np.geomspace(lam_e.min(), lam_e.max(), 50)
    ax.loglog(grid, [theory.equilibration_time(10.0, g, 0.05) for g in grid], "-", label="theory ln(9/eps)/(4 lam_e)")
    ax.set_xlabel("intrinsic LR lam_e = eta * lam")
    ax.set_ylabel("norm-equilibration time (SGD steps)")
    ax.set_title(f"sphere model: fitted slope {slope:.3f}")
    ax.legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/norm_equilibration")
    a = ap.parse_args()
    run(a.quick, a.out)

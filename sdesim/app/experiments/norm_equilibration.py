"""Norm equilibration in O(1/(lam*eta)) steps: sphere model and digits classifier (full-parameter SDE).

Sweeps the intrinsic learning rate lam_e = eta*lam over two decades with several (eta, lam)
pairs per value, starting every run at the same G_0/G_inf (G = |W|^4/eta^2), measures the first
time after which the ensemble-mean |G_t/G_inf - 1| stays below eps, and fits log t_eq against
log lam_e. Theory (constant tr Sbar = tau): t_eq = ln(|G_0/G_inf - 1|/eps) / (4 lam_e), i.e.
slope -1 and t_eq * 4 lam_e / ln(|G_0/G_inf - 1|/eps) = 1. On the sphere the SDE gives each
path's G no noise term (Sigma(W) W = 0), so each path's first passage into (1 + eps) G_inf is t_eq
too; it is measured per path by an event of the solve (:func:`settle_event`, located within the
step by linear interpolation). The scheme's squared increments do add O(sqrt(dt)) noise to a
path's G, so the per-path times scatter (about 10% here) and their mean is compared, within
0.1 or 3 standard errors.

* Sphere model (d = 10, s = 1): tau = s^2 (d - 1) is constant, G_inf = tau/(2 lam_e) is exact.
* Digits classifier (scikit-learn's 8x8 digits, normalized linear softmax, exact minibatch noise,
  B = 32): tr Sbar varies along the path (it falls as the classifier learns), so G_inf is
  measured as the tail mean of G, and the constant-trace prediction uses the observed mean trace
  at equilibrium, tau_obs: G_inf,pred = tau_obs / (2 lam_e). Both the measured time against
  the prediction and G_inf against G_inf,pred are reported. The step dt is min(0.5, 0.01/lam_e)
  SGD steps; the Euler-Maruyama bias in G_inf grows with dt (about +8% at dt = 0.5, from the
  squared drift term dt |grad L|^2 the scheme adds to the noise), which is why G_inf is measured.

    python examples/norm_equilibration.py [--quick] [--out results/norm_equilibration] [--skip-digits]

Writes sphere.json/png and digits.json/png under --out.
"""

import argparse
import os
import time
from typing import TypedDict
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic
from sdesim.normalized import NormalizedLinearClassifier, SphereModel, load_digits, sgd_sde, theory
from .experiment import Experiment, fmt, row, within
from ._common import pyplot, save_figure

RATIO0, EPS = 10.0, 0.05
#: Tolerance of the equilibration-time prefactor (widened to 3 standard errors where the noise is larger).
PREFACTOR_TOL = 0.1


def first_settled_time(ts, gap, eps):
    """First save time after which ``gap`` stays below ``eps`` (NaN if it never settles)."""
    above = np.flatnonzero(gap >= eps)
    if above.size == 0:
        return ts[0]
    if above[-1] == len(ts) - 1:
        return float("nan")
    return ts[above[-1] + 1]


def _fit(points):
    x = np.log([p["lam_e"] for p in points])
    y = np.log([p["t_eq"] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


@nb.njit(fastmath=False)
def _norm4(t, y, args, out):
    acc = 0.0
    for i in range(y.size):
        acc += y[i] * y[i]
    out[0] = acc * acc


def settle_event(model, eps):
    """Event of :func:`sdesim.solve` for the full SDE of ``model`` with constant rates: per path,
    ``(1 + eps) G_inf eta^2 - |W|^4`` with ``G_inf = tau / (2 eta lam)``, which turns ``>= 0`` when the
    path's own ``G = |W|^4 / eta^2`` first comes within ``eps`` above ``G_inf`` (from above)."""
    c = (1.0 + eps) * model.tau / 2.0

    @nb.njit(fastmath=False)
    def settled(t, y, args):
        r2 = 0.0
        for i in range(y.size):
            r2 += y[i] * y[i]
        return c * args.lr_values[0] / args.wd_values[0] - r2 * r2  # (sgd_sde's SGDArgs)
    return settled


def run_sphere(quick=False, out="results/norm_equilibration", seed=0):
    d, s = 10, 1.0
    model = SphereModel(d, s=s)
    tau = model.tau
    lam_es = np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    etas = [0.05, 0.2] if quick else [0.05, 0.1, 0.2, 0.4]
    n_paths = 100 if quick else 400
    points = []
    event = settle_event(model, EPS)
    t_start = time.perf_counter()
    for lam_e in lam_es:
        t_pred = theory.equilibration_time(RATIO0, lam_e, EPS)
        ts = np.linspace(0.0, 2.0 * t_pred, 801)
        for i_eta, eta in enumerate(etas):
            lam = lam_e / eta
            G_inf = theory.G_inf(lam_e, tau)
            norm0 = (RATIO0 * G_inf * eta**2) ** 0.25
            w0 = np.zeros(d)
            w0[0] = norm0
            dt = 0.005 / lam_e
            # a seed per eta: the scheme is exactly equivariant under (eta, lam, W) -> (c eta, lam/c,
            # sqrt(c) W), so one seed for all pairs would repeat one ensemble instead of replicating it
            sol = sdesim.solve(sgd_sde(model, eta, lam), w0, ts, dt=dt, n_paths=n_paths, seed=seed + i_eta,
                               reduce=True, functional=_norm4, functional_dim=1, event=event)
            G_mean = sol.mean[:, 0] / eta**2
            t_eq = first_settled_time(ts, np.abs(G_mean / G_inf - 1.0), EPS)
            # each path's first passage into (1 + eps) G_inf, located within its step by the event
            passed = np.isfinite(sol.event_t)
            t_fp = float(np.mean(sol.event_t[passed])) if passed.any() else float("nan")
            t_fp_se = float(np.std(sol.event_t[passed], ddof=1) / np.sqrt(passed.sum())) if passed.sum() > 1 else 0.0
            points.append({"lam_e": lam_e, "eta": eta, "lam": lam, "dt": dt, "t_eq": t_eq,
                           "t_pred": t_pred, "ratio": t_eq / t_pred,
                           "t_first_passage": t_fp, "t_first_passage_se": t_fp_se,
                           "first_passage_ratio": t_fp / t_pred, "paths_passed": int(passed.sum())})
    slope, intercept = _fit(points)
    prefactors = np.array([p["ratio"] for p in points])
    fp = np.array([p["first_passage_ratio"] for p in points])
    fp_se = max(p["t_first_passage_se"] / p["t_pred"] for p in points)
    summary = {"model": repr(model), "tau": tau, "G0_over_Ginf": RATIO0, "eps": EPS, "n_paths": n_paths,
               "slope": slope, "slope_target": -1.0,
               "first_passage_ratio_min": float(fp.min()), "first_passage_ratio_max": float(fp.max()),
               "first_passage_ratio_se_max": fp_se,
               "first_passage_all_paths": all(p["paths_passed"] == n_paths for p in points),
               "prefactor_mean": prefactors.mean(), "prefactor_min": prefactors.min(),
               "prefactor_max": prefactors.max(), "points": points,
               "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "sphere.json"), summary)
    _plot(points, slope, "sphere model (tau constant)", os.path.join(out, "sphere.png"))
    print(f"sphere: slope {slope:.4f} (target -1 +- 0.05); t_eq * 4 lam_e / ln(|G0/Ginf - 1|/eps): "
          f"{prefactors.min():.3f} .. {prefactors.max():.3f} (target 1 +- 0.1); per-path first passage "
          f"(events) / t_pred: {fp.min():.3f} .. {fp.max():.3f} (SE <= {fp_se:.1e}); {summary['wall_s']:.1f} s")
    return summary


def _digits_functional(model):
    trace = model.noise_trace_kernel

    @nb.njit(fastmath=False)
    def norm4_and_trace(t, y, args, out):
        r2 = 0.0
        for i in range(y.size):
            r2 += y[i] * y[i]
        tr = np.empty(1)
        trace(y, args.params, tr)  # (sgd_sde's SGDArgs)
        out[0] = r2 * r2     # |W|^4
        out[1] = tr[0] * r2  # tr Sigma(Wbar) = |W|^2 tr Sigma(W)
    return norm4_and_trace


def _digits_point(model, functional, w_dir, lam_e, eta, tau_ref, n_paths, seed, n_threads):
    lam = lam_e / eta
    G0 = RATIO0 * tau_ref / (2.0 * lam_e)
    t_ref = theory.equilibration_time(RATIO0, lam_e, EPS)
    ts = np.linspace(0.0, 3.0 * t_ref, 301)
    dt = min(0.5, 0.01 / lam_e)
    w0 = w_dir * (G0 * eta**2) ** 0.25
    sol = sdesim.solve(sgd_sde(model, eta, lam), w0, ts, dt=dt, n_paths=n_paths, seed=seed, reduce=True,
                       functional=functional, functional_dim=2, n_threads=n_threads)
    G = sol.mean[:, 0] / eta**2
    trace = sol.mean[:, 1]
    tail = ts >= 2.1 * t_ref
    G_inf = G[tail].mean()
    tau_obs = trace[tail].mean()
    G_inf_pred = tau_obs / (2.0 * lam_e)
    t_eq = first_settled_time(ts, np.abs(G / G_inf - 1.0), EPS)
    t_pred = theory.equilibration_time(G0 / G_inf_pred, lam_e, EPS)
    log_gap = np.log(abs(G0 / G_inf - 1.0) / EPS)
    # standard error of the prefactor from the ensemble noise: near t_eq, |G/G_inf - 1| falls
    # at the rate 4 lam_e EPS per step, so a relative error r of G/G_inf there moves the settling
    # time by r / (4 lam_e EPS) and the prefactor by r / (EPS log_gap); r combines the standard
    # error of the mean G at t_eq and that of the tail mean G_inf (taken as fully correlated)
    se_rel = np.sqrt(np.maximum(sol.var[:, 0], 0.0) / n_paths) / sol.mean[:, 0]
    at = min(np.searchsorted(ts, t_eq), ts.size - 1) if np.isfinite(t_eq) else ts.size - 1
    r = float(np.hypot(se_rel[at], se_rel[tail].mean()))
    return {"lam_e": lam_e, "eta": eta, "lam": lam, "dt": dt, "n_paths": n_paths,
            "G0_over_Ginf_measured": G0 / G_inf, "G_inf_measured": G_inf, "tau_obs": tau_obs,
            "tau_start": trace[0], "G_inf_pred_constant_trace": G_inf_pred,
            "G_inf_measured_over_pred": G_inf / G_inf_pred,
            "t_eq": t_eq, "t_pred_constant_trace": t_pred, "ratio": t_eq / t_pred,
            "prefactor": t_eq * 4.0 * lam_e / log_gap, "prefactor_se": r / (EPS * log_gap),
            "ts": ts, "G_over_Ginf": G / G_inf, "trace": trace}


def run_digits(quick=False, out="results/norm_equilibration", seed=0):
    t_start = time.perf_counter()
    model = NormalizedLinearClassifier(load_digits(), batch_size=32)
    functional = _digits_functional(model)
    w_dir = model.random_init(seed=seed)
    lam_es = [1e-2, 3e-2, 1e-1] if quick else [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    etas = [0.1] if quick else [0.05, 0.5]
    n_paths = 8 if quick else 16
    # pilot at the largest lam_e: the equilibrium trace sets G_0 = RATIO0 * tau_ref / (2 lam_e)
    pilot = _digits_point(model, functional, w_dir, lam_es[-1], etas[0], 1.5, n_paths, seed + 1, 2)
    tau_ref = pilot["tau_obs"]
    # one seed per eta (see run_sphere), the slow small-lam_e runs first, one point per core
    jobs = sorted((lam_e, eta, seed + i) for lam_e in lam_es for i, eta in enumerate(etas))
    with ThreadPoolExecutor(max_workers=2) as pool:
        points = list(pool.map(lambda j: _digits_point(model, functional, w_dir, j[0], j[1], tau_ref,
                                                       n_paths, j[2], 1), jobs))
    slope, intercept = _fit(points)
    ratios = np.array([p["ratio"] for p in points])
    prefactors = np.array([p["prefactor"] for p in points])
    g_ratio = np.array([p["G_inf_measured_over_pred"] for p in points])
    summary = {"model": repr(model), "G0_over_Ginf_target": RATIO0, "eps": EPS, "tau_ref": tau_ref,
               "slope": slope, "slope_target": -1.0,
               "prefactor_min": prefactors.min(), "prefactor_max": prefactors.max(),
               "prefactor_tolerance": max(PREFACTOR_TOL, 3.0 * max(p["prefactor_se"] for p in points)),
               "t_eq_over_constant_trace_prediction_min": ratios.min(),
               "t_eq_over_constant_trace_prediction_max": ratios.max(),
               "G_inf_measured_over_pred_min": g_ratio.min(), "G_inf_measured_over_pred_max": g_ratio.max(),
               "points": [{k: v for k, v in p.items() if k not in ("ts", "G_over_Ginf", "trace")} for p in points],
               "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "digits.json"), summary)
    _plot(points, slope, "digits classifier (measured G_inf)", os.path.join(out, "digits.png"), curves=points)
    print(f"digits: slope {slope:.4f}; t_eq * 4 lam_e / ln(|G0/Ginf - 1|/eps) with measured G_inf: "
          f"{prefactors.min():.3f} .. {prefactors.max():.3f}; t_eq / constant-trace prediction (observed "
          f"mean trace): {ratios.min():.3f} .. {ratios.max():.3f}; G_inf measured / predicted: "
          f"{g_ratio.min():.3f} .. {g_ratio.max():.3f}; {summary['wall_s']:.1f} s")
    return summary


def run(quick=False, out="results/norm_equilibration", seed=0, digits=True):
    result = {"sphere": run_sphere(quick, out, seed)}
    if digits:
        result["digits"] = run_digits(quick, out, seed)
    return result


def _plot(points, slope, title, path, curves=None):
    plt = pyplot()
    if plt is None:
        return
    lam_e = np.array([p["lam_e"] for p in points])
    ncol = 1 if curves is None else 2
    fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 4), squeeze=False)
    ax = axes[0, 0]
    ax.loglog(lam_e, [p["t_eq"] for p in points], "o", label="measured (ensemble mean)")
    grid = np.geomspace(lam_e.min(), lam_e.max(), 50)
    ax.loglog(grid, theory.equilibration_time(RATIO0, grid, EPS), "-",
              label=f"theory ln({RATIO0 - 1:g}/eps)/(4 lam_e)")
    ax.set_xlabel("intrinsic LR lam_e = eta * lam")
    ax.set_ylabel("norm-equilibration time (SGD steps)")
    ax.set_title(f"{title}: slope {slope:.3f}")
    ax.legend()
    if curves is not None:
        ax = axes[0, 1]
        for p in curves:
            ax.semilogy(p["ts"] * p["lam_e"], np.abs(p["G_over_Ginf"] - 1.0), lw=1,
                        label=f"lam_e={p['lam_e']:g}, eta={p['eta']:g}")
        t = np.linspace(0, 3 * theory.equilibration_time(RATIO0, 1.0, EPS), 100)
        ax.semilogy(t, (RATIO0 - 1) * np.exp(-4 * t), "k--", label="(G0/Ginf - 1) exp(-4 lam_e t)")
        ax.axhline(EPS, color="gray", lw=0.8)
        ax.set_xlabel("lam_e * t")
        ax.set_ylabel("|G_t / G_inf - 1| (ensemble mean)")
        ax.set_ylim(1e-3, 20)
        ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    sp = s["sphere"]
    rows.append(row("sphere: slope of log t_eq vs log lam_e", "-1", fmt(sp["slope"], 4), "+- 0.05",
                    within(sp["slope"], -1.0, 0.05)))
    rows.append(row("sphere: t_eq * 4 lam_e / ln(|G0/Ginf - 1|/eps), all points", "1",
                    f"{fmt(sp['prefactor_min'])} .. {fmt(sp['prefactor_max'])}", "+- 0.1",
                    within(sp["prefactor_min"], 1, 0.1) and within(sp["prefactor_max"], 1, 0.1)))
    if "first_passage_ratio_min" in sp:
        lo, hi = sp["first_passage_ratio_min"], sp["first_passage_ratio_max"]
        tol = max(PREFACTOR_TOL, 3.0 * sp["first_passage_ratio_se_max"])
        rows.append(row("sphere: per-path first passage into (1 + eps) G_inf (events) / t_pred, all points",
                        "1", f"{fmt(lo)} .. {fmt(hi)}", f"+- {fmt(tol)}, every path",
                        within(lo, 1, tol) and within(hi, 1, tol) and sp["first_passage_all_paths"]))
    if "digits" in s:
        dg = s["digits"]
        rows.append(row("digits: slope of log t_eq vs log lam_e", "-1", fmt(dg["slope"], 4), "+- 0.05",
                        within(dg["slope"], -1.0, 0.05)))
        tol = dg.get("prefactor_tolerance", PREFACTOR_TOL)
        rows.append(row("digits: prefactor with measured G_inf, all points", "1",
                        f"{fmt(dg['prefactor_min'])} .. {fmt(dg['prefactor_max'])}",
                        f"+- {fmt(tol)} (0.1, or 3 SE of the ensemble noise if larger)",
                        within(dg["prefactor_min"], 1, tol) and within(dg["prefactor_max"], 1, tol)))
        lo, hi = dg["t_eq_over_constant_trace_prediction_min"], dg["t_eq_over_constant_trace_prediction_max"]
        rows.append(row("digits: t_eq / constant-trace prediction (observed trace)", "1",  # (same noise as t_eq)
                        f"{fmt(lo)} .. {fmt(hi)}", f"+- {fmt(tol)}", within(lo, 1, tol) and within(hi, 1, tol)))
        lo, hi = dg["G_inf_measured_over_pred_min"], dg["G_inf_measured_over_pred_max"]
        rows.append(row("digits: G_inf measured / (tau_obs / (2 lam_e))", "1 (+ EM bias, ~+8% at dt = 0.5)",
                        f"{fmt(lo)} .. {fmt(hi)}", "in [0.95, 1.12]", lo >= 0.95 and hi <= 1.12))
    return rows


# (optional keys: in a subclass with total=False, as typing.NotRequired needs Python 3.11)
class _SphereRequired(TypedDict):
    slope: float                           #: of log t_eq against log lam_e
    prefactor_min: float                   #: t_eq lam_e / prediction, over lam_e
    prefactor_max: float


class SphereSummary(_SphereRequired, total=False):
    first_passage_ratio_min: float         #: per-path first passages (events) / prediction
    first_passage_ratio_max: float
    first_passage_ratio_se_max: float
    first_passage_all_paths: bool


class _DigitsRequired(TypedDict):
    slope: float
    prefactor_min: float
    prefactor_max: float
    t_eq_over_constant_trace_prediction_min: float
    t_eq_over_constant_trace_prediction_max: float
    G_inf_measured_over_pred_min: float
    G_inf_measured_over_pred_max: float


class DigitsSummary(_DigitsRequired, total=False):
    prefactor_tolerance: float


class _Required(TypedDict):
    sphere: SphereSummary


class Summary(_Required, total=False):
    """What :func:`checks` reads of :func:`run`'s summary (``digits``: full runs only)."""

    digits: DigitsSummary


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'norm_equilibration', "Norm equilibration in O(1/(lam eta)) steps",
    "Starting at G_0 = 10 G_inf (G = |W|^4/eta^2), the ensemble-mean G settles within eps = 5% of "
         "G_inf after t_eq = ln(|G_0/G_inf - 1|/eps) / (4 lam_e) steps: slope -1 against lam_e = eta lam, "
         "prefactor 1. Sphere model (exact) and the digits classifier (exact minibatch noise).",
    run, checks,
    seeds="sphere: seed + i per eta; digits: initial direction seed, pilot seed + 1, "
         "points seed + i per eta",
    expected_quick_s=110,
    summary_type=Summary,
    example_summary={
        "sphere": {"slope": -1.0, "prefactor_min": 1.01, "prefactor_max": 1.02, "first_passage_ratio_min": 1.0,
                   "first_passage_ratio_max": 1.01, "first_passage_ratio_se_max": 1e-4,
                   "first_passage_all_paths": True},
        "digits": {"slope": -0.99, "prefactor_min": 0.98, "prefactor_max": 1.02,
                   "t_eq_over_constant_trace_prediction_min": 0.97, "t_eq_over_constant_trace_prediction_max": 1.01,
                   "G_inf_measured_over_pred_min": 1.04, "G_inf_measured_over_pred_max": 1.07}})


def main(argv=None):
    """Command line: the same options as ``python examples/norm_equilibration.py``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-digits", action="store_true", help="only the sphere model")
    ap.add_argument("--out", default="results/norm_equilibration")
    a = ap.parse_args(argv)
    return run(a.quick, a.out, digits=not a.skip_digits)


if __name__ == "__main__":
    main()

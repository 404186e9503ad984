"""Discrete SGD against its SDE on the digits classifier, and SVAG walking SGD toward the SDE.

Model: the normalized linear softmax classifier on scikit-learn's digits, minibatches of B = 32
drawn without replacement; SGD ``w_{k+1} = (1 - eta lam) w_k - eta g_k`` with a real minibatch
gradient, and the SDE ``dW = -eta (grad L + lam W) dt + eta Sigma^{1/2} dB`` with the exact
minibatch covariance (time in SGD steps), both from the same start ``w0`` (a random direction
with the norm near its equilibrium value).

Reported (mean and a band of +-1 s.d. over runs, over time): |w|, eta_eff = eta/|w|^2, training
loss. At equilibrium (second half of the run) the measured G = |w|^4/eta^2 is compared with

    SDE:  G_inf = tau / (2 lam_e),        tau = tr Sigma(wbar) observed along the SDE paths
    SGD:  |w|^4 = eta U / (lam (2 - eta lam)),  U = |grad L(wbar)|^2 + tr Sigma(wbar) observed
          along the SGD iterates (the mean-field fixed point of the exact norm recursion)

SVAG (factor l: l sub-steps of eta/l with the two-minibatch gradient per SGD step) tends to the
SDE as l grows: the gap in the equilibrium mean of G and of the loss between SVAG runs and the
SDE is reported for l = 1, 2, 4, 8 with standard errors. The SDE reference removes the
Euler-Maruyama O(dt) bias by Richardson extrapolation 2 m(dt/2) - m(dt) on the same Brownian path.

    python examples/sgd_vs_sde.py [--quick] [--out results/sgd_vs_sde] [--seed 0]

Writes sgd_vs_sde.json and sgd_vs_sde.png under --out.
"""

import os
import time
from typing import List, TypedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic
from sdesim.normalized import NormalizedLinearClassifier, load_digits, run_sgd, sgd_sde
from .experiment import Experiment, fmt, row
from ._common import pyplot, save_figure, command_line


def _window_stats(x, window):
    """Per-run time average over the window -> (mean over runs, standard error, per-run values)."""
    per_run = x[window].mean(axis=0)
    return float(per_run.mean()), float(per_run.std(ddof=1) / np.sqrt(per_run.size)), per_run


def _sde_records(model, eta, lam, w0, steps, dt, n_paths, seed, n_threads=None):
    """SDE paths at the record steps: (norm, loss, train accuracy, tr Sigma(wbar)) each (T, P)."""
    sol = sdesim.solve(sgd_sde(model, eta, lam), w0, steps.astype(np.float64), dt=dt, n_paths=n_paths,
                       seed=seed, n_threads=n_threads)
    W = sol.ys
    norms = np.linalg.norm(W, axis=-1)
    loss = np.array([[model.loss(w) for w in Wt] for Wt in W])
    acc = np.array([[model.accuracy(w) for w in Wt] for Wt in W])
    tau = np.array([[model.noise_traces(w)[0] * (w @ w) for w in Wt] for Wt in W])
    return norms, loss, acc, tau


def run(quick=False, out="results/sgd_vs_sde", seed=0):
    t_start = time.perf_counter()
    model = NormalizedLinearClassifier(load_digits(), batch_size=32)
    eta, lam = 0.1, 0.1
    lam_e = eta * lam
    T = 200 if quick else 500
    steps = np.arange(0, T + 1, 10)
    window = steps >= T / 2
    n_runs = 32 if quick else 64
    n_paths = 16 if quick else 32
    dt = 0.5 if quick else 0.25
    # start near the equilibrium norm (tr Sigma(wbar) settles near 1.5 on this model), so that the
    # second half of the run is at equilibrium for both
    w0 = model.random_init(seed=seed, norm=(eta**2 * 1.5 / (2 * lam_e)) ** 0.25)

    # SDE at dt and dt/2 on the same Brownian path (the same seed), Richardson
    # (compile once, then the two step sizes side by side, one core each)
    sdesim.solve(sgd_sde(model, eta, lam), w0, [0.0, dt], dt=dt, n_paths=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        sde = dict(zip((dt, dt / 2), pool.map(
            lambda h: _sde_records(model, eta, lam, w0, steps, h, n_paths, seed, n_threads=1), (dt, dt / 2))))
    G_sde = {h: sde[h][0] ** 4 / eta**2 for h in sde}
    fine = dt / 2
    rich_G = 2 * G_sde[fine] - G_sde[dt]
    rich_loss = 2 * sde[fine][1] - sde[dt][1]
    sde_ref = {"G": _window_stats(rich_G, window), "loss": _window_stats(rich_loss, window)}
    tau_sde = _window_stats(sde[fine][3], window)[0]

    # discrete SGD and SVAG
    sgd = {}
    for l in (1, 2, 4, 8):
        r = run_sgd(model, eta, lam, w0, steps, n_runs=n_runs, seed=seed + 1, svag=l,
                    record_iterate=(l == 1))
        sgd[l] = r
    r1 = sgd[1]
    G_sgd = r1.norms[..., 0] ** 4 / eta**2
    # discrete prediction with U observed along the SGD iterates (every 5th record in the window)
    idx = np.flatnonzero(window)[::5]
    U = np.mean([np.sum(model.grad(w / np.linalg.norm(w)) ** 2) + model.noise_traces(w)[0] * (w @ w)
                 for t in idx for w in r1.iterates[t]])
    svag_rows = []
    for l, r in sgd.items():
        row = {"l": l}
        for name, x in (("G", r.norms[..., 0] ** 4 / eta**2), ("loss", r.loss)):
            m, se, _ = _window_stats(x, window)
            ref_m, ref_se, _ = sde_ref[name]
            row[f"{name}_sgd"], row[f"{name}_sgd_se"] = m, se
            row[f"{name}_gap"], row[f"{name}_gap_se"] = m - ref_m, float(np.hypot(se, ref_se))
        svag_rows.append(row)

    summary = {
        "model": repr(model), "eta": eta, "lam": lam, "lam_e": lam_e, "steps": int(T), "n_runs": n_runs,
        "n_paths": n_paths, "dt": dt, "window": [float(T / 2), float(T)],
        "sde": {"G_mean_richardson": sde_ref["G"][0], "G_se": sde_ref["G"][1],
                "G_mean_dt": _window_stats(G_sde[dt], window)[0],
                "G_mean_dt_half": _window_stats(G_sde[fine], window)[0],
                "tau_observed": tau_sde, "G_inf_theory": tau_sde / (2 * lam_e),
                "eta_eff_mean": _window_stats(eta / sde[fine][0] ** 2, window)[0],
                "eta_eff_theory": float(np.sqrt(2 * lam_e / tau_sde)),
                "loss_mean_richardson": sde_ref["loss"][0],
                "train_acc_final": float(sde[fine][2][-1].mean())},
        "sgd": {"G_mean": _window_stats(G_sgd, window)[0], "G_se": _window_stats(G_sgd, window)[1],
                "U_observed": float(U), "G_discrete_theory": eta * U / (lam * (2 - eta * lam)) / eta**2,
                "eta_eff_mean": _window_stats(r1.eta_eff[..., 0], window)[0],
                "loss_mean": _window_stats(r1.loss, window)[0],
                "train_acc_final": float(r1.train_acc[-1].mean()),
                "test_acc_final": None if r1.test_acc is None else float(r1.test_acc[-1].mean())},
        "svag": svag_rows,
        "wall_s": None,
    }
    summary["wall_s"] = time.perf_counter() - t_start
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "sgd_vs_sde.json"), summary)
    _plot(steps, r1, sde[fine], eta, summary, os.path.join(out, "sgd_vs_sde.png"))
    s, g = summary["sde"], summary["sgd"]
    print(f"equilibrium G: SDE {s['G_mean_richardson']:.2f} +- {s['G_se']:.2f} vs tau/(2 lam_e) = "
          f"{s['G_inf_theory']:.2f}; SGD {g['G_mean']:.2f} +- {g['G_se']:.2f} vs discrete "
          f"eta U/(lam(2 - eta lam))/eta^2 = {g['G_discrete_theory']:.2f}")
    print(f"eta_eff: SDE {s['eta_eff_mean']:.4f} (theory {s['eta_eff_theory']:.4f}), SGD {g['eta_eff_mean']:.4f}")
    for row in svag_rows:
        print(f"SVAG l={row['l']}: gap in G {row['G_gap']:+.3f} +- {row['G_gap_se']:.3f}, "
              f"gap in loss {row['loss_gap']:+.4f} +- {row['loss_gap_se']:.4f}")
    print(f"{summary['wall_s']:.1f} s")
    return summary


def _plot(steps, sgd, sde, eta, summary, path):
    plt = pyplot()
    if plt is None:
        return
    norms, loss = sde[0], sde[1]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    series = [("|w|", sgd.norms[..., 0], norms), ("eta_eff = eta/|w|^2", sgd.eta_eff[..., 0], eta / norms**2),
              ("train loss", sgd.loss, loss)]
    for ax, (name, a, b) in zip(axes, series):
        for x, label, c in ((a, "SGD", "C0"), (b, "SDE", "C1")):
            m, s = x.mean(axis=1), x.std(axis=1)
            ax.plot(steps, m, color=c, label=label)
            ax.fill_between(steps, m - s, m + s, color=c, alpha=0.25)
        ax.set_xlabel("SGD steps")
        ax.set_title(name)
        ax.legend()
    axes[1].axhline(summary["sde"]["eta_eff_theory"], color="k", ls="--", lw=0.8, label="sqrt(2 lam_e/tau)")
    ax = axes[3]
    ls = [r["l"] for r in summary["svag"]]
    ax.errorbar(ls, [r["G_gap"] for r in summary["svag"]], yerr=[2 * r["G_gap_se"] for r in summary["svag"]],
                fmt="o-", label="SVAG - SDE (equilibrium G), 2 SE")
    ax.plot(ls, summary["svag"][0]["G_gap"] / np.array(ls), "k--", label="gap(l=1) / l")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("SVAG factor l")
    ax.set_title("SGD walks toward the SDE")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    sv = s["svag"]
    gaps = [r["G_gap"] for r in sv]
    ses = [r["G_gap_se"] for r in sv]
    mono = all(abs(b) <= abs(a) + 2 * sb for a, b, sb in zip(gaps, gaps[1:], ses[1:]))
    halved = abs(gaps[-1]) < abs(gaps[0]) / 2
    rows.append(row("SVAG: gap in equilibrium G between SGD (l) and the SDE, l = " +
                    ", ".join(str(r["l"]) for r in sv), "decreasing toward 0 (~ 1/l)",
                    ", ".join(f"{g:+.2f}" for g in gaps) + f" (SE ~{fmt(max(ses), 2)})",
                    "non-increasing within 2 SE per step, and |gap(l_max)| < |gap(1)|/2", mono and halved))
    last = sv[-1]
    z = last["loss_gap"] / last["loss_gap_se"]
    rows.append(row(f"SVAG l = {last['l']}: gap in equilibrium training loss vs the SDE", "0",
                    f"{last['loss_gap']:+.4f} ({z:+.2f} SE)", "|dev| < 4 SE", abs(z) < 4))
    sde, sgd = s["sde"], s["sgd"]
    rel = sde["G_mean_richardson"] / sde["G_inf_theory"] - 1
    rows.append(row("SDE: equilibrium G (Richardson) vs tau_obs / (2 lam_e)", fmt(sde["G_inf_theory"], 4),
                    f"{fmt(sde['G_mean_richardson'], 4)} +- {fmt(sde['G_se'], 2)} ({100 * rel:+.1f}%)", "+- 5%",
                    abs(rel) <= 0.05))
    rel = sgd["G_mean"] / sgd["G_discrete_theory"] - 1
    rows.append(row("SGD: equilibrium G vs discrete fixed point eta U / (lam (2 - eta lam)) / eta^2",
                    fmt(sgd["G_discrete_theory"], 4), f"{fmt(sgd['G_mean'], 4)} +- {fmt(sgd['G_se'], 2)} "
                    f"({100 * rel:+.1f}%)", "+- 5%", abs(rel) <= 0.05))
    rows.append(row("SDE: mean eta_eff at equilibrium vs sqrt(2 lam_e / tau_obs)", fmt(sde["eta_eff_theory"], 4),
                    fmt(sde["eta_eff_mean"], 4), "(E[1/|W|^2] vs 1/sqrt(E G): Jensen gap and EM bias)", None))
    return rows


class SvagSummary(TypedDict):
    l: int                                 #: the SVAG parameter
    G_gap: float
    G_gap_se: float
    loss_gap: float
    loss_gap_se: float


class SdeSummary(TypedDict):
    G_mean_richardson: float
    G_se: float
    G_inf_theory: float
    eta_eff_theory: float
    eta_eff_mean: float


class SgdSummary(TypedDict):
    G_mean: float
    G_se: float
    G_discrete_theory: float


class Summary(TypedDict):
    """What :func:`checks` reads of :func:`run`'s summary."""

    svag: List[SvagSummary]
    sde: SdeSummary
    sgd: SgdSummary


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'sgd_vs_sde', "Discrete SGD against its SDE; SVAG closes the gap",
    "SGD and the SDE on digits reach their predicted equilibria (tau/(2 lam_e) for the SDE, the discrete "
         "fixed point for SGD); SVAG with l = 1, 2, 4, 8 walks SGD toward the SDE.",
    run, checks,
    seeds="initial direction and SDE paths: seed; SGD/SVAG minibatches: seed + 1",
    expected_quick_s=60,
    summary_type=Summary,
    example_summary={
        "svag": [{"l": l, "G_gap": 13.0 / l, "G_gap_se": 0.5, "loss_gap": 0.001, "loss_gap_se": 0.002}
                 for l in (1, 2, 4, 8)],
        "sde": {"G_mean_richardson": 73.5, "G_se": 0.5, "G_inf_theory": 74.0, "eta_eff_theory": 0.116,
                "eta_eff_mean": 0.114},
        "sgd": {"G_mean": 86.5, "G_se": 0.3, "G_discrete_theory": 86.0}})


def main(argv=None):
    """Command line: the same options as ``python examples/sgd_vs_sde.py``."""
    return command_line(run, __doc__, "sgd_vs_sde", argv)


if __name__ == "__main__":
    main()

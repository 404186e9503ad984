"""Learning-rate decay versus weight-decay decay at equilibrium (sphere model, full-parameter SDE).

The full SDE ``dW = -eta(t) (grad L(W) + lam(t) W) dt + eta(t) Sigma(W)^{1/2} dB`` (time in SGD
steps) starts at the norm equilibrium of (eta, lam), |W_0|^4 = eta tau / (2 lam) with random
directions, runs a warm-up of 1/lam_e steps, and at t0 either

  (a) the learning rate is divided by k (``Schedule([eta, eta/k], [t0])``), or
  (b) the weight decay is divided by k (``Schedule([lam, lam/k], [t0])``).

Both give the new intrinsic LR lam_e' = lam_e / k. With G = |W|^4/eta^2 = eta_eff^-2 obeying
dG = (-4 lam_e G + 2 tau) dt (tau = tr Sbar = s^2 (d - 1)) and eta_eff = eta(t)/|W|^2 computed with
the learning rate in force at t, the theory (theory.lr_decay_eta_eff_ratio,
theory.wd_decay_eta_eff_ratio) is, for t >= t0,

    LR / k:  eta_eff(t)/eta_eff,old = 1/sqrt(k + (k^2 - k) exp(-4 lam_e' (t - t0)))   (drops k at once)
    WD / k:  eta_eff(t)/eta_eff,old = 1/sqrt(k - (k - 1) exp(-4 lam_e' (t - t0)))     (smooth)

with the same end point 1/sqrt(k) after O(1/lam_e') steps; eta_eff,old = sqrt(2 lam_e / tau).
The script measures the ensemble mean of eta_eff(t)/eta_eff,old (standard error from the same
ensemble) and reports the largest deviation from theory after t0, in absolute terms and in
standard errors. On the flat sphere the continuous-time eta_eff is deterministic, so the
ensemble spread is Euler-Maruyama noise (relative s.d. ~ sqrt(a/(d-1)), a = lam_e dt) and the EM
bias at equilibrium is E[eta_eff]/eta_eff,inf - 1 = -a (1/4 - 1/(2(d-1))) + O(a^2); dt is a power
of two with a * n_paths ~ 1-2, which keeps the bias below one standard error
(quick: dt = 4, a = 0.004, 400 paths; full: dt = 1, a = 0.001, 2000 paths).

    python examples/lr_decay.py [--quick] [--out results/lr_decay] [--seed 0]

Writes ``lr_decay.json`` and ``lr_decay.png`` under ``--out``.
"""

import math
import os
import time
from typing import Dict, TypedDict

import numba as nb
import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic
from sdesim.normalized import Schedule, SphereModel, sgd_sde, theory
from .experiment import Experiment, fmt, row
from ._common import pyplot, save_figure, command_line


@nb.njit(fastmath=False)
def _inv_norm2(t, y, args, out):
    """1/|W|^2; times the learning rate in force at t it is eta_eff (done afterwards)."""
    r2 = 0.0
    for i in range(y.size):
        r2 += y[i] * y[i]
    out[0] = 1.0 / r2


def _at(ts, x, t):
    """``x`` at the save time nearest to ``t``."""
    return x[int(np.argmin(np.abs(ts - t)))]


def run_case(name, model, lr, wd, y0, ts, t0, dt, seed, eff_old, th_ratio):
    sol = sdesim.solve(sgd_sde(model, lr, wd), y0, ts, dt=dt, n_paths=y0.shape[0], seed=seed,
                       reduce=True, functional=_inv_norm2, functional_dim=1, n_threads=1)
    eta_t = lr(ts)  # the learning rate in force at each save time (the new one from t0 on)
    ratio = eta_t * sol.mean[:, 0] / eff_old
    se = eta_t * np.sqrt(sol.var[:, 0] / sol.count) / eff_old
    after = ts >= t0
    i0 = int(np.flatnonzero(after)[0])
    th = np.where(after, th_ratio(np.maximum(ts - t0, 0.0)), 1.0)
    z = (ratio - th) / se
    za = np.abs(z[after])
    i_max = int(np.argmax(za))
    pre = float(lr(t0 - dt)) * sol.mean[i0, 0] / eff_old  # same state, learning rate before the change
    pre_se = float(lr(t0 - dt)) * np.sqrt(sol.var[i0, 0] / sol.count[i0]) / eff_old
    warm = (ts > 0) & (ts < t0)
    t_relax = t0 + 0.25 / float(wd(t0) * lr(t0))
    out = {"case": name, "lr": repr(lr), "wd": repr(wd),
           "before_decay": {"ratio": pre, "se": pre_se, "theory": 1.0, "dev_se": (pre - 1.0) / pre_se},
           "warmup_max_dev_se": float(np.max(np.abs(z[warm]))) if warm.any() else None,
           "just_after": {"t": ts[i0], "ratio": ratio[i0], "se": se[i0], "theory": th[i0],
                          "dev_se": z[i0], "drop_factor": pre / ratio[i0]},
           "at_relaxation_time": {"t": _at(ts, ts, t_relax), "ratio": _at(ts, ratio, t_relax),
                                  "se": _at(ts, se, t_relax), "theory": _at(ts, th, t_relax)},
           "end": {"t": ts[-1], "ratio": ratio[-1], "se": se[-1], "theory": th[-1], "dev_se": z[-1]},
           "max_abs_dev_after": float(np.max(np.abs(ratio - th)[after])),
           "max_dev_se_after": float(za[i_max]), "t_of_max_dev": ts[after][i_max],
           "rms_dev_se_after": float(np.sqrt(np.mean(za**2)))}
    return out, (ratio, se, th)


def run(quick=False, out="results/lr_decay", seed=0):
    d, s = 10, 1.0
    model = SphereModel(d, s=s)
    tau = model.tau
    eta, lam, k = 0.1, 0.01, 10.0
    lam_e = eta * lam
    lam_e_new = lam_e / k
    a_max = 0.004 if quick else 0.001  # dt * lam_e_old
    n_paths = 400 if quick else 2000
    dt = 2.0 ** math.floor(math.log2(a_max / lam_e))  # a power of two: t0 lies exactly on the grid
    t0 = dt * math.ceil(1.0 / lam_e / dt)  # warm-up of 1/lam_e steps at the old rates
    t_after = 2.0 / lam_e_new  # exp(-8): both ratios within 0.2% of 1/sqrt(k) at the end
    ts = np.concatenate([np.linspace(0.0, t0, 11)[:-1], t0 + np.linspace(0.0, t_after, 201 if quick else 401)])
    eff_old = theory.eta_eff_inf(lam_e, tau)
    # equilibrium start: |W_0|^4 = eta tau / (2 lam), uniformly random directions
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_paths, d))
    y0 = u / np.linalg.norm(u, axis=1, keepdims=True) * theory.norm2_inf(eta, lam, tau) ** 0.5
    t_start = time.perf_counter()
    cases, curves = {}, {}
    specs = {"lr": (Schedule([eta, eta / k], [t0]), Schedule([lam]),
                    lambda t: theory.lr_decay_eta_eff_ratio(t, k, lam_e_new)),
             "wd": (Schedule([eta]), Schedule([lam, lam / k], [t0]),
                    lambda t: theory.wd_decay_eta_eff_ratio(t, k, lam_e_new))}
    for name, (lr, wd, th_ratio) in specs.items():
        cases[name], curves[name] = run_case(name, model, lr, wd, y0, ts, t0, dt, seed + 1, eff_old, th_ratio)
    summary = {"model": repr(model), "tau": tau, "k": k, "eta_old": eta, "lam_old": lam,
               "lam_e_old": lam_e, "lam_e_new": lam_e_new, "eta_eff_old_theory": eff_old,
               "t0": t0, "t_after": t_after, "dt": dt, "dt_lam_e_old": dt * lam_e, "n_paths": n_paths,
               "n_save_after": int(np.sum(ts >= t0)),
               "em_bias_first_order_rel": -dt * lam_e * (0.25 - 0.5 / (d - 1)),
               "one_over_k": 1.0 / k, "one_over_sqrt_k": 1.0 / math.sqrt(k),
               "cases": cases, "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "lr_decay.json"), summary)
    _plot(ts, t0, curves, summary, os.path.join(out, "lr_decay.png"))
    print(f"sphere d={d}, s={s}: eta={eta}, lam={lam} (lam_e={lam_e:g}), k={k:g}, t0={t0:g}, "
          f"dt={dt:g} (dt*lam_e={dt * lam_e:g}), {n_paths} paths")
    for name, c in cases.items():
        ja, en, bd = c["just_after"], c["end"], c["before_decay"]
        print(f"  {name.upper()} / k: before {bd['ratio']:.5f} ({bd['dev_se']:+.2f} SE); just after "
              f"{ja['ratio']:.5f} (theory {ja['theory']:.5f}, drop x{ja['drop_factor']:.3f}); end "
              f"{en['ratio']:.5f} +- {en['se']:.5f} (theory {en['theory']:.5f}, 1/sqrt(k) = {k ** -0.5:.5f}); "
              f"after t0 max |dev| {c['max_abs_dev_after']:.2e} = {c['max_dev_se_after']:.2f} SE "
              f"(rms {c['rms_dev_se_after']:.2f} SE)")
    print(f"{summary['wall_s']:.1f} s")
    return summary


def _plot(ts, t0, curves, summary, path):
    plt = pyplot()
    if plt is None:
        return
    k = summary["k"]
    x = ts - t0
    fig, (ax, az) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"lr": "C0", "wd": "C1"}
    for name, (ratio, se, th) in curves.items():
        c = summary["cases"][name]
        ax.plot(x, ratio, color=colors[name], lw=1.3,
                label=f"{name.upper()} / {k:g}: simulation (max {c['max_dev_se_after']:.1f} SE)")
        ax.fill_between(x, ratio - 2 * se, ratio + 2 * se, color=colors[name], alpha=0.3)
        ax.plot(x, th, "k--", lw=0.9)
        az.plot(x[x >= 0], ((ratio - th) / se)[x >= 0], color=colors[name], lw=1, label=f"{name.upper()} / {k:g}")
    ax.plot([], [], "k--", lw=0.9, label="theory")
    ax.axhline(k**-0.5, color="gray", ls=":", lw=1, label="1/sqrt(k)")
    ax.axhline(1.0 / k, color="gray", ls="-.", lw=1, label="1/k")
    ax.set_xlabel("t - t0 (SGD steps)")
    ax.set_ylabel("eta_eff(t) / eta_eff,old")
    ax.set_title(f"sphere model, lam_e {summary['lam_e_old']:g} -> {summary['lam_e_new']:g}, "
                 f"dt={summary['dt']:g}, {summary['n_paths']} paths (band: 2 SE)", fontsize=9)
    ax.legend(fontsize=8)
    for v in (-3, 3):
        az.axhline(v, color="gray", ls=":", lw=1)
    az.set_xlabel("t - t0 (SGD steps)")
    az.set_ylabel("(simulation - theory) / SE")
    az.set_title("deviation from theory after the decay", fontsize=9)
    az.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    k = s["k"]
    for name, c in s["cases"].items():
        what = f"{name.upper()} / {k:g}"
        z = c["max_dev_se_after"]
        rows.append(row(f"{what}: eta_eff(t)/eta_eff,old after the decay, max dev from theory over t",
                        "theory curve", f"{fmt(z)} SE (max |dev| {fmt(c['max_abs_dev_after'])})", "< 4 SE", z < 4))
        bd = c["before_decay"]
        rows.append(row(f"{what}: eta_eff/eta_eff,old at equilibrium before the decay", "1",
                        f"{fmt(bd['ratio'], 5)} ({bd['dev_se']:+.2f} SE)", "|dev| < 4 SE", abs(bd["dev_se"]) < 4))
        en = c["end"]
        rows.append(row(f"{what}: end value (2/lam_e,new after the decay)", f"1/sqrt(k) = {fmt(k ** -0.5, 5)}",
                        f"{fmt(en['ratio'], 5)} ({en['dev_se']:+.2f} SE vs theory {fmt(en['theory'], 5)})",
                        "|dev| < 4 SE", abs(en["dev_se"]) < 4))
        if name == "lr":
            ja = c["just_after"]
            rows.append(row(f"{what}: drop of eta_eff at the decay", f"x{k:g} at once",
                            f"x{fmt(ja['drop_factor'], 4)}", "(covered by the curve row)", None))
    return rows


class RatioSummary(TypedDict):
    ratio: float                           #: eta_eff / its value before the decay
    dev_se: float                          #: against the closed form, in SEs


class EndSummary(RatioSummary):
    theory: float                          #: the closed form there


class JustAfterSummary(TypedDict):
    drop_factor: float                     #: eta_eff just before / just after the decay


class CaseSummary(TypedDict):
    max_dev_se_after: float
    max_abs_dev_after: float
    before_decay: RatioSummary
    end: EndSummary
    just_after: JustAfterSummary


class Summary(TypedDict):
    """What :func:`checks` reads of :func:`run`'s summary."""

    k: float                               #: the decay factor
    cases: Dict[str, CaseSummary]          #: "lr" and "wd"


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'lr_decay', "Learning-rate decay vs weight-decay decay at equilibrium",
    "LR / k drops eta_eff by k at once and relaxes to 1/sqrt(k) in O(1/lam_e'); WD / k reaches the "
         "same end point smoothly (closed forms of theory.lr_decay_eta_eff_ratio / wd_decay_eta_eff_ratio).",
    run, checks,
    seeds="initial directions: seed; Brownian paths: seed + 1",
    expected_quick_s=30,
    summary_type=Summary,
    example_summary={"k": 10.0, "cases": {name: {
        "max_dev_se_after": 2.5, "max_abs_dev_after": 1e-3, "before_decay": {"ratio": 1.0, "dev_se": 0.3},
        "end": {"ratio": 0.316, "dev_se": -0.2, "theory": 0.3163}, "just_after": {"drop_factor": 10.01}}
        for name in ("lr", "wd")}})


def main(argv=None):
    """Command line: the same options as ``python examples/lr_decay.py``."""
    return command_line(run, __doc__, "lr_decay", argv)


if __name__ == "__main__":
    main()

"""The equilibrium depends on the intrinsic learning rate lam_e = eta*lam alone (sphere model,
full-parameter SDE).

For each lam_e, several (eta, lam) pairs with eta*lam = lam_e (eta spanning 100x) are simulated
with the full SDE ``dW = -eta (grad L(W) + lam W) dt + eta Sigma(W)^{1/2} dB`` (time in SGD
steps), each from |W_0| = sqrt(eta) G_0^{1/4}, so that G_0 = |W_0|^4/eta^2 is the same for every
pair (here G_0 = 10 G_inf: the norm starts too large and eta_eff too small). By Ito's lemma
(Wbar, G = |W|^4/eta^2 = eta_eff^-2) obey

    dWbar = -G^(-1/2) grad L(Wbar) dt + G^(-1/2) Sbar^(1/2) dB - (1/2) G^(-1) tr(Sbar) Wbar dt
    dG    = (-4 lam_e G + 2 tr Sbar) dt

which contain (eta, lam) only through lam_e: the trajectories of eta_eff = eta/|W|^2 (and of any
function of the direction, here the loss L(Wbar)) must collapse onto one curve per lam_e, on the
same time axis, and settle at

    eta_eff,inf = sqrt(2 lam_e / tau),   tau = tr Sbar = s^2 (d - 1)   (theory.eta_eff_inf)

along eta_eff(t) = eta / sqrt(theory.norm4(t, |W_0|, eta, lam, tau)).

All pairs of one lam_e run as one solve, their rates per-path arguments (``sdesim.per_path``);
every pair is an independent ensemble (its own path indices); the collapse is measured as the largest
|mean(pair) - mean(reference pair)| / combined standard error over the save times (and, not
hostage to one reference ensemble, against the pooled mean of the other pairs). Euler-Maruyama
is itself exactly covariant under (eta, lam, W_0) -> (c eta, lam/c, sqrt(c) W_0) (``same_seed``
checks this to rounding), so the collapse holds at any dt; the comparison with the closed forms
is limited by the EM bias, which on the flat sphere is, to first order in a = lam_e dt,
E[eta_eff]/eta_eff,inf - 1 = -a (1/4 - 1/(2(d-1))), a fraction of the standard error at the
chosen a and path count. With a loss (H != 0) the squared-gradient term eta^2 |grad L|^2 dt^2 of EM
adds a larger O(dt) bias (mean field: tau -> tau + dt E|grad L(Wbar)|^2, i.e. eta_eff lower by
(dt/2) E|grad L(Wbar)|^2 / tau, about 1% at lam_e = 1e-3, dt = 2.5); the reference pair is
also run at dt/2 on the same Brownian path and the Richardson extrapolation 2 m(dt/2) - m(dt) is
compared with theory.

    python examples/intrinsic_lr.py [--quick] [--out results/intrinsic_lr] [--seed 0]

Writes ``intrinsic_lr.json`` and ``intrinsic_lr.png`` under ``--out``.
"""

import os
import time
from typing import List, TypedDict

import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic
from sdesim.normalized import SphereModel, sgd_sde, theory
from .experiment import Experiment, fmt, row
from ._common import pyplot, save_figure, command_line

G0_OVER_GINF = 10.0


def _solve(model, etas, lams, w0s, ts, dt, n_paths, seed):
    """One solve for every (eta, lam) pair: the rates are per-path arguments (``sdesim.per_path``),
    pair ``j`` runs path indices ``j n_paths .. (j + 1) n_paths - 1`` (independent of the other
    pairs; bitwise the paths a solve of that pair alone with these indices gives) from ``w0s[j]``.
    Per pair: ensemble mean and standard error of (eta_eff = eta/|W|^2, L(Wbar)) at the save times."""
    k = len(etas)
    rate = lambda v: sdesim.per_path(np.repeat(np.asarray(v, dtype=np.float64), n_paths))  # noqa: E731
    sde = sgd_sde(model, rate(etas), rate(lams))
    y0 = np.repeat(np.asarray(w0s, dtype=np.float64), n_paths, axis=0)
    ys = sdesim.solve(sde, y0, ts, dt=dt, n_paths=k * n_paths, seed=seed).ys  # (T, k n_paths, d)
    out = []
    for j, eta in enumerate(etas):
        w = ys[:, j * n_paths:(j + 1) * n_paths]
        r2 = np.einsum("tpi,tpi->tp", w, w)
        loss = 0.5 * np.einsum("tpi,ij,tpj->tp", w, model.H, w) / r2 if model.H.size else np.zeros_like(r2)
        vals = np.stack([eta / r2, loss], axis=-1)  # (T, n_paths, 2)
        out.append((vals.mean(axis=1), vals.std(axis=1, ddof=1) / np.sqrt(n_paths)))
    return out


def _dev_se(ma, sa, mb, sb):
    """(max, rms, argmax) over save times t > 0 of |ma - mb| / sqrt(sa^2 + sb^2)."""
    z = np.abs(ma[1:] - mb[1:]) / np.sqrt(sa[1:] ** 2 + sb[1:] ** 2)
    i = int(np.argmax(z))
    return float(z[i]), float(np.sqrt(np.mean(z**2))), i + 1


def run_lam_e(model, lam_e, etas, dt_lam_e, n_paths, n_save, seed, curves):
    tau, d = model.tau, model.d
    G_inf = theory.G_inf(lam_e, tau)
    G0 = G0_OVER_GINF * G_inf
    dt = dt_lam_e / lam_e
    ts = np.linspace(0.0, 3.0 / lam_e, n_save)
    direction = np.ones(d) / np.sqrt(d)
    th_inf = theory.eta_eff_inf(lam_e, tau)
    lams = [lam_e / eta for eta in etas]
    norm0s = [np.sqrt(eta) * G0**0.25 for eta in etas]
    solved = _solve(model, etas, lams, [n * direction for n in norm0s], ts, dt, n_paths, seed)
    res = {eta: (lam, norm0, m, se) for eta, lam, norm0, (m, se) in zip(etas, lams, norm0s, solved)}
    eta_ref = etas[0]
    m_ref, se_ref = res[eta_ref][2], res[eta_ref][3]
    norm0_ref = res[eta_ref][1]
    closed = eta_ref / np.sqrt(theory.norm4(ts, norm0_ref, eta_ref, lam_e / eta_ref, tau))
    pairs = []
    for eta in etas:
        lam, norm0, m, se = res[eta]
        p = {"eta": eta, "lam": lam, "norm0": norm0, "G0": norm0**4 / eta**2,
             "eta_eff_end": m[-1, 0], "eta_eff_end_se": se[-1, 0],
             "loss_end": m[-1, 1], "loss_end_se": se[-1, 1]}
        p["max_dev_vs_closed_form_se"] = _dev_se(m[:, 0], se[:, 0], closed, 0.0 * closed)[0]
        p["max_rel_dev_vs_closed_form"] = float(np.max(np.abs(m[:, 0] / closed - 1.0)))
        if eta != eta_ref:
            z, rms, i = _dev_se(m[:, 0], se[:, 0], m_ref[:, 0], se_ref[:, 0])
            p["max_dev_vs_ref_eta_eff_se"], p["rms_dev_vs_ref_eta_eff_se"] = z, rms
            p["t_of_max_dev_eta_eff"] = ts[i]
            p["max_rel_dev_vs_ref_eta_eff"] = float(np.max(np.abs(m[1:, 0] / m_ref[1:, 0] - 1.0)))
            if model.H.size:
                z, rms, i = _dev_se(m[:, 1], se[:, 1], m_ref[:, 1], se_ref[:, 1])
                p["max_dev_vs_ref_loss_se"], p["rms_dev_vs_ref_loss_se"] = z, rms
                p["t_of_max_dev_loss"] = ts[i]
        pairs.append(p)
    # each pair against the pooled mean of all the other pairs (not hostage to one reference ensemble)
    for p in pairs:
        rest = [e for e in etas if e != p["eta"]]
        m_o = np.mean([res[e][2][:, 0] for e in rest], axis=0)
        se_o = np.sqrt(np.sum([res[e][3][:, 0] ** 2 for e in rest], axis=0)) / len(rest)
        p["max_dev_vs_others_eta_eff_se"] = _dev_se(res[p["eta"]][2][:, 0], res[p["eta"]][3][:, 0], m_o, se_o)[0]
    others = [p for p in pairs if p["eta"] != eta_ref]
    # equilibrium (t = 3/lam_e: the G transient is down to 9 e^-12) pooled over the independent pairs
    eq = np.mean([res[e][2][-1, 0] for e in etas])
    eq_se = np.sqrt(np.sum([res[e][3][-1, 0] ** 2 for e in etas])) / len(etas)
    out = {"lam_e": lam_e, "dt": dt, "dt_lam_e": dt_lam_e, "t_end": ts[-1], "G0": G0, "G_inf": G_inf,
           "reference_eta": eta_ref, "pairs": pairs,
           "max_dev_vs_ref_eta_eff_se": max(p["max_dev_vs_ref_eta_eff_se"] for p in others),
           "rms_dev_vs_ref_eta_eff_se": max(p["rms_dev_vs_ref_eta_eff_se"] for p in others),
           "max_dev_vs_others_eta_eff_se": max(p["max_dev_vs_others_eta_eff_se"] for p in pairs),
           "eta_spread": max(etas) / min(etas),
           "eta_eff_inf_theory": th_inf, "eta_eff_eq_sim": eq, "eta_eff_eq_se": eq_se,
           "eta_eff_eq_dev_se": (eq - th_inf) / eq_se, "eta_eff_eq_rel_dev": eq / th_inf - 1.0}
    if model.H.size:
        out["max_dev_vs_ref_loss_se"] = max(p["max_dev_vs_ref_loss_se"] for p in others)
        out["rms_dev_vs_ref_loss_se"] = max(p["rms_dev_vs_ref_loss_se"] for p in others)
        out["loss_eq_sim"] = float(np.mean([res[e][2][-1, 1] for e in etas]))
    else:
        out["em_bias_first_order_rel"] = -dt_lam_e * (0.25 - 0.5 / (d - 1))
        out["em_bias_first_order_se"] = out["em_bias_first_order_rel"] * th_inf / eq_se
    # Richardson: the reference pair again at dt/2 (the same seed: the same Brownian path)
    lam_ref = lam_e / eta_ref
    (m_h, se_h), = _solve(model, [eta_ref], [lam_ref], [norm0_ref * direction], ts, dt / 2, n_paths, seed)
    rich = 2.0 * m_h[:, 0] - m_ref[:, 0]
    rich_se = np.sqrt(4.0 * se_h[:, 0] ** 2 + se_ref[:, 0] ** 2)  # conservative (ignores correlation)
    out["reference_eq_dt"] = m_ref[-1, 0]
    out["reference_eq_dt_half"] = m_h[-1, 0]
    out["richardson_eq"] = rich[-1]
    out["richardson_eq_se"] = rich_se[-1]
    out["richardson_eq_dev_se"] = (rich[-1] - th_inf) / rich_se[-1]
    out["richardson_eq_rel_dev"] = rich[-1] / th_inf - 1.0
    # the whole reference trajectory against the closed form, at dt and extrapolated
    out["reference_vs_closed_form"] = {
        "max_dev_se_dt": pairs[0]["max_dev_vs_closed_form_se"],
        "max_rel_dev_dt": pairs[0]["max_rel_dev_vs_closed_form"],
        "max_dev_se_dt_half": _dev_se(m_h[:, 0], se_h[:, 0], closed, 0.0 * closed)[0],
        "max_rel_dev_dt_half": float(np.max(np.abs(m_h[:, 0] / closed - 1.0))),
        "max_dev_se_richardson": _dev_se(rich, rich_se, closed, 0.0 * closed)[0],
        "max_rel_dev_richardson": float(np.max(np.abs(rich / closed - 1.0)))}
    # EM is exactly covariant: the last pair with the reference pair's seed gives the same eta_eff
    eta_x = etas[-1]
    (m_x, _), = _solve(model, [eta_x], [lam_e / eta_x], [res[eta_x][1] * direction], ts, dt, n_paths, seed)
    out["same_seed_max_rel_diff"] = float(np.max(np.abs(m_x[:, 0] / m_ref[:, 0] - 1.0)))
    curves.append({"lam_e": lam_e, "ts": ts, "closed": closed, "th_inf": th_inf, "richardson": rich,
                   "pairs": [(e, res[e][2], res[e][3]) for e in etas]})
    return out


def run(quick=False, out="results/intrinsic_lr", seed=0):
    d, s = 10, 1.0
    models = [SphereModel(d, s=s), SphereModel(d, s=s, H=np.diag(np.linspace(0.0, 2.0, d)))]
    lam_es = [1e-3, 1e-2] if quick else [1e-3, 3e-3, 1e-2]
    etas = [0.1, 0.01, 1.0] if quick else [0.1, 0.01, 0.03, 0.3, 1.0]  # first: the reference
    # EM: the flat-sphere bias ~ 0.19 a against a standard error ~ sqrt(a / 9 / n): a n ~ 1
    dt_lam_e = 0.0025 if quick else 0.001
    n_paths = 400 if quick else 1000
    n_save = 151 if quick else 301
    t_start = time.perf_counter()
    runs, curves = [], {}
    for mi, model in enumerate(models):
        label = "H = 0" if model.H.size == 0 else "H = diag(linspace(0, 2, d))"
        curves[label] = []
        per = [run_lam_e(model, lam_e, etas, dt_lam_e, n_paths, n_save, seed + 1000 * mi + 100 * li,
                         curves[label])
               for li, lam_e in enumerate(lam_es)]
        runs.append({"model": repr(model), "label": label, "tau": model.tau, "lam_e": per})
    summary = {"d": d, "s": s, "tau": models[0].tau, "G0_over_Ginf": G0_OVER_GINF, "n_paths": n_paths,
               "dt_lam_e": dt_lam_e, "etas": etas, "runs": runs, "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "intrinsic_lr.json"), summary)
    _plot(curves, runs, os.path.join(out, "intrinsic_lr.png"))
    for r in runs:
        print(f"{r['label']}:")
        for x in r["lam_e"]:
            loss = ""
            if "max_dev_vs_ref_loss_se" in x:
                loss = f"; loss {x['max_dev_vs_ref_loss_se']:.2f} SE (rms {x['rms_dev_vs_ref_loss_se']:.2f})"
            print(f"  lam_e={x['lam_e']:g} (dt={x['dt']:g}, eta x{x['eta_spread']:.0f}): collapse max dev "
                  f"eta_eff {x['max_dev_vs_ref_eta_eff_se']:.2f} SE (rms {x['rms_dev_vs_ref_eta_eff_se']:.2f}; "
                  f"vs pooled others {x['max_dev_vs_others_eta_eff_se']:.2f}){loss}; "
                  f"same seed {x['same_seed_max_rel_diff']:.1e}")
            print(f"    eta_eff eq {x['eta_eff_eq_sim']:.6f} +- {x['eta_eff_eq_se']:.6f} vs theory "
                  f"{x['eta_eff_inf_theory']:.6f} ({x['eta_eff_eq_dev_se']:+.2f} SE, "
                  f"{100 * x['eta_eff_eq_rel_dev']:+.3f}%); Richardson {x['richardson_eq']:.6f} "
                  f"({x['richardson_eq_dev_se']:+.2f} SE)")
            cf = x["reference_vs_closed_form"]
            print(f"    reference vs closed-form trajectory: max {cf['max_dev_se_dt']:.2f} SE "
                  f"({100 * cf['max_rel_dev_dt']:.3f}%) at dt, {cf['max_dev_se_dt_half']:.2f} SE "
                  f"({100 * cf['max_rel_dev_dt_half']:.3f}%) at dt/2, {cf['max_dev_se_richardson']:.2f} SE "
                  f"({100 * cf['max_rel_dev_richardson']:.3f}%) extrapolated")
    print(f"{summary['wall_s']:.1f} s")
    return summary


def _plot(curves, runs, path):
    plt = pyplot()
    if plt is None:
        return
    rows = [(r, label, 0) for r, label in enumerate(curves)]
    rows += [(r, label, 1) for r, label in enumerate(curves) if runs[r]["lam_e"][0].get("loss_eq_sim") is not None]
    ncol = len(curves[rows[0][1]])
    fig, axes = plt.subplots(len(rows), ncol, figsize=(4.2 * ncol, 3.3 * len(rows)), squeeze=False)
    for row, (r, label, k) in enumerate(rows):
        for c, cv in enumerate(curves[label]):
            ax = axes[row, c]
            ts = cv["ts"]
            for eta, m, se in cv["pairs"]:
                ax.plot(ts, m[:, k], lw=1.2, label=f"eta={eta:g}, lam={cv['lam_e'] / eta:.3g}")
                ax.fill_between(ts, m[:, k] - 2 * se[:, k], m[:, k] + 2 * se[:, k], alpha=0.2)
            info = runs[r]["lam_e"][c]
            if k == 0:
                ax.plot(ts, cv["closed"], "k--", lw=1, label="closed form")
                ax.plot(ts, cv["richardson"], "r:", lw=1.2, label="reference, extrapolated to dt -> 0")
                ax.axhline(cv["th_inf"], color="k", ls=":", lw=1, label="sqrt(2 lam_e / tau)")
                ax.set_ylabel("eta_eff = eta / |W|^2")
                dev = info["max_dev_vs_ref_eta_eff_se"]
            else:
                ax.set_ylabel("L(Wbar) = Wbar.H Wbar / 2")
                ax.set_yscale("log")
                dev = info["max_dev_vs_ref_loss_se"]
            ax.set_title(f"{label}, lam_e={cv['lam_e']:g} (dt={info['dt']:g})\n"
                         f"pairs vs reference: max {dev:.1f} SE", fontsize=9)
            ax.set_xlabel("t (SGD steps)")
            if row == 0 and c == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    for r in s["runs"]:
        label, per = r["label"], r["lam_e"]
        lams = ", ".join(fmt(x["lam_e"]) for x in per)
        spread = max(x["eta_spread"] for x in per)
        z = max(x["max_dev_vs_ref_eta_eff_se"] for x in per)
        rows.append(row(f"{label}: eta_eff(t) of (eta, lam) pairs with the same lam_e (eta x{spread:.0f}), "
                        f"max dev from the reference pair over t, lam_e in {{{lams}}}",
                        "same curve (0 SE)", f"{fmt(z)} SE", "< 4 SE", z < 4))
        if all("max_dev_vs_ref_loss_se" in x for x in per):
            z = max(x["max_dev_vs_ref_loss_se"] for x in per)
            rows.append(row(f"{label}: loss L(Wbar)(t) of the pairs, max dev from the reference pair",
                            "same curve (0 SE)", f"{fmt(z)} SE", "< 4 SE", z < 4))
        if r["label"] == "H = 0":
            z = max(abs(x["eta_eff_eq_dev_se"]) for x in per)
            rel = max(abs(x["eta_eff_eq_rel_dev"]) for x in per)
            rows.append(row(f"{label}: equilibrium eta_eff vs sqrt(2 lam_e / tau), worst lam_e",
                            "sqrt(2 lam_e / tau)", f"{fmt(z)} SE ({100 * rel:.2f}%)", "|dev| < 4 SE", z < 4))
        else:
            z = max(abs(x["richardson_eq_dev_se"]) for x in per)
            rel = max(abs(x["richardson_eq_rel_dev"]) for x in per)
            rows.append(row(f"{label}: equilibrium eta_eff (Richardson dt -> 0) vs sqrt(2 lam_e / tau), worst lam_e",
                            "sqrt(2 lam_e / tau)", f"{fmt(z)} SE ({100 * rel:.2f}%)", "|dev| < 4 SE", z < 4))
        m = max(x["same_seed_max_rel_diff"] for x in per)
        rows.append(row(f"{label}: EM covariance (eta, lam, W0) -> (c eta, lam/c, sqrt(c) W0), same seed",
                        "identical eta_eff", f"max rel diff {fmt(m)}", "< 1e-9 (rounding)", m < 1e-9))
    return rows


# (optional keys: in a subclass with total=False, as typing.NotRequired needs Python 3.11)
class _LamERequired(TypedDict):
    lam_e: float
    eta_spread: float                      #: largest / smallest eta among the pairs of this lam_e
    max_dev_vs_ref_eta_eff_se: float
    same_seed_max_rel_diff: float


class LamESummary(_LamERequired, total=False):
    max_dev_vs_ref_loss_se: float
    eta_eff_eq_dev_se: float               #: (H = 0) equilibrium eta_eff against the closed form
    eta_eff_eq_rel_dev: float
    richardson_eq_dev_se: float            #: (H != 0) Richardson-extrapolated equilibrium
    richardson_eq_rel_dev: float


class RunSummary(TypedDict):
    label: str                             #: "H = 0" or the Hessian's description
    lam_e: List[LamESummary]


class Summary(TypedDict):
    """What :func:`checks` reads of :func:`run`'s summary."""

    runs: List[RunSummary]


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'intrinsic_lr', "The equilibrium depends on lam_e = eta lam alone",
    "For each lam_e, (eta, lam) pairs with eta spanning 100x give the same eta_eff(t) and loss curves, "
         "settling at sqrt(2 lam_e / tau); Euler-Maruyama is exactly covariant under the rescaling.",
    run, checks,
    seeds="seed + 1000 * model + 100 * lam_e index; pair j: path indices j n_paths .. (j + 1) n_paths - 1",
    expected_quick_s=60,
    summary_type=Summary,
    example_summary={"runs": [
        {"label": "H = 0", "lam_e": [{"lam_e": 1e-3, "eta_spread": 100.0, "max_dev_vs_ref_eta_eff_se": 2.1,
                                      "eta_eff_eq_dev_se": -0.5, "eta_eff_eq_rel_dev": -1e-4,
                                      "same_seed_max_rel_diff": 1e-15}]},
        {"label": "H = diag", "lam_e": [{"lam_e": 1e-3, "eta_spread": 100.0, "max_dev_vs_ref_eta_eff_se": 2.1,
                                         "max_dev_vs_ref_loss_se": 3.0, "richardson_eq_dev_se": 1.0,
                                         "richardson_eq_rel_dev": 1e-4, "same_seed_max_rel_diff": 1e-15}]}]})


def main(argv=None):
    """Command line: the same options as ``python examples/intrinsic_lr.py``."""
    return command_line(run, __doc__, "intrinsic_lr", argv)


if __name__ == "__main__":
    main()

"""The Fast Equilibrium Conjecture (Li, Lyu & Arora 2020) on the digits classifier and on a
multi-group model: ensembles of SGD runs started from very different norms, or run with a
different learning-rate schedule, reach the same distribution of outputs after O(1/(lam*eta))
steps, while their parameters stay far apart.

For each intrinsic LR lam_e = eta*lam (a decade of values) four ensembles of R discrete-SGD runs
(minibatches of 32 without replacement) are run on the same model; run r of the first three
ensembles starts from the same random direction, each ensemble with its own minibatch sequence
(with a shared sequence the runs synchronise: SGD driven by the same minibatches from the same
direction forgets its initial norm and the paths coalesce, which is a different statement):

  small : every group starts with G_0 = G_est / 30  (G = |w_j|^4 / eta^2, G_est = tau_0/(2 lam_e),
          tau_0 = tr Sigma of the group at the initial direction)
  large : G_0 = 30 G_est
  warm  : G_0 = G_est, learning rate 3x higher for the first 1/lam_e steps
  twin  : like `small` but other directions and another seed: the Monte-Carlo noise floor

Function-space distance between two ensembles at step t: the mean over held-out inputs x of the
total-variation distance between the ensemble-averaged predicted class distributions,
D = mean_x 1/2 sum_k |p_A(k|x) - p_B(k|x)|. The floor is D(small, twin) averaged over the last
half of the run. The mixing time is the first recorded step at which D(small, large), smoothed
over three neighbouring records, comes back within 1.2 x floor after its peak (D starts at 0
because the runs share their start directions and outputs depend on directions only; it rises
while the norms differ, then falls; first passage, since D fluctuates around the floor
afterwards); it is fitted against lam_e on a log-log scale (conjecture: slope -1). The
parameter-space distance is the mean over runs of |wbar_small,r - wbar_large,r| (same start
direction, other minibatches): it grows from 0 and stays large.

    python examples/fast_equilibrium.py [--quick] [--out results/fast_equilibrium] [--seed 0]

Writes fast_equilibrium.json and fast_equilibrium.png under --out.
"""

import os
import time
from typing import Dict, List, TypedDict

import numpy as np

from sdesim.app._io import write_json_atomic
from sdesim.normalized import NormalizedLinearClassifier, Schedule, WeightNormMLP, load_digits, run_sgd
from .experiment import Experiment, fmt, row, within
from ._common import pyplot, save_figure, command_line

SPREAD = 30.0


def _probs(model, W, X):
    """Ensemble-averaged class probabilities on X for the weights W (R, d) -> (m, K)."""
    acc = 0.0
    for w in W:
        z = model.logits(w, X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        acc = acc + z / z.sum(axis=1, keepdims=True)
    return acc / len(W)


def _tv(pa, pb):
    return float(0.5 * np.abs(pa - pb).sum(axis=1).mean())


def _scaled_start(model, w_dir, G, eta):
    """Each group of each run scaled to |w_j|^4 = G_j eta^2."""
    w = w_dir.copy()
    for j, (a, b) in enumerate(zip(model.group_offsets[:-1], model.group_offsets[1:])):
        w[:, a:b] *= (G[j] * eta**2) ** 0.25 / np.linalg.norm(w[:, a:b], axis=1, keepdims=True)
    return w


def run_point(model, lam_e, n_runs, seed, n_records, eta=0.1):
    lam = lam_e / eta
    T = int(round(8.0 / lam_e))
    steps = np.unique(np.linspace(0, T, n_records).round().astype(np.int64))
    w_dir = model.random_init(n_runs, seed=seed)
    w_twin = model.random_init(n_runs, seed=seed + 1000)
    tau0 = model.noise_traces(w_dir[0])  # per group, at a unit-norm start
    G_est = tau0 / (2 * lam_e)
    warm_lr = Schedule([3 * eta, eta], [round(1.0 / lam_e)])
    runs = {
        "small": run_sgd(model, eta, lam, _scaled_start(model, w_dir, G_est / SPREAD, eta), steps,
                         seed=seed, record_iterate=True, record_loss=False),
        "large": run_sgd(model, eta, lam, _scaled_start(model, w_dir, G_est * SPREAD, eta), steps,
                         seed=seed + 1, record_iterate=True, record_loss=False),
        "warm": run_sgd(model, warm_lr, lam, _scaled_start(model, w_dir, G_est, eta), steps,
                        seed=seed + 2, record_iterate=True, record_loss=False),
        "twin": run_sgd(model, eta, lam, _scaled_start(model, w_twin, G_est / SPREAD, eta), steps,
                        seed=seed + 1000, record_iterate=True, record_loss=False),
    }
    X = model.data.X_test
    probs = {k: [_probs(model, r.iterates[t], X) for t in range(steps.size)] for k, r in runs.items()}
    D = {f"small_{k}": np.array([_tv(a, b) for a, b in zip(probs["small"], probs[k])])
         for k in ("large", "warm", "twin")}
    late = steps >= T / 2
    floor = float(D["small_twin"][late].mean())
    smooth = np.convolve(np.pad(D["small_large"], 1, mode="edge"), np.ones(3) / 3, mode="valid")
    # D starts at 0 (same directions, and the outputs depend on the directions only), rises while
    # the different norms drive the runs apart, then falls to the floor: first passage after the peak
    peak = int(np.argmax(smooth))
    below = peak + np.flatnonzero(smooth[peak:] <= 1.2 * floor)
    t_mix = float(steps[below[0]]) if below.size else float("nan")
    wb = {k: r.iterates / np.linalg.norm(r.iterates, axis=-1, keepdims=True) for k, r in runs.items()}
    param_dist = np.linalg.norm(wb["small"] - wb["large"], axis=-1).mean(axis=1)
    G = {k: (r.norms**4 / eta**2).mean(axis=1) for k, r in runs.items()}  # (T, k)
    return {"lam_e": lam_e, "eta": eta, "lam": lam, "steps_total": T, "n_runs": n_runs,
            "floor": floor, "t_mix": t_mix, "t_mix_times_lam_e": t_mix * lam_e,
            "D_small_large_final": float(D["small_large"][-1]), "D_small_warm_final": float(D["small_warm"][-1]),
            "D_small_large_start": float(D["small_large"][0]),
            "param_distance_final": float(param_dist[-1]), "param_distance_max": float(param_dist.max()),
            "G_final_over_est": {k: (G[k][-1] / G_est).tolist() for k in G},
            "curves": {"steps": steps, **D, "param_distance": param_dist}}


def run(quick=False, out="results/fast_equilibrium", seed=0):
    t_start = time.perf_counter()
    data = load_digits()
    models = {"digits_linear": NormalizedLinearClassifier(data, batch_size=32),
              "digits_mlp": WeightNormMLP(data, hidden=8, batch_size=32)}
    lam_es = [1e-2, 3e-2, 1e-1] if quick else [3e-3, 1e-2, 3e-2]
    n_runs = 32 if quick else 96
    n_records = 61 if quick else 121
    results = {}
    for name, model in models.items():
        points = [run_point(model, lam_e, n_runs, seed, n_records) for lam_e in lam_es]
        ok = [p for p in points if np.isfinite(p["t_mix"]) and p["t_mix"] > 0]
        slope = float(np.polyfit(np.log([p["lam_e"] for p in ok]), np.log([p["t_mix"] for p in ok]), 1)[0]) \
            if len(ok) >= 2 else float("nan")
        results[name] = {"model": repr(model), "slope": slope, "points": points}
        print(f"{name}: mixing-time exponent {slope:.3f} (conjecture -1); " + "; ".join(
            f"lam_e={p['lam_e']:g}: t_mix={p['t_mix']:.0f} (x lam_e = {p['t_mix_times_lam_e']:.2f}), "
            f"D final {p['D_small_large_final']:.4f} vs floor {p['floor']:.4f}, "
            f"param dist {p['param_distance_final']:.2f}" for p in points))
    summary = {"spread": SPREAD, "results": {
        name: {**r, "points": [{k: v for k, v in p.items() if k != "curves"} for p in r["points"]]}
        for name, r in results.items()}, "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "fast_equilibrium.json"), summary)
    _plot(results, os.path.join(out, "fast_equilibrium.png"))
    print(f"{summary['wall_s']:.1f} s")
    return summary


def _plot(results, path):
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(len(results), 3, figsize=(15, 4 * len(results)), squeeze=False)
    for row, (name, r) in zip(axes, results.items()):
        for p in r["points"]:
            c = p["curves"]
            x = c["steps"] * p["lam_e"]
            line, = row[0].semilogy(x, c["small_large"], label=f"small vs large, lam_e={p['lam_e']:g}")
            row[0].semilogy(x, c["small_warm"], ":", color=line.get_color())
            row[0].semilogy(x, c["small_twin"], "--", color=line.get_color(), lw=0.8)
            row[1].plot(x, c["param_distance"], color=line.get_color(), label=f"lam_e={p['lam_e']:g}")
        row[0].set_xlabel("lam_e * t")
        row[0].set_ylabel("function-space distance (mean TV)")
        row[0].set_title(f"{name}: solid small vs large, dotted warm, dashed floor", fontsize=9)
        row[0].legend(fontsize=7)
        row[1].set_xlabel("lam_e * t")
        row[1].set_ylabel("mean |wbar_small - wbar_large|")
        row[1].set_title("parameter-space distance")
        row[1].legend(fontsize=7)
        lam = np.array([p["lam_e"] for p in r["points"]])
        row[2].loglog(lam, [p["t_mix"] for p in r["points"]], "o", label="measured mixing time")
        row[2].loglog(lam, r["points"][0]["t_mix"] * lam[0] / lam, "k--", label="1/lam_e")
        row[2].set_xlabel("lam_e")
        row[2].set_ylabel("steps to reach the noise floor")
        row[2].set_title(f"exponent {r['slope']:.2f}")
        row[2].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    for name, r in s["results"].items():
        pts = r["points"]
        rows.append(row(f"{name}: exponent of the function-space mixing time vs lam_e "
                        f"({', '.join(fmt(p['lam_e']) for p in pts)})", "-1", fmt(r["slope"], 3), "+- 0.3",
                        within(r["slope"], -1.0, 0.3)))
        rows.append(row(f"{name}: mixing time x lam_e", "O(1), the same for every lam_e",
                        ", ".join(fmt(p["t_mix_times_lam_e"], 2) for p in pts), "(the exponent row is the check)",
                        None))
        rows.append(row(f"{name}: final D(small, large) / noise floor",
                        "~1 (same output distribution)",
                        ", ".join(fmt(p["D_small_large_final"] / p["floor"], 2) for p in pts), "(one time, noisy)", None))
        rows.append(row(f"{name}: final mean |wbar_small - wbar_large| (parameters)", "stays O(1)",
                        ", ".join(fmt(p["param_distance_final"], 2) for p in pts), "", None))
    return rows


class PointSummary(TypedDict):
    lam_e: float
    t_mix_times_lam_e: float
    D_small_large_final: float
    floor: float
    param_distance_final: float


class ModelSummary(TypedDict):
    slope: float                           #: of log t_mix against log lam_e
    points: List[PointSummary]


class Summary(TypedDict):
    """What :func:`checks` reads of :func:`run`'s summary."""

    results: Dict[str, ModelSummary]


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'fast_equilibrium', "Fast equilibrium: function space mixes in O(1/lam_e)",
    "Ensembles started from norms 30x too small or too large (or with a warm-up schedule) reach the "
         "same distribution of outputs after O(1/lam_e) steps, while their parameters stay apart.",
    run, checks,
    seeds="directions: seed (twin: seed + 1000); minibatches: small seed, large "
         "seed + 1, warm seed + 2, twin seed + 1000",
    expected_quick_s=120,
    summary_type=Summary,
    example_summary={"results": {m: {"slope": -0.9, "points": [
        {"lam_e": x, "t_mix_times_lam_e": 1.0, "D_small_large_final": 0.02, "floor": 0.02,
         "param_distance_final": 0.4} for x in (0.01, 0.03, 0.1)]} for m in ("digits_linear", "digits_mlp")}})


def main(argv=None):
    """Command line: the same options as ``python examples/fast_equilibrium.py``."""
    return command_line(run, __doc__, "fast_equilibrium", argv)


if __name__ == "__main__":
    main()

""""Only the last learning-rate decay matters, given time" (Li, Lyu & Arora 2020), on the digits
classifier with discrete SGD.

Two schedules with the same weight decay lam and the same final learning rate eta_0/10:

  several decays : eta_0 -> eta_0/sqrt(10) at T1 -> eta_0/10 at T2
  last only      : eta_0 until T2 -> eta_0/10 at T2 (skips the early decay, trains longer at eta_0)

After the last decay both run 6/lam_e,final steps (lam_e,final = eta_0 lam/10). The theory says
the state after the last decay forgets the history in O(1/lam_e,final) steps: final train and
test accuracy, training loss and eta_eff = eta/|w|^2 should agree within their standard errors
(over independent runs), while shortly after T2 they may still differ.

    python examples/last_decay.py [--quick] [--out results/last_decay] [--seed 0]

Writes last_decay.json and last_decay.png under --out.
"""

import os
import time
from typing import Dict, TypedDict

import numpy as np

from sdesim.app._io import write_json_atomic
from sdesim.normalized import NormalizedLinearClassifier, Schedule, load_digits, run_sgd
from .experiment import Experiment, row
from ._common import pyplot, save_figure, command_line


def _mean_se(x):
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def run(quick=False, out="results/last_decay", seed=0):
    t_start = time.perf_counter()
    model = NormalizedLinearClassifier(load_digits(), batch_size=32)
    eta0 = 1.0
    lam = 0.03 if quick else 0.01
    lam_e_final = eta0 * lam / 10
    T1 = int(round(0.5 / (eta0 * lam)))
    T2 = 2 * T1 + int(round(1.0 / (eta0 * lam)))
    T_end = T2 + int(round(6.0 / lam_e_final))
    n_runs = 24 if quick else 64
    steps = np.unique(np.r_[np.linspace(0, T_end, 121), T2 + np.array([0.1, 0.3, 1.0]) / lam_e_final].round()
                      ).astype(np.int64)
    schedules = {"several decays": Schedule([eta0, eta0 / np.sqrt(10), eta0 / 10], [T1, T2]),
                 "last only": Schedule([eta0, eta0 / 10], [T2])}
    w0 = model.random_init(n_runs, seed=seed)
    runs = {name: run_sgd(model, lr, lam, w0, steps, seed=seed + i + 1) for i, (name, lr) in
            enumerate(schedules.items())}
    rows = {}
    for name, r in runs.items():
        rows[name] = {}
        for label, t in (("final", T_end), ("after_0.3_over_lam_e", T2 + round(0.3 / lam_e_final))):
            i = int(np.searchsorted(steps, t))
            rows[name][label] = {"step": int(steps[i]),
                                 "train_acc": _mean_se(r.train_acc[i]), "test_acc": _mean_se(r.test_acc[i]),
                                 "loss": _mean_se(r.loss[i]), "eta_eff": _mean_se(r.eta_eff[i, :, 0])}
    diffs = {}
    for label in ("final", "after_0.3_over_lam_e"):
        a, b = rows["several decays"][label], rows["last only"][label]
        diffs[label] = {k: (a[k][0] - b[k][0]) / np.hypot(a[k][1], b[k][1]) for k in ("train_acc", "test_acc", "loss", "eta_eff")}
    summary = {"model": repr(model), "eta0": eta0, "lam": lam, "lam_e_final": lam_e_final, "T1": T1, "T2": T2,
               "T_end": T_end, "n_runs": n_runs, "schedules": {k: repr(v) for k, v in schedules.items()},
               "results": rows, "difference_in_standard_errors": diffs, "wall_s": time.perf_counter() - t_start}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "last_decay.json"), summary)
    _plot(steps, runs, summary, os.path.join(out, "last_decay.png"))
    for name, row in rows.items():
        f = row["final"]
        print(f"{name:15s} final: train acc {f['train_acc'][0]:.4f} +- {f['train_acc'][1]:.4f}, test acc "
              f"{f['test_acc'][0]:.4f} +- {f['test_acc'][1]:.4f}, eta_eff {f['eta_eff'][0]:.4f} +- {f['eta_eff'][1]:.4f}")
    print("difference (several - last only) in standard errors: final " +
          ", ".join(f"{k} {v:+.2f}" for k, v in diffs["final"].items()) + "; at T2 + 0.3/lam_e: " +
          ", ".join(f"{k} {v:+.2f}" for k, v in diffs["after_0.3_over_lam_e"].items()))
    print(f"{summary['wall_s']:.1f} s")
    return summary


def _plot(steps, runs, summary, path):
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, r in runs.items():
        for ax, x, title in ((axes[0], r.eta_eff[..., 0], "eta_eff = eta/|w|^2"),
                             (axes[1], r.train_acc, "train accuracy"), (axes[2], r.test_acc, "test accuracy")):
            m, s = x.mean(axis=1), x.std(axis=1)
            ax.plot(steps, m, label=name)
            ax.fill_between(steps, m - s, m + s, alpha=0.25)
            ax.set_title(title)
            ax.set_xlabel("SGD steps")
    for ax in axes:
        for t in (summary["T1"], summary["T2"]):
            ax.axvline(t, color="gray", lw=0.6)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def checks(s):
    """The verdict rows of a summary of :func:`run`."""
    rows = []
    fin = s["difference_in_standard_errors"]["final"]
    for k, z in fin.items():
        rows.append(row(f"final {k}: 'several decays' - 'last decay only'", "0 (history forgotten)",
                        f"{z:+.2f} SE", "|dev| < 4 SE", abs(z) < 4))
    early = s["difference_in_standard_errors"]["after_0.3_over_lam_e"]
    rows.append(row("the same at T2 + 0.3/lam_e (before forgetting)", "may differ",
                    ", ".join(f"{k} {z:+.1f}" for k, z in early.items()) + " SE", "", None))
    return rows


#: per quantity, the difference between the two schedules in SEs, at the end and 0.3/lam_e after the decay
Differences = TypedDict("Differences", {"final": Dict[str, float], "after_0.3_over_lam_e": Dict[str, float]})


class Summary(TypedDict):
    """What :func:`checks` reads of :func:`run`'s summary."""

    difference_in_standard_errors: Differences


#: what this experiment declares (registered in :mod:`sdesim.app.experiments`)
EXPERIMENT = Experiment(
    'last_decay', "Only the last learning-rate decay matters, given time",
    "Two schedules with the same final learning rate end with the same accuracy, loss and eta_eff "
         "after O(1/lam_e,final) steps.",
    run, checks,
    seeds="initial weights: seed; minibatches: seed + 1 (several decays), seed + 2 (last only)",
    expected_quick_s=30,
    summary_type=Summary,
    example_summary={"difference_in_standard_errors": {
        "final": {"train_acc": 2.0, "test_acc": 0.3, "loss": 0.4, "eta_eff": -1.0},
        "after_0.3_over_lam_e": {"train_acc": -2.1, "test_acc": -1.2, "loss": 5.5, "eta_eff": 50.2}}})


def main(argv=None):
    """Command line: the same options as ``python examples/last_decay.py``."""
    return command_line(run, __doc__, "last_decay", argv)


if __name__ == "__main__":
    main()

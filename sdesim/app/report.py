"""``sdesim reproduce``: run the paper's checks end to end and write one report (HTML and Markdown).

Each experiment of :mod:`sdesim.app.experiments` runs into ``<out>/<name>/`` (its JSON, PNG and a
log of what it printed); its summary is turned into rows of *prediction against measurement*
with a verdict, by the tolerance stated in the row:

* ``pass`` / ``fail``: the measurement is / is not within the stated tolerance of the prediction;
* ``info``: reported for reading, not a pass/fail claim (e.g. a known discretisation bias);
* ``error``: the experiment raised (the traceback is in the report) or its summary lacked a key.

Then ``<out>/report.html`` (figures embedded) and ``<out>/report.md`` (figures linked), the same
content, and ``<out>/reproduce.json`` (rows, versions, seeds, timings) are written atomically.
"""

import base64
import contextlib
import datetime
import glob
import html
import importlib
import io
import math
import os
import time
import traceback
from dataclasses import dataclass

from ._io import OutputError, _atomic, probe_output_dir, probe_output_file, write_json_atomic

__all__ = ["Experiment", "EXPERIMENTS", "probe_outputs", "reproduce", "render_markdown", "render_html"]


@dataclass
class Experiment:
    """One check of the paper: ``run(quick, out, seed) -> summary`` and ``checks(summary) -> rows``."""

    name: str
    title: str
    claim: str
    run: object  # "module:function" or a callable
    checks: object  # callable(summary) -> list of row dicts (see row())
    seeds: str = ""  # how the experiment derives its seeds from the one it is given
    expected_quick_s: float = 60.0  # rough quick-mode wall time, to start the long ones first

    def runner(self):
        if callable(self.run):
            return self.run
        module, func = self.run.split(":")
        return getattr(importlib.import_module(module), func)


def row(quantity, prediction, measured, tolerance, ok):
    """A table row; ``ok`` True/False gives pass/fail, None gives info."""
    verdict = "info" if ok is None else ("pass" if ok else "fail")
    return {"quantity": quantity, "prediction": prediction, "measured": measured, "tolerance": tolerance,
            "verdict": verdict}


def _f(x, nd=3):
    """Compact number formatting for the table."""
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{nd - 1}e}"
    return f"{x:.{nd}g}"


def _within(x, target, tol):
    return x is not None and math.isfinite(x) and abs(x - target) <= tol


# ---------------------------------------------------------------- checks, one function per experiment

def checks_norm_equilibration(s):
    rows = []
    sp = s["sphere"]
    rows.append(row("sphere: slope of log t_eq vs log lam_e", "-1", _f(sp["slope"], 4), "+- 0.05",
                    _within(sp["slope"], -1.0, 0.05)))
    rows.append(row("sphere: t_eq * 4 lam_e / ln(|G0/Ginf - 1|/eps), all points", "1",
                    f"{_f(sp['prefactor_min'])} .. {_f(sp['prefactor_max'])}", "+- 0.1",
                    _within(sp["prefactor_min"], 1, 0.1) and _within(sp["prefactor_max"], 1, 0.1)))
    if "digits" in s:
        dg = s["digits"]
        rows.append(row("digits: slope of log t_eq vs log lam_e", "-1", _f(dg["slope"], 4), "+- 0.05",
                        _within(dg["slope"], -1.0, 0.05)))
        rows.append(row("digits: prefactor with measured G_inf, all points", "1",
                        f"{_f(dg['prefactor_min'])} .. {_f(dg['prefactor_max'])}", "+- 0.1",
                        _within(dg["prefactor_min"], 1, 0.1) and _within(dg["prefactor_max"], 1, 0.1)))
        lo, hi = dg["t_eq_over_constant_trace_prediction_min"], dg["t_eq_over_constant_trace_prediction_max"]
        rows.append(row("digits: t_eq / constant-trace prediction (observed trace)", "1",
                        f"{_f(lo)} .. {_f(hi)}", "+- 0.1", _within(lo, 1, 0.1) and _within(hi, 1, 0.1)))
        lo, hi = dg["G_inf_measured_over_pred_min"], dg["G_inf_measured_over_pred_max"]
        rows.append(row("digits: G_inf measured / (tau_obs / (2 lam_e))", "1 (+ EM bias, ~+8% at dt = 0.5)",
                        f"{_f(lo)} .. {_f(hi)}", "in [0.95, 1.12]", lo >= 0.95 and hi <= 1.12))
    return rows


def checks_intrinsic_lr(s):
    rows = []
    for r in s["runs"]:
        label, per = r["label"], r["lam_e"]
        lams = ", ".join(_f(x["lam_e"]) for x in per)
        spread = max(x["eta_spread"] for x in per)
        z = max(x["max_dev_vs_ref_eta_eff_se"] for x in per)
        rows.append(row(f"{label}: eta_eff(t) of (eta, lam) pairs with the same lam_e (eta x{spread:.0f}), "
                        f"max dev from the reference pair over t, lam_e in {{{lams}}}",
                        "same curve (0 SE)", f"{_f(z)} SE", "< 4 SE", z < 4))
        if all("max_dev_vs_ref_loss_se" in x for x in per):
            z = max(x["max_dev_vs_ref_loss_se"] for x in per)
            rows.append(row(f"{label}: loss L(Wbar)(t) of the pairs, max dev from the reference pair",
                            "same curve (0 SE)", f"{_f(z)} SE", "< 4 SE", z < 4))
        if r["label"] == "H = 0":
            z = max(abs(x["eta_eff_eq_dev_se"]) for x in per)
            rel = max(abs(x["eta_eff_eq_rel_dev"]) for x in per)
            rows.append(row(f"{label}: equilibrium eta_eff vs sqrt(2 lam_e / tau), worst lam_e",
                            "sqrt(2 lam_e / tau)", f"{_f(z)} SE ({100 * rel:.2f}%)", "|dev| < 4 SE", z < 4))
        else:
            z = max(abs(x["richardson_eq_dev_se"]) for x in per)
            rel = max(abs(x["richardson_eq_rel_dev"]) for x in per)
            rows.append(row(f"{label}: equilibrium eta_eff (Richardson dt -> 0) vs sqrt(2 lam_e / tau), worst lam_e",
                            "sqrt(2 lam_e / tau)", f"{_f(z)} SE ({100 * rel:.2f}%)", "|dev| < 4 SE", z < 4))
        m = max(x["same_seed_max_rel_diff"] for x in per)
        rows.append(row(f"{label}: EM covariance (eta, lam, W0) -> (c eta, lam/c, sqrt(c) W0), same seed",
                        "identical eta_eff", f"max rel diff {_f(m)}", "< 1e-9 (rounding)", m < 1e-9))
    return rows


def checks_lr_decay(s):
    rows = []
    k = s["k"]
    for name, c in s["cases"].items():
        what = f"{name.upper()} / {k:g}"
        z = c["max_dev_se_after"]
        rows.append(row(f"{what}: eta_eff(t)/eta_eff,old after the decay, max dev from theory over t",
                        "theory curve", f"{_f(z)} SE (max |dev| {_f(c['max_abs_dev_after'])})", "< 4 SE", z < 4))
        bd = c["before_decay"]
        rows.append(row(f"{what}: eta_eff/eta_eff,old at equilibrium before the decay", "1",
                        f"{_f(bd['ratio'], 5)} ({bd['dev_se']:+.2f} SE)", "|dev| < 4 SE", abs(bd["dev_se"]) < 4))
        en = c["end"]
        rows.append(row(f"{what}: end value (2/lam_e,new after the decay)", f"1/sqrt(k) = {_f(k ** -0.5, 5)}",
                        f"{_f(en['ratio'], 5)} ({en['dev_se']:+.2f} SE vs theory {_f(en['theory'], 5)})",
                        "|dev| < 4 SE", abs(en["dev_se"]) < 4))
        if name == "lr":
            ja = c["just_after"]
            rows.append(row(f"{what}: drop of eta_eff at the decay", f"x{k:g} at once",
                            f"x{_f(ja['drop_factor'], 4)}", "(covered by the curve row)", None))
    return rows


def checks_sgd_vs_sde(s):
    rows = []
    sv = s["svag"]
    gaps = [r["G_gap"] for r in sv]
    ses = [r["G_gap_se"] for r in sv]
    mono = all(abs(b) <= abs(a) + 2 * sb for a, b, sb in zip(gaps, gaps[1:], ses[1:]))
    halved = abs(gaps[-1]) < abs(gaps[0]) / 2
    rows.append(row("SVAG: gap in equilibrium G between SGD (l) and the SDE, l = " +
                    ", ".join(str(r["l"]) for r in sv), "decreasing toward 0 (~ 1/l)",
                    ", ".join(f"{g:+.2f}" for g in gaps) + f" (SE ~{_f(max(ses), 2)})",
                    "non-increasing within 2 SE per step, and |gap(l_max)| < |gap(1)|/2", mono and halved))
    last = sv[-1]
    z = last["loss_gap"] / last["loss_gap_se"]
    rows.append(row(f"SVAG l = {last['l']}: gap in equilibrium training loss vs the SDE", "0",
                    f"{last['loss_gap']:+.4f} ({z:+.2f} SE)", "|dev| < 4 SE", abs(z) < 4))
    sde, sgd = s["sde"], s["sgd"]
    rel = sde["G_mean_richardson"] / sde["G_inf_theory"] - 1
    rows.append(row("SDE: equilibrium G (Richardson) vs tau_obs / (2 lam_e)", _f(sde["G_inf_theory"], 4),
                    f"{_f(sde['G_mean_richardson'], 4)} +- {_f(sde['G_se'], 2)} ({100 * rel:+.1f}%)", "+- 5%",
                    abs(rel) <= 0.05))
    rel = sgd["G_mean"] / sgd["G_discrete_theory"] - 1
    rows.append(row("SGD: equilibrium G vs discrete fixed point eta U / (lam (2 - eta lam)) / eta^2",
                    _f(sgd["G_discrete_theory"], 4), f"{_f(sgd['G_mean'], 4)} +- {_f(sgd['G_se'], 2)} "
                    f"({100 * rel:+.1f}%)", "+- 5%", abs(rel) <= 0.05))
    rows.append(row("SDE: mean eta_eff at equilibrium vs sqrt(2 lam_e / tau_obs)", _f(sde["eta_eff_theory"], 4),
                    _f(sde["eta_eff_mean"], 4), "(E[1/|W|^2] vs 1/sqrt(E G): Jensen gap and EM bias)", None))
    return rows


def checks_fast_equilibrium(s):
    rows = []
    for name, r in s["results"].items():
        pts = r["points"]
        rows.append(row(f"{name}: exponent of the function-space mixing time vs lam_e "
                        f"({', '.join(_f(p['lam_e']) for p in pts)})", "-1", _f(r["slope"], 3), "+- 0.3",
                        _within(r["slope"], -1.0, 0.3)))
        rows.append(row(f"{name}: mixing time x lam_e", "O(1), the same for every lam_e",
                        ", ".join(_f(p["t_mix_times_lam_e"], 2) for p in pts), "(the exponent row is the check)",
                        None))
        rows.append(row(f"{name}: final D(small, large) / noise floor",
                        "~1 (same output distribution)",
                        ", ".join(_f(p["D_small_large_final"] / p["floor"], 2) for p in pts), "(one time, noisy)", None))
        rows.append(row(f"{name}: final mean |wbar_small - wbar_large| (parameters)", "stays O(1)",
                        ", ".join(_f(p["param_distance_final"], 2) for p in pts), "", None))
    return rows


def checks_last_decay(s):
    rows = []
    fin = s["difference_in_standard_errors"]["final"]
    for k, z in fin.items():
        rows.append(row(f"final {k}: 'several decays' - 'last decay only'", "0 (history forgotten)",
                        f"{z:+.2f} SE", "|dev| < 4 SE", abs(z) < 4))
    early = s["difference_in_standard_errors"]["after_0.3_over_lam_e"]
    rows.append(row("the same at T2 + 0.3/lam_e (before forgetting)", "may differ",
                    ", ".join(f"{k} {z:+.1f}" for k, z in early.items()) + " SE", "", None))
    return rows


def _exp(name, title, claim, checks, seeds, quick_s):
    return Experiment(name, title, claim, f"sdesim.app.experiments.{name}:run", checks, seeds, quick_s)


#: the paper's checks, in report order
EXPERIMENTS = {e.name: e for e in [
    _exp("norm_equilibration", "Norm equilibration in O(1/(lam eta)) steps",
         "Starting at G_0 = 10 G_inf (G = |W|^4/eta^2), the ensemble-mean G settles within eps = 5% of "
         "G_inf after t_eq = ln(|G_0/G_inf - 1|/eps) / (4 lam_e) steps: slope -1 against lam_e = eta lam, "
         "prefactor 1. Sphere model (exact) and the digits classifier (exact minibatch noise).",
         checks_norm_equilibration, "sphere: seed + i per eta; digits: initial direction seed, pilot seed + 1, "
         "points seed + i per eta", 110),
    _exp("intrinsic_lr", "The equilibrium depends on lam_e = eta lam alone",
         "For each lam_e, (eta, lam) pairs with eta spanning 100x give the same eta_eff(t) and loss curves, "
         "settling at sqrt(2 lam_e / tau); Euler-Maruyama is exactly covariant under the rescaling.",
         checks_intrinsic_lr, "seed + 1000 * model + 100 * lam_e index + pair index", 60),
    _exp("lr_decay", "Learning-rate decay vs weight-decay decay at equilibrium",
         "LR / k drops eta_eff by k at once and relaxes to 1/sqrt(k) in O(1/lam_e'); WD / k reaches the "
         "same end point smoothly (closed forms of theory.lr_decay_eta_eff_ratio / wd_decay_eta_eff_ratio).",
         checks_lr_decay, "initial directions: seed; Brownian paths: seed + 1", 30),
    _exp("sgd_vs_sde", "Discrete SGD against its SDE; SVAG closes the gap",
         "SGD and the SDE on digits reach their predicted equilibria (tau/(2 lam_e) for the SDE, the discrete "
         "fixed point for SGD); SVAG with l = 1, 2, 4, 8 walks SGD toward the SDE.",
         checks_sgd_vs_sde, "initial direction and SDE paths: seed; SGD/SVAG minibatches: seed + 1", 60),
    _exp("fast_equilibrium", "Fast equilibrium: function space mixes in O(1/lam_e)",
         "Ensembles started from norms 30x too small or too large (or with a warm-up schedule) reach the "
         "same distribution of outputs after O(1/lam_e) steps, while their parameters stay apart.",
         checks_fast_equilibrium, "directions: seed (twin: seed + 1000); minibatches: small seed, large "
         "seed + 1, warm seed + 2, twin seed + 1000", 120),
    _exp("last_decay", "Only the last learning-rate decay matters, given time",
         "Two schedules with the same final learning rate end with the same accuracy, loss and eta_eff "
         "after O(1/lam_e,final) steps.", checks_last_decay,
         "initial weights: seed; minibatches: seed + 1 (several decays), seed + 2 (last only)", 30),
]}


# ---------------------------------------------------------------- running

def _run_one(exp, quick, out, seed):
    """Run one experiment into ``out/<name>``: ``(summary or None, (wall_s, cpu_s), error or None)``.
    What it prints goes to ``out/<name>/log.txt``."""
    folder = os.path.join(out, exp.name)
    os.makedirs(folder, exist_ok=True)
    log = io.StringIO()
    t0, c0 = time.perf_counter(), time.process_time()
    summary = err = None
    try:
        with contextlib.redirect_stdout(log):
            summary = exp.runner()(quick=quick, out=folder, seed=seed)
    except Exception:
        err = traceback.format_exc()
    wall = (time.perf_counter() - t0, time.process_time() - c0)
    _atomic(os.path.join(folder, "log.txt"), lambda f: f.write(log.getvalue().encode()))
    return summary, wall, err


def _run_one_by_name(name, quick, out, seed):  # for worker processes: look the experiment up there
    return _run_one(EXPERIMENTS[name], quick, out, seed)


def _ignore_sigint():
    """Worker initializer: Ctrl-C goes to the whole process group; the parent alone handles it
    (and terminates the workers), so that no worker prints a traceback."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _terminate(pool):
    """Stop a ProcessPoolExecutor now: cancel what has not started, terminate the workers."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


#: what a write interrupted by a killed worker can leave behind (see sdesim.app._io, experiments._common)
_TEMP_PATTERNS = (".tmp-*", "*.tmp.png")


def _remove_temp_files(folders):
    for folder in folders:
        for pattern in _TEMP_PATTERNS:
            for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
                with contextlib.suppress(OSError):
                    os.remove(path)


def probe_outputs(out, names):
    """Check, before running anything, that ``out``, ``out/<name>`` and the report files can be
    written; raises :class:`sdesim.app._io.OutputError`."""
    probe_output_dir(out, "output folder")
    for n in names:
        folder = os.path.join(out, n)
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise OutputError(f"experiment folder {folder!r} is a file, not a folder")
        if os.path.isdir(folder):
            probe_output_dir(folder, "experiment folder")
    for f in ("report.md", "report.html", "reproduce.json"):
        probe_output_file(os.path.join(out, f), "report file")


def _run_in_processes(names, quick, out, seed, jobs, results, bar):
    """The built-in experiments ``names`` in ``jobs`` spawned processes, longest first, into
    ``results``. On an interrupt (or any error here) the workers are terminated and what their
    interrupted writes left is removed."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    order = sorted(names, key=lambda n: -EXPERIMENTS[n].expected_quick_s)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    try:
        futs = {pool.submit(_run_one_by_name, n, quick, out, seed): n for n in order}
        for f in as_completed(futs):
            n = futs[f]
            try:
                results[n] = f.result()
            except Exception:  # the worker process died
                results[n] = (None, (float("nan"), float("nan")), traceback.format_exc())
            bar.set_postfix_str(f"{n} done")
            bar.update()
    except BaseException:
        _terminate(pool)
        _remove_temp_files([os.path.join(out, n) for n in names if n not in results])
        raise
    pool.shutdown(wait=True)


def _rows_for(exp, summary, err):
    if err is not None:
        return [dict(row("experiment ran", "completes", err.strip().splitlines()[-1], "", False), verdict="error")]
    try:
        return exp.checks(summary)
    except Exception as exc:
        return [dict(row("summary read", "all keys present", f"{type(exc).__name__}: {exc}", "", False),
                     verdict="error")]


def reproduce(out="results", quick=False, seed=0, only=None, jobs=1, progress=True, experiments=None):
    """Run the experiments, write the report; returns the report dict (also ``reproduce.json``).

    ``only``: names to run (default all of ``experiments``, which defaults to :data:`EXPERIMENTS`);
    ``jobs``: experiments run side by side in that many processes (each still uses all cores in its
    compiled loops; compilation, single-threaded, overlaps).
    """
    from tqdm.auto import tqdm
    from .simulate import versions

    experiments = EXPERIMENTS if experiments is None else experiments
    names = list(experiments) if not only else list(only)
    for n in names:
        if n not in experiments:
            raise KeyError(n)
    if jobs > 1 and len(names) > 1 and experiments is not EXPERIMENTS:
        raise ValueError("jobs > 1 runs the built-in experiments only")
    probe_outputs(out, names)
    t0 = time.perf_counter()
    results = {}
    bar = tqdm(total=len(names), desc="reproduce", unit="experiment", disable=not progress)
    try:
        if jobs <= 1 or len(names) == 1:
            for n in names:
                bar.set_postfix_str(n)
                try:
                    results[n] = _run_one(experiments[n], quick, out, seed)
                except BaseException:  # an interrupt (_run_one turns exceptions into an error row)
                    _remove_temp_files([os.path.join(out, n)])
                    raise
                bar.update()
        else:
            _run_in_processes(names, quick, out, seed, min(jobs, len(names)), results, bar)
    finally:
        bar.close()

    sections = []
    all_rows = []
    for n in names:
        exp = experiments[n]
        summary, (wall, cpu), err = results[n]
        rows = _rows_for(exp, summary, err)
        for r in rows:
            all_rows.append({"experiment": n, **r})
        figures = sorted(glob.glob(os.path.join(out, n, "*.png")))
        sections.append({"name": n, "title": exp.title, "claim": exp.claim, "wall_s": wall, "cpu_s": cpu, "error": err,
                         "seeds": exp.seeds, "figures": [os.path.relpath(p, out) for p in figures],
                         "files": sorted(os.path.relpath(p, out) for p in glob.glob(os.path.join(out, n, "*")))})
    counts = {v: sum(r["verdict"] == v for r in all_rows) for v in ("pass", "fail", "info", "error")}
    report = {"title": "sdesim reproduce: SGD + weight decay on scale-invariant models (Li, Lyu & Arora 2020)",
              "mode": "quick" if quick else "full", "seed": seed, "jobs": jobs,
              "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": f"sdesim reproduce{' --quick' if quick else ''} --out {out} --seed {seed}"
                         + (f" --only {','.join(names)}" if only else "") + (f" --jobs {jobs}" if jobs > 1 else ""),
              "wall_s": time.perf_counter() - t0, "cpu_count": os.cpu_count(),
              "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None, "counts": counts, "rows": all_rows, "sections": sections,
              "versions": versions()}
    md = render_markdown(report)
    page = render_html(report, out)
    _atomic(os.path.join(out, "report.md"), lambda f: f.write(md.encode()))
    _atomic(os.path.join(out, "report.html"), lambda f: f.write(page.encode()))
    write_json_atomic(os.path.join(out, "reproduce.json"), report)
    return report


# ---------------------------------------------------------------- rendering

TABLE_COLUMNS = ("experiment", "quantity", "prediction", "measured", "tolerance", "verdict")


def verdict_table_text(report):
    """The verdict table as plain text (what the CLI prints)."""
    rows = [TABLE_COLUMNS] + [tuple(str(r[c]) for c in TABLE_COLUMNS) for r in report["rows"]]
    limits = (18, 70, 24, 40, 30, 7)
    rows = [tuple(c if len(c) <= w else c[:w - 3] + "..." for c, w in zip(r, limits)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md_cell(x):
    return str(x).replace("|", "\\|").replace("\n", " ")


def _summary_line(report):
    c = report["counts"]
    line = (f"{c['pass']} pass, {c['fail']} fail, {c['error']} error, {c['info']} for information; "
            f"{report['mode']} mode, seed {report['seed']}, {report['wall_s']:.0f} s in all")
    load = report.get("load_average_at_end")
    if load:
        line += f" ({report.get('cpu_count')} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end)"
    return line + "."


def render_markdown(report):
    L = [f"# {report['title']}", "",
         f"Command: `{report['command']}` ({report['date']}).", "", _summary_line(report), "",
         "## Verdicts", "",
         "Each row: a prediction of the paper (or of its closed forms), what was measured, the tolerance "
         "used and the verdict (`info`: shown for reading, not a pass/fail claim).", "",
         "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for r in report["rows"]:
        cells = [_md_cell(r[c]) for c in TABLE_COLUMNS]
        cells[-1] = f"**{cells[-1]}**" if r["verdict"] in ("fail", "error") else cells[-1]
        L.append("| " + " | ".join(cells) + " |")
    L += ["", "## Experiments", ""]
    for s in report["sections"]:
        L += [f"### {s['title']} (`{s['name']}`)", "", s["claim"], "",
              f"Wall time {s['wall_s']:.1f} s (CPU {s['cpu_s']:.1f} s). Files: " + ", ".join(f"[{f}]({f})" for f in s["files"]) + ".", ""]
        if s["error"]:
            L += ["It raised:", "", "```", s["error"].rstrip(), "```", ""]
        for fig in s["figures"]:
            L += [f"![{s['name']}: {os.path.basename(fig)}]({fig})", ""]
    L += ["## Seeds", "", f"Every experiment gets seed {report['seed']} (`--seed`) and derives its own from it:", "",
          "| experiment | seed given | derived seeds |", "|---|---|---|"]
    for s in report["sections"]:
        L.append(f"| {s['name']} | {report['seed']} | {_md_cell(s['seeds'])} |")
    L += ["", "## Versions", "", "| package | version |", "|---|---|"]
    for k, v in report["versions"].items():
        L.append(f"| {k} | {_md_cell(v if v is not None else '-')} |")
    L.append("")
    return "\n".join(L)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.pass{background:#e6f4e6}.fail,.error{background:#fbe3e3;
font-weight:bold}.info{background:#eef2f8}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
pre{background:#f6f6f6;padding:0.7em;overflow-x:auto}code{background:#f6f6f6}"""


def _img_tag(out, rel, alt):
    try:
        with open(os.path.join(out, rel), "rb") as f:
            data = base64.b64encode(f.read()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
    except OSError:
        return f'<a href="{html.escape(rel)}">{html.escape(rel)}</a>'


def render_html(report, out):
    e = html.escape
    H = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(report['title'])}</title>",
         f"<style>{_CSS}</style></head><body>", f"<h1>{e(report['title'])}</h1>",
         f"<p>Command: <code>{e(report['command'])}</code> ({e(report['date'])}).</p>",
         f"<p>{e(_summary_line(report))}</p>", "<h2>Verdicts</h2>",
         "<p>Each row: a prediction of the paper (or of its closed forms), what was measured, the tolerance used "
         "and the verdict (<em>info</em>: shown for reading, not a pass/fail claim).</p>",
         "<table><tr>" + "".join(f"<th>{c}</th>" for c in TABLE_COLUMNS) + "</tr>"]
    for r in report["rows"]:
        H.append(f'<tr class="{e(r["verdict"])}">' + "".join(f"<td>{e(str(r[c]))}</td>" for c in TABLE_COLUMNS)
                 + "</tr>")
    H += ["</table>", "<h2>Experiments</h2>"]
    for s in report["sections"]:
        H += [f"<h3>{e(s['title'])} (<code>{e(s['name'])}</code>)</h3>", f"<p>{e(s['claim'])}</p>",
              f"<p>Wall time {s['wall_s']:.1f} s (CPU {s['cpu_s']:.1f} s). Files: "
              + ", ".join(f'<a href="{e(f)}">{e(f)}</a>' for f in s["files"]) + ".</p>"]
        if s["error"]:
            H.append(f"<p>It raised:</p><pre>{e(s['error'])}</pre>")
        for fig in s["figures"]:
            H.append(_img_tag(out, fig, f"{s['name']}: {os.path.basename(fig)}"))
    H += ["<h2>Seeds</h2>", f"<p>Every experiment gets seed {report['seed']} (<code>--seed</code>) and derives its "
          "own from it:</p>", "<table><tr><th>experiment</th><th>seed given</th><th>derived seeds</th></tr>"]
    for s in report["sections"]:
        H.append(f"<tr><td>{e(s['name'])}</td><td>{report['seed']}</td><td>{e(s['seeds'])}</td></tr>")
    H += ["</table>", "<h2>Versions</h2>", "<table><tr><th>package</th><th>version</th></tr>"]
    for k, v in report["versions"].items():
        H.append(f"<tr><td>{e(k)}</td><td>{e(str(v) if v is not None else '-')}</td></tr>")
    H += ["</table>", "</body></html>", ""]
    return "\n".join(H)

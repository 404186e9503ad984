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
import io
import os
import time
import traceback

from ._io import OutputError, _atomic, probe_output_dir, probe_output_file, write_json_atomic
from .experiments import EXPERIMENTS
from .experiments.experiment import Experiment, row, summary_problems

__all__ = ["Experiment", "EXPERIMENTS", "probe_outputs", "reproduce", "render_markdown", "render_html"]


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
    problems = summary_problems(summary, exp.summary_type) if exp.summary_type is not None else []
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return [dict(row("summary read", f"a {exp.summary_type.__name__}", problems[0] + more, "", False),
                     verdict="error")]
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

"""The CLI under user mistakes and interrupts: every failure a user can cause is one line on stderr
and exit status 2 (never a traceback), outputs are checked before any computing, Ctrl-C gives exit
130 with no partial file and no leftover process, and a fuzz of the TOML loader never escapes."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdesim
import sdesim.app.simulate
from sdesim.app import report
from sdesim.app.cli import main
from sdesim.app.config import MODEL_KEYS, SIM_KEYS, ConfigError, check_simulation, check_sweep, load_toml

TOP = {"lr": "0.1", "wd": "0.01", "dt": "0.5", "paths": "2", "save_times": "[0.0, 1.0]",
       "output": '"out/run.npz"'}
SPHERE = 'name = "sphere"\nd = 3'


def _text(top=None, model=SPHERE, tables=""):
    """A small valid config, with top-level values ``top`` (TOML text by key) replaced or added."""
    kv = {**TOP, **(top or {})}
    return "".join(f"{k} = {v}\n" for k, v in kv.items()) + f"[model]\n{model}\n{tables}\n"


def _config(tmp_path, out="out/run.npz", name="run.toml", **kw):
    path = tmp_path / name
    path.write_text(_text({"output": json.dumps(out)}, **kw))
    return str(path)


def _run(argv, capsys):
    """``main(argv)`` -> (status, stdout, stderr); SystemExit (argparse) gives its code."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0], err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.fixture
def no_compute(monkeypatch):
    """``sdesim.app.simulate.run_point`` replaced: records that it ran, computes nothing."""
    calls = []

    def fake(spec):
        calls.append(spec)
        return {"ts": np.zeros(2)}, {"hash": "0" * 16, "spec": spec, "wall_s": 0.0}
    monkeypatch.setattr(sdesim.app.simulate, "run_point", fake)
    monkeypatch.setattr(sdesim.app.simulate, "versions", lambda: {})
    return calls


# ------------------------------------------------------------------ the command line itself

def test_version(capsys):
    rc, out, _ = _run(["--version"], capsys)
    assert rc == 0 and out.strip() == f"sdesim {sdesim.__version__}"


@pytest.mark.parametrize("argv,words", [
    (["simulate"], ["sdesim simulate: error:", "config"]),
    (["reproduce", "--seed", "x"], ["--seed", "'x'"]),
    (["nosuch"], ["sdesim: error:", "nosuch"]),
])
def test_argument_errors_are_one_line(capsys, argv, words):
    rc, _, err = _run(argv, capsys)
    assert rc == 2
    _one_line_error(err, *words)


# ------------------------------------------------------------------ reading the config

@pytest.mark.parametrize("command", ["simulate", "sweep"])
@pytest.mark.parametrize("content,words", [
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", ["CONFIG", "nested"]),                  # RecursionError
    ("lr = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", ["CONFIG", "nested"]),
    (b"lr = 0.1\n\xff\xfe = 1\n", ["CONFIG", "UTF-8"]),                                # UnicodeDecodeError
    ("lr = " + "9" * 5000 + "\n", ["CONFIG", "valid TOML"]),                            # int > 4300 digits
])
def test_unreadable_toml_is_one_line(tmp_path, capsys, command, content, words):
    path = tmp_path / "c.toml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    rc, _, err = _run([command, str(path), *(["--no-progress"] if command == "sweep" else [])], capsys)
    assert rc == 2
    _one_line_error(err, *words)


def _symlink_loop(tmp_path):
    os.symlink(tmp_path / "b.toml", tmp_path / "a.toml")
    os.symlink(tmp_path / "a.toml", tmp_path / "b.toml")
    return str(tmp_path / "a.toml")


@pytest.mark.parametrize("where,words", [
    (lambda p: str(p), ["expected an existing TOML file"]),                  # a folder
    (lambda p: str(p / "missing.toml"), ["expected an existing TOML file"]),
    (_symlink_loop, ["expected an existing TOML file"]),
    (lambda p: "/proc/self/mem", ["expected a readable file"]),                # read fails (EIO), even as root
])
def test_config_path_that_is_no_file(tmp_path, capsys, where, words):
    path = where(tmp_path)
    if path.startswith("/proc") and not os.path.isfile(path):
        pytest.skip("no /proc/self/mem")
    rc, _, err = _run(["simulate", path], capsys)
    assert rc == 2
    _one_line_error(err, "CONFIG", *words)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_config(tmp_path, capsys):
    path = _config(tmp_path)
    os.chmod(path, 0)
    rc, _, err = _run(["simulate", path], capsys)
    assert rc == 2
    _one_line_error(err, "CONFIG", "readable")


BAD_VALUES = [  # (top-level values, model table, other tables, key the message must name)
    ({}, "name = [1]", "", "model.name"),                                    # unhashable: TypeError before
    ({}, "name = {a = 1}", "", "model.name"),
    ({"seed": str(2**64)}, SPHERE, "", "seed"),
    ({"paths": str(2**32), "store": "'mean'"}, SPHERE, "", "paths"),
    ({}, SPHERE, "[init]\nseed = " + str(10**40), "init.seed"),
    ({"dt": "1" + "0" * 400}, SPHERE, "", "dt"),                             # beyond floats: OverflowError before
    ({"lr": "{values = [0.1, 0.2], times = [1" + "0" * 400 + "]}"}, SPHERE, "", "lr.times"),
    ({"save_times": "{stop = 10.0, num = 1000000000000000}", "store": "'mean'"}, SPHERE, "", "save_times.num"),
    ({"store": "'mean'"}, "name = 'sphere'\nd = 1000000000000", "", "save_times"),  # MemoryError before
    ({}, "name = 'sphere'\nd = " + str(10**70), "", "model.d"),
    ({}, "name = 'mixture'\nn = " + str(10**70), "", "model.n"),
    ({"output": '"out/\\u0000.npz"'}, SPHERE, "", "output"),
    ({'"a\\nb"': "1"}, SPHERE, "", '"a\\nb"'),                           # a key with a newline: still one line
    pytest.param({}, SPHERE, "[init]\nfile = '/proc/self/mem'", "init.file",  # a read error (EIO), even as root
                 marks=pytest.mark.skipif(not os.path.isfile("/proc/self/mem"), reason="no /proc/self/mem")),
]


@pytest.mark.parametrize("top,model,tables,key", BAD_VALUES)
def test_bad_values_exit_2_before_computing(tmp_path, capsys, no_compute, top, model, tables, key):
    path = tmp_path / "bad.toml"
    path.write_text(_text(top, model, tables))
    rc, _, err = _run(["simulate", str(path)], capsys)
    assert rc == 2, err
    _one_line_error(err, f" {key}: ")
    assert not no_compute
    assert not (tmp_path / "out").exists()


def test_sweep_grid_too_large_is_refused():
    cfg = {"lr": [0.1] * 1000, "wd": [0.01] * 1000, "seed": list(range(1001)), "dt": 0.5,
           "save_times": [0.0, 1.0], "model": {"name": "sphere"}}
    with pytest.raises(ConfigError, match="lr, wd, seed: expected a grid of at most"):
        check_sweep(cfg)


# ------------------------------------------------------------------ outputs: checked before computing

@pytest.mark.parametrize("setup,out,words", [
    (lambda p: (p / "taken.npz").mkdir(), "taken.npz", ["output", "is a folder"]),
    (lambda p: (p / "taken.json").mkdir(), "taken.npz", ["output (its .json)", "is a folder"]),
    (lambda p: (p / "file").write_text("x"), "file/run.npz", ["is a file, not a folder"]),
    (lambda p: (p / "file").write_text("x"), "file/sub/run.npz", ["cannot write", "file/sub"]),
])
def test_unwritable_output_is_found_before_computing(tmp_path, capsys, no_compute, setup, out, words):
    setup(tmp_path)
    rc, _, err = _run(["simulate", _config(tmp_path, out=out)], capsys)
    assert rc == 2
    _one_line_error(err, *words)
    assert not no_compute


@pytest.mark.parametrize("config_name,out", [("run.npz", "run.npz"), ("run.json", "run.npz")])
def test_output_never_overwrites_the_config(tmp_path, capsys, no_compute, config_name, out):
    path = _config(tmp_path, out=out, name=config_name)
    before = open(path).read()
    rc, _, err = _run(["simulate", path], capsys)
    assert rc == 2
    _one_line_error(err, "output", "other than the config file")
    assert not no_compute and open(path).read() == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_output_in_a_read_only_folder(tmp_path, capsys, no_compute):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc, _, err = _run(["simulate", _config(tmp_path, out="ro/run.npz")], capsys)
    finally:
        ro.chmod(0o700)
    assert rc == 2
    _one_line_error(err, "cannot write")
    assert not no_compute


def test_failed_run_leaves_no_folder_and_no_half_result(tmp_path, capsys, monkeypatch):
    """The folders made for the output go again on failure; an .npz whose .json could not be
    written goes too (a result is both or nothing)."""
    def refuse(spec):
        raise ValueError("the grid needs too many cells")
    monkeypatch.setattr(sdesim.app.simulate, "run_point", refuse)
    rc, _, err = _run(["simulate", _config(tmp_path, out="a/b/run.npz")], capsys)
    assert rc == 2 and "too many cells" in err
    assert not (tmp_path / "a").exists()

    monkeypatch.setattr(sdesim.app.simulate, "run_point", lambda spec: ({"ts": np.zeros(2)}, {"hash": "0"}))
    monkeypatch.setattr(sdesim.app.simulate, "versions", lambda: {})

    def disk_full(path, obj):
        raise OSError(28, "No space left on device", path)
    monkeypatch.setattr(sdesim.app.simulate, "write_json_atomic", disk_full)
    rc, _, err = _run(["simulate", _config(tmp_path, out="c/run.npz")], capsys)
    assert rc == 1
    _one_line_error(err, "No space left on device")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("exc", [MemoryError(), OverflowError("Python int too large to convert to C long")])
def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch, exc):
    def big(spec):
        raise exc
    monkeypatch.setattr(sdesim.app.simulate, "run_point", big)
    rc, _, err = _run(["simulate", _config(tmp_path)], capsys)
    assert rc == 2
    _one_line_error(err, "memory", "paths")


def test_demo_and_bench_check_out_first(tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr("sdesim.app.cli.demo", lambda out=None: ran.append(out))
    monkeypatch.setattr("runpy.run_path", lambda *a, **k: ran.append(a))
    (tmp_path / "file").write_text("x")
    for argv in (["demo", "--out", str(tmp_path)], ["demo", "--out", str(tmp_path / "file" / "d.json")],
                 ["bench", "--quick", "--out", str(tmp_path / "file" / "b.json")]):
        rc, _, err = _run(argv, capsys)
        if argv[0] == "bench" and "source checkout" in err:
            continue
        assert rc == 2
        _one_line_error(err, "--out")
    assert not ran


# ------------------------------------------------------------------ reproduce: --only, --seed, --out

def _fake(name, calls, fail=None):
    def run(quick=False, out=".", seed=0):
        calls.append((name, seed))
        if fail:
            fail(out)
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump({"value": 1.0}, f)
        return {"value": 1.0}
    return report.Experiment(name, name.title(), "claims 1", run,
                             lambda s: [report.row("value", "1", str(s["value"]), "", True)], "seed")


@pytest.fixture
def fakes(monkeypatch):
    calls = []
    monkeypatch.setattr(report, "EXPERIMENTS", {n: _fake(n, calls) for n in ("alpha", "beta")})
    return calls


@pytest.mark.parametrize("args,words", [
    (["--only", ""], ["--only", "expected comma-separated names"]),
    (["--only", " , "], ["--only"]),
    (["--seed", "-1"], ["--seed", "[0, 2**32)"]),
    (["--seed", str(2**32)], ["--seed"]),
    (["--jobs", "0"], ["--jobs"]),
])
def test_reproduce_arguments_checked_at_the_cli(tmp_path, capsys, fakes, args, words):
    rc, _, err = _run(["reproduce", "--out", str(tmp_path / "r"), "--no-progress", *args], capsys)
    assert rc == 2
    _one_line_error(err, *words)
    assert not fakes and not (tmp_path / "r").exists()


def test_reproduce_only_runs_each_name_once(tmp_path, capsys, fakes):
    rc, _, _ = _run(["reproduce", "--out", str(tmp_path / "r"), "--no-progress", "--only", "alpha,alpha,"], capsys)
    assert rc == 0 and fakes == [("alpha", 0)]


@pytest.mark.parametrize("setup,words", [
    (lambda r: r.write_text("x"), ["--out", "is a file"]),
    (lambda r: (r.mkdir(), (r / "beta").write_text("x")), ["experiment folder", "beta"]),
    (lambda r: (r.mkdir(), (r / "report.html").mkdir()), ["report.html", "is a folder"]),
])
def test_reproduce_out_checked_before_any_experiment(tmp_path, capsys, fakes, setup, words):
    out = tmp_path / "r"
    setup(out)
    rc, _, err = _run(["reproduce", "--out", str(out), "--no-progress"], capsys)
    assert rc == 2
    _one_line_error(err, *words)
    assert not fakes


# ------------------------------------------------------------------ sweep: every failure it can report

@pytest.mark.parametrize("exc,status", [
    (ConfigError("lr", "a positive number", -1.0), 2),
    (ValueError("--scheduler: expected an address such as tcp://host:8786, got 'tcp//x'"), 2),
    (ConnectionError("--scheduler: could not connect to 'tcp://10.0.0.5:8786'"), 2),
    (TimeoutError("--scheduler: no answer from 'tcp://10.0.0.5:8786' in 30 s"), 2),
    (sdesim.app._io.OutputError("cannot write to results folder 'res': Permission denied"), 2),
    (ImportError("sdesim sweep needs dask.distributed"), 2),
    (MemoryError(), 2),
    (KeyboardInterrupt(), 130),
])
def test_sweep_failures_are_one_line(tmp_path, capsys, monkeypatch, exc, status):
    sweep = pytest.importorskip("sdesim.app.sweep")

    def fail(*a, **k):
        raise exc
    monkeypatch.setattr(sweep, "sweep_config", fail)
    rc, _, err = _run(["sweep", str(tmp_path / "s.toml"), "--no-progress"], capsys)
    assert rc == status
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert (str(exc).splitlines()[0] if str(exc) else "interrupted" if status == 130 else "memory") in lines[0]


# ------------------------------------------------------------------ interrupts

@pytest.mark.parametrize("argv,target", [
    (["demo", "--out", "{tmp}/d.json"], "sdesim.app.cli.demo"),
    (["bench", "--quick", "--out", "{tmp}/b.json"], "runpy.run_path"),
])
def test_demo_and_bench_interrupted_exit_130(tmp_path, capsys, monkeypatch, argv, target):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(target, interrupted)
    rc, _, err = _run([a.format(tmp=tmp_path) for a in argv], capsys)
    if "source checkout" in err:
        pytest.skip("no benchmarks/ here")
    assert rc == 130 and err.strip() == f"sdesim {argv[0]}: interrupted"


def test_reproduce_interrupted_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    """Ctrl-C while an experiment writes its figure: exit 130, no report, no temporary file."""
    pytest.importorskip("matplotlib")
    from sdesim.app.experiments._common import save_figure

    from matplotlib.figure import Figure

    def half_written(path, dpi=None):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    calls = []

    def interrupted(out):
        fig = Figure()
        fig.savefig = half_written
        save_figure(fig, os.path.join(out, "fig.png"))
    monkeypatch.setattr(report, "EXPERIMENTS", {"alpha": _fake("alpha", calls),
                                                "beta": _fake("beta", calls, fail=interrupted)})
    out = tmp_path / "r"
    rc, _, err = _run(["reproduce", "--out", str(out), "--no-progress"], capsys)
    assert rc == 130 and err.strip() == "sdesim reproduce: interrupted"
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["alpha/log.txt", "alpha/summary.json"], files  # the finished experiment only


def _descendants(pid):
    """Pids of the processes below ``pid`` (Linux /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _interrupt(cmd, ready, settle, cwd, timeout=60, group=False):
    """Start ``cmd``, wait until ``ready()`` (then ``settle`` s more), send SIGINT to it alone (or,
    like Ctrl-C in a terminal, to its whole process group);
    -> (returncode, stderr, latency_s, descendants seen before the signal)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready(proc) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"ended before the interrupt: {proc.stderr.read()}"
        time.sleep(settle)
        kids = _descendants(proc.pid)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT) if group else proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err, time.monotonic() - t0, kids
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_simulate_sigint_exits_130_with_no_output(tmp_path):
    """A real ``python -m sdesim simulate`` (a minute of work) interrupted once it computes."""
    cfg = tmp_path / "long.toml"
    cfg.write_text(_text({"paths": "400", "save_times": "{stop = 2000000.0, num = 3}", "store": "'mean'",
                          "output": '"res/run.npz"'}))
    # the output folder is made by the output check, just before the model is built and compiled
    rc, err, latency, _ = _interrupt([sys.executable, "-m", "sdesim", "simulate", str(cfg)],
                                     lambda p: (tmp_path / "res").is_dir(), 8.0, tmp_path)
    print(f"simulate: SIGINT -> exit in {latency:.2f} s")
    assert rc == 130, err
    assert err.strip() == "sdesim simulate: interrupted", err
    left = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.name != "long.toml"]
    assert not left, left


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_reproduce_jobs_sigint_terminates_the_workers(tmp_path):
    """``reproduce --jobs 2`` interrupted while both workers run: exit 130 at once (not when the
    experiments end), no worker left, no report, no temporary file."""
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "sdesim", "reproduce", "--quick", "--jobs", "2", "--only",
           "lr_decay,last_decay", "--out", str(out), "--no-progress"]
    def workers(p):
        return [k for k in _descendants(p.pid) if "spawn_main" in _cmdline(k)]
    rc, err, latency, kids = _interrupt(cmd, lambda p: len(workers(p)) >= 2, 4.0, tmp_path, timeout=30)
    print(f"reproduce --jobs 2: SIGINT -> exit in {latency:.2f} s; {len(kids)} child processes")
    assert rc == 130, err
    assert err.strip() == "sdesim reproduce: interrupted", err
    assert latency < 20
    assert len(kids) >= 2 and _all_gone(kids)
    files = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]
    assert not [f for f in files if f.startswith("report") or f == "reproduce.json" or ".tmp" in f], files


def _all_gone(pids, wait=5.0):
    deadline = time.monotonic() + wait  # (multiprocessing's resource tracker ends once it sees its parent gone)
    while [k for k in pids if _alive(k)] and time.monotonic() < deadline:
        time.sleep(0.05)
    return not [(k, _cmdline(k)) for k in pids if _alive(k)]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_sweep_ctrl_c_exits_130_and_stops_its_cluster(tmp_path):
    """``sdesim sweep`` on its own local cluster, Ctrl-C (the whole process group) while the
    workers compute: exit 130, one line, no worker left, no result or temporary file."""
    pytest.importorskip("distributed")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(_text({"lr": "[0.1, 0.2]", "paths": "400", "save_times": "{stop = 2000000.0, num = 3}",
                          "store": "'mean'"}, tables="[sweep]\nresults = 'res'\nworkers = 2").replace(
                              'output = "out/run.npz"\n', ""))
    rc, err, latency, kids = _interrupt([sys.executable, "-m", "sdesim", "sweep", str(cfg), "--no-progress"],
                                        lambda p: (tmp_path / "res" / "sweep.json").is_file(), 4.0, tmp_path,
                                        group=True)
    print(f"sweep: Ctrl-C -> exit in {latency:.2f} s; {len(kids)} child processes")
    assert rc == 130, err
    # (Dask may warn first, e.g. that its dashboard's port is taken)
    assert err.strip().splitlines()[-1] == "sdesim sweep: interrupted" and "Traceback" not in err, err
    assert len(kids) >= 2 and _all_gone(kids)
    assert sorted(os.listdir(tmp_path / "res")) == ["sweep.json"]


# ------------------------------------------------------------------ fuzz of the TOML loader

SCHEMA_KEYS = ["model", "lr", "wd", "form", "project", "method", "dt", "paths", "seed", "save_times", "store",
               "threads", "output", "init", "sweep", "name", "d", "s", "h_diag", "batch_size", "replace", "scale",
               "n", "dim", "n_classes", "data", "hidden", "values", "times", "start", "stop", "num", "norm",
               "file", "results", "workers"]
# no "/" or "\\" in random strings: a random output or results path stays in the test's folder
TEXT = st.text(st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)), max_size=6)
KEYS = st.one_of(st.sampled_from(SCHEMA_KEYS), TEXT)
SCALARS = st.one_of(
    st.integers(-3, 300), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**32, 2**63, 2**64, 10**400, -10**400]),  # past int64 and the floats
    st.just(20000).map(lambda n: 7 << n),  # past 4300 digits (written in hex)
    st.booleans(), TEXT, st.dates(), st.datetimes(),
    st.sampled_from(["sphere", "digits", "mixture", "mlp", "full", "polar", "euler", "milstein", "paths",
                     "mean", "out/x.npz", "x.csv", "", "w0.npy"]))
VALUES = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(KEYS, c, max_size=4)),
                      max_leaves=10)
SAFE_OUT = st.sampled_from(["out/x.npz", "x.npz", "out/", "x.csv", "", "out\x00.npz", "{tmp}/abs.npz"])
ACTIONS = st.sampled_from(["keep"] * 5 + ["drop", "set"])


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == -float("inf") else repr(v))
    if isinstance(v, int):
        return hex(v) if v > 10**4000 else str(v)  # (str() refuses more than 4300 digits)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return v.isoformat()  # date, datetime


BASE = {"lr": 0.1, "wd": 0.01, "dt": 0.5, "paths": 2, "save_times": [0.0, 1.0],
        "model": {"name": "sphere", "d": 3}}


@st.composite
def configs(draw):
    """TOML text: a valid config with random keys replaced, removed or added (model table too), or
    random text, or deep nesting."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "text", "deep"]))
    if kind == "text":
        return draw(st.one_of(st.text(max_size=60), st.binary(max_size=60)))
    if kind == "deep":
        n = draw(st.integers(0, 2500))
        a, b = draw(st.sampled_from([("[", "]"), ("{a = ", "}"), ("[{b = ", "}]")]))
        head = draw(st.sampled_from(["lr", "model", "a", "paths"]))
        return f"{head} = {a * n}1{b * n}\n" if a != "[" else f"{head} = {a * n}{b * n}\n"
    cfg = json.loads(json.dumps(BASE))
    name = cfg["model"]["name"] = draw(st.sampled_from(sorted(MODEL_KEYS)))
    for table, keys in ((cfg, SIM_KEYS), (cfg["model"], ("name",) + tuple(MODEL_KEYS[name]))):
        for k in keys:  # each key of the schema kept, dropped, or given a random value
            action = draw(ACTIONS)
            if action == "drop":
                table.pop(k, None)
            elif action == "set":
                table[k] = draw(VALUES)
        for k in draw(st.lists(KEYS, max_size=2)):  # and a few keys from anywhere
            table[k] = draw(VALUES)
    if draw(st.booleans()):
        cfg["output"] = draw(st.one_of(SAFE_OUT, SCALARS))
    if draw(st.booleans()):
        cfg["sweep"] = {"results": draw(st.one_of(SAFE_OUT, SCALARS)), "workers": draw(SCALARS)}
    for k in ("lr", "wd", "seed", "model"):  # grids, for the sweep checker
        if draw(st.integers(0, 5)) == 0:
            cfg[k] = [cfg.get(k, 0), draw(VALUES)]
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in cfg.items()]
    return "\n".join(lines) + "\n"


def _fake_sweep(points, results, **kw):
    return {"total": len(points), "skipped": 0, "ran": 0, "ok": 0, "failed": 0, "wall_s": 0.0}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(text=configs())
def test_fuzz_toml_never_escapes(tmp_path, monkeypatch, no_compute, text):
    """Any config text: the checkers return or raise ConfigError; ``simulate`` and ``sweep`` (with
    nothing computed) exit 0 or 2 with one line, never a traceback."""
    sweep = pytest.importorskip("sdesim.app.sweep")
    monkeypatch.setattr(sweep, "run_sweep", _fake_sweep)
    path = tmp_path / "fuzz.toml"
    if isinstance(text, str):
        text = text.replace("{tmp}", str(tmp_path).replace("\\", "/"))
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(text)
    try:
        cfg = load_toml(path)
    except ConfigError:
        cfg = None
    if cfg is not None:
        for check in (check_simulation, check_sweep):
            with contextlib.suppress(ConfigError):
                check(cfg, base_dir=str(tmp_path))
    for argv in (["simulate", str(path)], ["sweep", str(path), "--no-progress"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        assert rc in (0, 2), (argv, rc, err.getvalue())
        if rc == 2:
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in lines[0], err.getvalue()

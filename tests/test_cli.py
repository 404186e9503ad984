"""The command line: ``sdesim simulate`` on tiny configs (files, contents, determinism), bad configs
(exit status 2, one line naming the key, no traceback), and ``sdesim reproduce`` on a stand-in set of
experiments (every section of the report, verdicts, exit status), plus the real checks' readers on
summaries shaped like the experiments' own."""

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sdesim.app import report
from sdesim.app.experiments import EXPERIMENTS
from sdesim.app.experiments.experiment import fmt
from sdesim.app.cli import main
from sdesim.app.config import check_simulation, point_hash
from sdesim.app.simulate import run_point

# the sphere model used here and in test_sweep.py: one compile serves both files
TINY = """
lr = 0.1
wd = {{values = [0.02, 0.005], times = [10.0]}}
dt = 0.5
paths = 6
seed = 4
save_times = {{stop = 20.0, num = 5}}
output = "{out}"
{extra}
[model]
name = "sphere"
d = 3
"""


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_simulate_writes_npz_and_json(tmp_path, capsys):
    cfg = _write(tmp_path / "run.toml", TINY.format(out="res/run.npz", extra=""))
    assert main(["simulate", cfg]) == 0
    assert "wrote" in capsys.readouterr().out
    npz, js = tmp_path / "res" / "run.npz", tmp_path / "res" / "run.json"
    assert npz.is_file() and js.is_file()
    assert not [p for p in (tmp_path / "res").iterdir() if p.name.startswith(".tmp")]
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert set(arrays) == {"ts", "ys", "norms", "eta_eff"}
    np.testing.assert_array_equal(arrays["ts"], np.linspace(0, 20, 5))
    assert arrays["ys"].shape == (5, 6, 3) and arrays["norms"].shape == (5, 6, 1)
    np.testing.assert_allclose(arrays["norms"][..., 0], np.linalg.norm(arrays["ys"], axis=-1))
    np.testing.assert_allclose(arrays["eta_eff"], 0.1 / arrays["norms"] ** 2)
    np.testing.assert_allclose(arrays["norms"][0], 1.0)  # init.norm default
    meta = json.loads(js.read_text())
    assert meta["spec"]["seed"] == 4 and meta["spec"]["wd"] == {"values": [0.02, 0.005], "times": [10.0]}
    assert meta["hash"] == point_hash(meta["spec"])
    assert {"python", "numpy", "numba", "sdesim"} <= set(meta["versions"])
    # the same spec run again (other thread count) gives the same bits
    spec = check_simulation({**_parse(cfg), "threads": 1}, base_dir=str(tmp_path))
    again, _ = run_point(spec)
    for k in arrays:
        np.testing.assert_array_equal(again[k], arrays[k])


def _parse(path):
    from sdesim.app.config import tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def test_simulate_polar_mean_and_init_file(tmp_path):
    w0 = np.array([0.0, 2.0, 0.0])
    np.save(tmp_path / "w0.npy", w0)
    extra = 'form = "polar"\nproject = true\nstore = "mean"\n[init]\nfile = "w0.npy"'
    cfg = _write(tmp_path / "p.toml", TINY.format(out="p.npz", extra=extra))
    assert main(["simulate", cfg]) == 0
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        mean, count = z["mean"], z["count"]
    # polar state (wbar, G, eta): starts at w0/|w0|, G = |w0|^4/eta^2
    np.testing.assert_allclose(mean[0], [0.0, 1.0, 0.0, 16.0 / 0.01, 0.1])
    assert mean.shape == (5, 5) and np.all(count == 6)
    meta = json.loads((tmp_path / "p.json").read_text())
    assert len(meta["spec"]["init"]["file_sha256"]) == 64


BAD = [  # (config body, key the message must name)
    ("lr = -0.1", "lr"),
    ("lr = 0", "lr"),
    ("lr = {values = [0.1, 0.01], times = []}", "lr.times"),
    ("lr = {values = [0.1, -0.01], times = [5]}", "lr.values"),
    ("lr = {values = [0.1, 0.01, 0.001], times = [5, 3]}", "lr.times"),
    ("lr = [0.1, 0.2]", "lr"),
    ('dt = "0.5"', "dt"),
    ("paths = true", "paths"),
    ("paths = 0", "paths"),
    ("seed = -1", "seed"),
    ('method = "rk4"', "method"),
    ('form = "spherical"', "form"),
    ("colour = 1", "colour"),
    ("save_times = [0.0, 5.0, 3.0]", "save_times"),
    ("save_times = {stop = 10.0, num = 1}", "save_times.num"),
    ('output = "x.csv"', "output"),
    ("[init]\nfile = 'missing.npy'", "init.file"),
    ("[init]\nnorm = -1.0", "init.norm"),
    ("[model]\nname = 'resnet'", "model.name"),
    ("[model]\nname = 'sphere'\ndd = 3", "model.dd"),
    ("[model]\nname = 'sphere'\nd = 1", "model.d"),
    ("[model]\nname = 'sphere'\nd = 3\nh_diag = [1.0, 2.0]", "model.h_diag"),
    ("[model]\nname = 'mixture'\nn = 10\nbatch_size = 50", "model.batch_size"),
    ("[model]\nname = 'mlp'\ndata = 'digits'\nn_classes = 4", "model.n_classes"),
    ("[model]\nname = 'digits'\nreplace = 'yes'", "model.replace"),
]

BASE = {"lr": "lr = 0.1", "wd": "wd = 0.01", "dt": "dt = 0.5", "save_times": "save_times = [0.0, 1.0]",
        "model": "[model]\nname = 'sphere'"}


def _bad_config(body):
    """A valid config with one entry replaced (or added) by ``body``."""
    key = body.split("=")[0].strip().split(".")[0]
    key = "model" if body.startswith("[model]") else key
    parts = dict(BASE)
    parts.pop(key, None)
    top = [v for k, v in parts.items() if k != "model"]
    tables = [parts["model"]] if "model" in parts else []
    if body.startswith("["):
        tables.append(body)
    else:
        top.append(body)
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"


@pytest.mark.parametrize("body,key", BAD)
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, body, key):
    cfg = _write(tmp_path / "bad.toml", _bad_config(body))
    assert main(["simulate", cfg]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f" {key}: " in err, err
    assert "expected" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_missing_required_key_and_missing_file(tmp_path, capsys):
    cfg = _write(tmp_path / "no_lr.toml", "\n".join(v for k, v in BASE.items() if k != "lr") + "\n")
    assert main(["simulate", cfg]) == 2
    assert " lr: expected" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "nowhere.toml")]) == 2
    err = capsys.readouterr().err
    assert "CONFIG: expected an existing TOML file" in err and "nowhere.toml" in err
    cfg = _write(tmp_path / "broken.toml", "lr = = 1\n")
    assert main(["simulate", cfg]) == 2
    assert "CONFIG: expected valid TOML" in capsys.readouterr().err


def test_bad_sweep_configs_exit_2(tmp_path, capsys):
    good = "\n".join(BASE.values()) + "\n"
    for text, key in [(good.replace("lr = 0.1", "lr = []"), "lr"),
                      (good.replace("lr = 0.1", "lr = [0.1, -2.0]"), "lr[1]"),
                      (good.replace("lr = 0.1", 'output = "a.npz"\nlr = 0.1'), "output"),
                      (good + "[sweep]\nworkers = 0\n", "sweep.workers"),
                      (good + "[sweep]\nnodes = 3\n", "sweep.nodes")]:
        cfg = _write(tmp_path / "sw.toml", text)
        assert main(["sweep", cfg, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f" {key}: " in err, err


def test_console_entry_point_no_traceback(tmp_path):
    """The real process: exit status 2, one line on stderr, no traceback."""
    cfg = _write(tmp_path / "bad.toml", _bad_config("lr = -1.0"))
    p = subprocess.run([sys.executable, "-m", "sdesim", "simulate", cfg], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "lr:" in p.stderr and "Traceback" not in p.stderr


# ------------------------------------------------------------------ reproduce, on stand-in experiments

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _fake_run(value):
    def run(quick=False, out=".", seed=0):
        print(f"fake experiment, quick={quick}, seed={seed}")
        with open(os.path.join(out, "figure.png"), "wb") as f:
            f.write(PNG)
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump({"value": value}, f)
        return {"value": value, "seed": seed, "quick": quick}
    return run


def _boom(quick=False, out=".", seed=0):
    raise RuntimeError("stand-in failure")


def _fake_checks(s):
    return [report.row("value", "1", fmt(s["value"]), "+- 0.1", abs(s["value"] - 1) <= 0.1),
            report.row("seed seen", "-", str(s["seed"]), "", None)]


FAKES = {
    "alpha": report.Experiment("alpha", "Alpha check", "Alpha claims 1.", _fake_run(1.02), _fake_checks, "seed"),
    "beta": report.Experiment("beta", "Beta check", "Beta claims 1.", _fake_run(1.5), _fake_checks, "seed + 1"),
    "gamma": report.Experiment("gamma", "Gamma check", "Gamma raises.", _boom, _fake_checks, "-"),
}


def test_reproduce_report_has_every_section(tmp_path):
    out = tmp_path / "rep"
    rep = report.reproduce(out=str(out), quick=True, seed=7, experiments=FAKES, progress=False)
    for f in ("report.html", "report.md", "reproduce.json", "alpha/figure.png", "alpha/log.txt", "gamma/log.txt"):
        assert (out / f).is_file(), f
    assert "fake experiment, quick=True, seed=7" in (out / "alpha" / "log.txt").read_text()
    assert [r["verdict"] for r in rep["rows"]] == ["pass", "info", "fail", "info", "error"]
    assert rep["counts"] == {"pass": 1, "fail": 1, "info": 2, "error": 1}
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for text in (md, page):
        for section in ("Verdicts", "Experiments", "Seeds", "Versions"):
            assert section in text
        for title in ("Alpha check", "Beta check", "Gamma check", "stand-in failure", "seed + 1"):
            assert title in text
        for v in ("numpy", "numba", "python", "sdesim", "git_commit"):
            assert v in text
        assert "+- 0.1" in text and "1.02" in text
    assert "![alpha: figure.png](alpha/figure.png)" in md
    assert page.count("data:image/png;base64,") == 2  # figures embedded: alpha and beta
    assert "| alpha | value | 1 | 1.02 | +- 0.1 | pass |" in md
    saved = json.loads((out / "reproduce.json").read_text())
    assert saved["seed"] == 7 and saved["mode"] == "quick" and len(saved["rows"]) == 5
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_reproduce_cli_only_and_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "EXPERIMENTS", FAKES)
    out = str(tmp_path / "r")
    assert main(["reproduce", "--quick", "--out", out, "--only", "alpha", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "verdict" in text and "pass" in text and "report.html" in text
    assert not os.path.exists(os.path.join(out, "beta"))
    assert main(["reproduce", "--out", out, "--only", "alpha,beta", "--no-progress"]) == 1  # beta fails
    capsys.readouterr()
    assert main(["reproduce", "--out", out, "--only", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "--only" in err and "nosuch" in err


def test_registry_lists_the_papers_checks():
    assert list(report.EXPERIMENTS) == ["norm_equilibration", "intrinsic_lr", "lr_decay", "sgd_vs_sde",
                                        "fast_equilibrium", "last_decay"]
    for exp in report.EXPERIMENTS.values():
        assert callable(exp.runner()) and exp.seeds and exp.claim


# the experiments' own example summaries (the keys their checks read)
SUMMARIES = {name: exp.example_summary for name, exp in EXPERIMENTS.items()}


@pytest.mark.parametrize("name", list(SUMMARIES))
def test_checks_read_the_experiment_summaries(name):
    rows = report.EXPERIMENTS[name].checks(SUMMARIES[name])
    assert rows and all(r["verdict"] in ("pass", "info") for r in rows), rows
    assert any(r["verdict"] == "pass" for r in rows)
    assert all(set(r) == {"quantity", "prediction", "measured", "tolerance", "verdict"} for r in rows)


def test_checks_fail_outside_tolerance():
    s = json.loads(json.dumps(SUMMARIES["norm_equilibration"]))
    s["sphere"]["slope"] = -1.07
    assert EXPERIMENTS['norm_equilibration'].checks(s)[0]["verdict"] == "fail"
    s = json.loads(json.dumps(SUMMARIES["sgd_vs_sde"]))
    for r in s["svag"]:
        r["G_gap"] = 13.0  # SVAG does not close the gap
    assert EXPERIMENTS['sgd_vs_sde'].checks(s)[0]["verdict"] == "fail"
    s = json.loads(json.dumps(SUMMARIES["fast_equilibrium"]))
    s["results"]["digits_mlp"]["slope"] = -0.5
    assert [r["verdict"] for r in EXPERIMENTS['fast_equilibrium'].checks(s) if r["verdict"] != "info"] == ["pass", "fail"]


def test_every_experiment_declares_its_summary_type_and_the_example_matches_it():
    from sdesim.app.experiments.experiment import summary_problems
    for name, exp in EXPERIMENTS.items():
        assert exp.summary_type is not None, name
        assert summary_problems(exp.example_summary, exp.summary_type) == [], name


def test_a_summary_that_does_not_match_its_type_is_an_error_row():
    from sdesim.app.experiments.experiment import summary_problems
    exp = EXPERIMENTS["sgd_vs_sde"]
    s = json.loads(json.dumps(SUMMARIES["sgd_vs_sde"]))
    del s["sde"]["G_se"]
    s["svag"][0]["G_gap"] = "13"
    problems = summary_problems(s, exp.summary_type)
    assert problems == ["summary['svag'][0]['G_gap'] is str '13', not float", "summary['sde'] has no key 'G_se'"]
    rows = report._rows_for(exp, s, None)
    assert len(rows) == 1 and rows[0]["verdict"] == "error" and "(+1 more)" in rows[0]["measured"]
    # optional keys may be missing; a float may be None (JSON's NaN) or an int; extra keys are allowed
    s = json.loads(json.dumps(SUMMARIES["norm_equilibration"]))
    del s["digits"]
    s["sphere"]["slope"] = None
    s["sphere"]["prefactor_min"] = 1
    s["extra"] = [1, 2]
    assert summary_problems(s, EXPERIMENTS["norm_equilibration"].summary_type) == []
    assert summary_problems({"runs": {"a": 1}}, EXPERIMENTS["intrinsic_lr"].summary_type) == \
        ["summary['runs'] is dict, not a list"]
    assert summary_problems({"results": {"m": {"slope": True, "points": []}}},
                            EXPERIMENTS["fast_equilibrium"].summary_type) == \
        ["summary['results']['m']['slope'] is bool True, not float"]

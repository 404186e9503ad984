"""``sdesim sweep`` on a local Dask cluster of 2 worker processes: the grid, results equal to running
the points one by one, a failing point recorded without stopping the others, and a sweep killed
half way then rerun: every point done exactly once, nothing lost, nothing duplicated."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from sdesim.app.config import check_sweep, expand_sweep, point_hash  # noqa: E402
from sdesim.app.simulate import run_point  # noqa: E402
from sdesim.app.sweep import load_point, plan, point_status, sweep_config  # noqa: E402

# the same sphere model as test_cli.py (d = 3): workers compile one kernel for every test here
GRID = """
lr = [0.1, 0.2]
wd = [0.02, {{values = [0.02, 0.005], times = [10.0]}}]
seed = [0, 1]
dt = 0.5
paths = {paths}
save_times = {{stop = {stop}, num = 5}}
[model]
name = "sphere"
d = 3
[sweep]
results = "res"
"""


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _config(tmp_path, paths=6, stop=20.0, replace=()):
    text = GRID.format(paths=paths, stop=stop)
    for a, b in replace:
        assert a in text
        text = text.replace(a, b)
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return str(path)


def _results(folder):
    """{hash: meta} of every result JSON (temporary files of interrupted writes excluded)."""
    out = {}
    for p in glob.glob(os.path.join(folder, "*.json")):
        name = os.path.basename(p)
        if name != "sweep.json":
            with open(p) as f:
                out[name[:-5]] = json.load(f)
    return out


def test_grid_is_the_product_and_hashes_are_stable(tmp_path):
    cfg = {"lr": [0.1, 0.2, 0.3], "wd": [0.01, {"values": [0.01, 0.001], "times": [5]}], "seed": [0, 1],
           "model": [{"name": "sphere", "d": 3}, {"name": "mixture", "n": 20, "batch_size": 4}],
           "dt": 0.5, "save_times": [0.0, 1.0]}
    base, axes, opts = check_sweep(cfg)
    points = expand_sweep(base, axes)
    assert len(points) == 3 * 2 * 2 * 2
    hashes = [point_hash(p) for p in points]
    assert len(set(hashes)) == len(hashes)
    assert point_hash({**points[0], "threads": 7}) == hashes[0]  # threads do not change a result
    assert point_hash({**points[0], "dt": 0.25}) != hashes[0]
    assert opts["threads"] == 1 and points[0]["threads"] == 1


def test_sweep_on_two_worker_processes_equals_points_one_by_one(client, tmp_path):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and all(w.get("pid", -1) != os.getpid() for w in workers.values())
    cfg = _config(tmp_path)
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["total"] == 8 and stats["ok"] == 8 and stats["failed"] == 0 and stats["skipped"] == 0
    points, opts = plan(cfg)
    res = _results(opts["results"])
    assert set(res) == {h for h, _ in points}
    for h, spec in points:
        meta, arrays = load_point(opts["results"], h)
        assert meta["status"] == "ok" and meta["spec"] == json.loads(json.dumps(spec))
        assert meta["worker_pid"] != os.getpid()
        ref, _ = run_point(spec)  # one by one, here
        assert set(arrays) == set(ref)
        for k in ref:
            np.testing.assert_array_equal(arrays[k], ref[k])
    # a rerun does nothing
    again = sweep_config(cfg, client=client, progress=False, log=None)
    assert again["skipped"] == 8 and again["ran"] == 0


def test_failing_point_is_recorded_and_does_not_stop_the_others(client, tmp_path):
    # lr = 1e15: |1 - eta lam dt| ~ 1e13, Euler-Maruyama overflows -> NonFiniteError on those points
    cfg = _config(tmp_path, replace=[("lr = [0.1, 0.2]", "lr = [0.1, 1e15]")])
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["ok"] == 4 and stats["failed"] == 4
    points, opts = plan(cfg)
    res = _results(opts["results"])
    assert len(res) == 8
    bad = {h for h, m in res.items() if m["status"] == "error"}
    assert bad == {h for h, p in points if p["lr"] == 1e15}
    for h in bad:
        assert "NonFiniteError" in res[h]["error"] and res[h]["traceback"]
        assert not os.path.exists(os.path.join(opts["results"], f"{h}.npz"))
    # rerun: the good points are skipped untouched, the failed ones tried again (and fail again)
    mtimes = {h: os.stat(os.path.join(opts["results"], f"{h}.json")).st_mtime_ns for h in res}
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["skipped"] == 4 and stats["ran"] == 4 and stats["failed"] == 4
    res2 = _results(opts["results"])
    for h in res:
        if h in bad:
            assert res2[h]["run_id"] == stats["run_id"] != res[h]["run_id"]
        else:
            assert res2[h] == res[h]
            assert os.stat(os.path.join(opts["results"], f"{h}.json")).st_mtime_ns == mtimes[h]
    # --skip-failed: nothing runs
    stats = sweep_config(cfg, client=client, progress=False, log=None, retry_failed=False)
    assert stats["skipped"] == 8 and stats["ran"] == 0


def test_killed_sweep_resumes_with_every_point_done_once(client, tmp_path):
    # slower points (about 0.2-0.5 s each after compilation) so that the kill lands mid-sweep
    cfg = _config(tmp_path, paths=300, stop=1500.0, replace=[("seed = [0, 1]", "seed = [0, 1, 2, 3]")])
    points, opts = plan(cfg)
    assert len(points) == 16
    folder = opts["results"]
    client.run(lambda: None)  # workers up
    # the sweep in its own process, on this cluster's scheduler; killed (SIGKILL) after a few points
    proc = subprocess.Popen([sys.executable, "-m", "sdesim", "sweep", cfg, "--scheduler",
                             client.scheduler.address, "--no-progress"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(point_status(folder, h) == "ok" for h, _ in points) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _results(folder)
    done = {h for h, m in before.items() if m["status"] == "ok"}
    assert 3 <= len(done) < len(points), f"{len(done)} points done before the kill"
    for h in done:
        with np.load(os.path.join(folder, f"{h}.npz"), allow_pickle=False) as z:
            assert z["ys"].shape == (5, 300, 3)
    # rerun here: only the missing points run
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["skipped"] == len(done) and stats["ran"] == len(points) - len(done) and stats["failed"] == 0
    after = _results(folder)
    assert set(after) == {h for h, _ in points}  # nothing lost, nothing extra
    assert all(m["status"] == "ok" for m in after.values())
    for h in done:  # finished before the kill: not redone
        assert after[h]["run_id"] == before[h]["run_id"]
    for h in set(after) - done:
        assert after[h]["run_id"] == stats["run_id"]
    npz = [p for p in os.listdir(folder) if p.endswith(".npz") and not p.startswith(".tmp")]
    assert sorted(npz) == sorted(f"{h}.npz" for h, _ in points)
    # the resumed results are those of the points run one by one (two of them, to keep it short)
    for h, spec in points[:1] + points[-1:]:
        _, arrays = load_point(folder, h)
        ref, _ = run_point(spec)
        np.testing.assert_array_equal(arrays["ys"], ref["ys"])

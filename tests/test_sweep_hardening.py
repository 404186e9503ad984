"""``sdesim sweep`` under faults: corrupt or truncated results are redone, leftovers of killed sweeps
cleared, two sweeps on one folder share the points (claims), package versions recorded, every wait
bounded with a one-line error, Ctrl-C stops within about a second without partial files or orphan
workers, and a sweep SIGKILLed at random moments and fed corrupted files ends with every point done
exactly once.

Most tests run the sweep on an in-process Dask cluster with a fake point computation (no Numba
compilation: the sweep machinery is what is under test); the Ctrl-C test runs the real path
(``sdesim sweep`` with a LocalCluster of worker processes computing real points)."""

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from sdesim.app import sweep  # noqa: E402
from sdesim.app._io import OutputError  # noqa: E402
from sdesim.app.sweep import check_point, load_point, plan, point_status, sweep_config  # noqa: E402

GRID = """
lr = [0.1, 0.2]
wd = [0.02, {{values = [0.02, 0.005], times = [10.0]}}]
seed = {seeds}
dt = 0.5
paths = {paths}
save_times = {{stop = {stop}, num = 5}}
[model]
name = "sphere"
d = 3
[sweep]
results = "res"
workers = 2
"""

# the fake point: deterministic arrays from the spec, about 60 kB of .npz (so that writes take a while)
FAKE = '''
def fake(spec):
    import numpy as np
    from sdesim.app.config import point_hash
    h = point_hash(spec)
    rng = np.random.default_rng(int(h, 16) % 2**32)
    arrays = {"ts": np.linspace(0.0, 1.0, 5), "ys": rng.standard_normal((5, 500, 3))}
    return arrays, {"hash": h, "spec": spec, "wall_s": 0.0}
'''
_ns = {}
exec(FAKE, _ns)
fake = _ns["fake"]

DRIVER = FAKE + '''
import json, os, sys, time
import sdesim.app.sweep as sw
import sdesim.app.sweep_store
from dask.distributed import Client, LocalCluster

def compute(spec):
    with open(sys.argv[3], "a") as f:
        f.write(f"{sw.point_hash(spec)} {os.getpid()}\\n")
    time.sleep(float(sys.argv[2]))
    return fake(spec)

if __name__ == "__main__":
    sw._compute = compute
    with open(os.environ["SWEEP_VERSIONS"]) as f:  # (as the test process found them: no git call each run)
        sdesim.app.sweep_store._VERSIONS = json.load(f)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \\
            Client(cl) as c:
        print("ready", flush=True)
        go = os.environ.get("SWEEP_GO")
        while go and not os.path.exists(go):
            time.sleep(0.005)
        stats = sw.sweep_config(sys.argv[1], client=c, progress=False, log=None)
    print(json.dumps(stats), flush=True)
'''


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def fake_compute(monkeypatch):
    monkeypatch.setattr(sweep, "_compute", fake)


def _config(tmp_path, seeds="[0, 1]", paths=6, stop=20.0):
    path = tmp_path / "sweep.toml"
    path.write_text(GRID.format(seeds=seeds, paths=paths, stop=stop))
    return str(path)


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-") or n.endswith(".claim"))


def _meta(folder, h):
    with open(os.path.join(folder, f"{h}.json")) as f:
        return json.load(f)


def _write_meta(folder, h, meta):
    with open(os.path.join(folder, f"{h}.json"), "w") as f:
        json.dump(meta, f)


def _assert_point_equals_fake(folder, h, spec):
    meta, arrays = load_point(folder, h)
    assert meta["status"] == "ok"
    ref, _ = fake(spec)
    assert set(arrays) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(arrays[k], ref[k])


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _claim(folder, h, **info):
    path = os.path.join(folder, f"{h}.claim")
    with open(path, "w") as f:
        json.dump({"pid": 1, "host": socket.gethostname(), "started": None, "time": time.time(), "run_id": "x",
                   **info}, f)
    return path


# ---------------------------------------------------------------------------------------------
# results: checksums, corrupt points, leftovers


def test_results_record_checksum_and_versions(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["ok"] == 8
    points, opts = plan(cfg)
    folder = opts["results"]
    for h, spec in points:
        meta = _meta(folder, h)
        with open(os.path.join(folder, f"{h}.npz"), "rb") as f:
            data = f.read()
        import hashlib
        assert meta["npz"] == {"file": f"{h}.npz", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert meta["versions"]["numpy"] == np.__version__ and "sdesim" in meta["versions"]
        assert check_point(folder, h)[0] == "ok"
    assert _leftovers(folder) == []


def test_corrupt_results_are_redone_and_the_others_kept(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    sweep_config(cfg, client=client, progress=False, log=None)
    points, opts = plan(cfg)
    folder = opts["results"]
    before = {h: _meta(folder, h)["run_id"] for h, _ in points}
    hs = [h for h, _ in points]
    npz = lambda h: os.path.join(folder, f"{h}.npz")  # noqa: E731
    with open(npz(hs[0]), "r+b") as f:  # truncated
        f.truncate(os.path.getsize(npz(hs[0])) // 2)
    open(npz(hs[1]), "wb").close()  # emptied
    os.remove(npz(hs[2]))  # JSON says ok, .npz missing
    with open(os.path.join(folder, f"{hs[3]}.json"), "w") as f:  # garbled JSON
        f.write('{"status": "ok", "hash": ')
    m = _meta(folder, hs[4])  # a JSON whose spec does not match its hash
    m["spec"]["lr"] = 0.3
    _write_meta(folder, hs[4], m)
    for h in hs[:5]:
        assert point_status(folder, h) is None
    lines = []
    stats = sweep_config(cfg, client=client, progress=False, log=lines.append)
    assert stats["redone"] == 5 and stats["ran"] == 5 and stats["ok"] == 5 and stats["skipped"] == 3
    text = "\n".join(lines)
    for h, why in zip(hs[:5], ["bytes", "bytes", ".npz missing", "unreadable JSON", "hash mismatch"]):
        line = next(ln for ln in lines if h in ln)
        assert "corrupt" in line and why in line and "\n" not in line, text
    after = {h: _meta(folder, h)["run_id"] for h, _ in points}
    for h, spec in points:
        _assert_point_equals_fake(folder, h, spec)
        assert (after[h] == stats["run_id"]) if h in hs[:5] else (after[h] == before[h])


def test_load_point_refuses_an_altered_npz(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    sweep_config(cfg, client=client, progress=False, log=None)
    (h, _), *_ = plan(cfg)[0]
    folder = plan(cfg)[1]["results"]
    path = os.path.join(folder, f"{h}.npz")
    with open(path, "r+b") as f:  # same size, one byte changed
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="SHA-256"):
        load_point(folder, h)
    assert check_point(folder, h)[:3:2] == ("corrupt", ".npz checksum mismatch")


def test_leftover_temporary_files_and_dead_claims_are_cleared(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    points, opts = plan(cfg)
    folder = opts["results"]
    os.makedirs(folder)
    h0, h1 = points[0][0], points[1][0]
    stale = [f".tmp-ab12cd34{h0}.npz", f".tmp-zz_99xyz{h1}.json", ".tmp-probe-q1w2e3r4"]
    for name in stale + [".tmp-recent-abcdefgh"]:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"partial")
    old = time.time() - 3600
    os.utime(os.path.join(folder, ".tmp-probe-q1w2e3r4"), (old, old))
    dead = _claim(folder, h0, pid=_dead_pid())  # a SIGKILLed sweep's claim
    lines = []
    stats = sweep_config(cfg, client=client, progress=False, log=lines.append)
    assert stats["ok"] == 8 and stats["busy"] == 0
    assert not os.path.exists(dead)
    # a young temporary file that belongs to no point may be another sweep's write in progress: kept
    assert _leftovers(folder) == [".tmp-recent-abcdefgh"]
    assert any("removed 1 claim(s)" in ln and "3 leftover temporary file(s)" in ln for ln in lines), lines
    for h, spec in points:
        _assert_point_equals_fake(folder, h, spec)


def test_claims_of_live_sweeps_are_respected(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    points, opts = plan(cfg)
    folder = opts["results"]
    os.makedirs(folder)
    h0, h1, h2 = (h for h, _ in points[:3])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = _claim(folder, h0, pid=sleeper.pid, started=psutil.Process(sleeper.pid).create_time())
        remote = _claim(folder, h1, host="elsewhere.example", pid=4242)  # fresh heartbeat
        gone = _claim(folder, h2, host="elsewhere.example", pid=4243)
        old = time.time() - sweep.CLAIM_STALE_S - 60  # no heartbeat for longer than CLAIM_STALE_S
        os.utime(gone, (old, old))
        lines = []
        stats = sweep_config(cfg, client=client, progress=False, log=lines.append)
        assert stats.get("busy") == 2 and stats["ok"] == 6 and stats["ran"] == 6
        assert os.path.exists(live) and os.path.exists(remote) and not os.path.exists(gone)
        assert point_status(folder, h0) is None and point_status(folder, h1) is None
        assert point_status(folder, h2) == "ok"
        assert any("2 point(s) being computed by another sweep" in ln for ln in lines), lines
    finally:
        sleeper.kill()
        sleeper.wait()
    # its owner gone, the claim is taken over on the next run; the remote one still holds
    stats = sweep_config(cfg, client=client, progress=False, log=None)
    assert stats["ran"] == 1 and stats["busy"] == 1 and point_status(folder, h0) == "ok"
    os.remove(remote)
    assert sweep_config(cfg, client=client, progress=False, log=None)["ran"] == 1
    assert _leftovers(folder) == []


def test_other_versions_are_reported_and_kept(client, fake_compute, tmp_path):
    cfg = _config(tmp_path)
    sweep_config(cfg, client=client, progress=False, log=None)
    points, opts = plan(cfg)
    folder = opts["results"]
    for h, _ in points[:3]:
        m = _meta(folder, h)
        m["versions"]["numpy"] = "0.0.1"
        _write_meta(folder, h, m)
    lines = []
    stats = sweep_config(cfg, client=client, progress=False, log=lines.append)
    assert stats["ran"] == 0 and stats["skipped"] == 8
    warn = [ln for ln in lines if "warning" in ln]
    assert len(warn) == 1 and "numpy 0.0.1 in 3 point(s)" in warn[0] and np.__version__ in warn[0], lines


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_results_folder_that_cannot_be_written_is_refused_before_computing(tmp_path, where):
    (tmp_path / "res").write_text("not a folder")
    cfg = _config(tmp_path)
    if where == "under_file":
        cfg_text = open(cfg).read().replace('results = "res"', 'results = "res/sub"')
        open(cfg, "w").write(cfg_text)

    class NoCluster:  # nothing may be submitted
        def __getattr__(self, name):
            raise AssertionError(f"cluster used: {name}")
    with pytest.raises(OutputError, match="sweep results folder") as e:
        sweep_config(cfg, client=NoCluster(), progress=False, log=None)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# the scheduler: addresses, unreachable, silent, no workers


@pytest.mark.parametrize("address", ["", "tcp://", "tcp://host:notaport", "localhost", ":8786", "foo://x:1",
                                     "http://127.0.0.1:8786", "tcp://127.0.0.1:99999", "tcp://[::1",
                                     "tcp://::1:8786", "tcp://a b:8786"])
def test_malformed_scheduler_address_is_one_line_value_error(tmp_path, address):
    cfg = _config(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"^--scheduler: expected an address like tcp://") as e:
        sweep_config(cfg, scheduler=address, progress=False, log=None)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 1.0
    assert not os.path.exists(plan(cfg)[1]["results"])  # refused before anything is written


SCHEDULER_CHECKS = '''
import glob, json, os, socket, subprocess, sys, threading, time
import sdesim.app.sweep as sw
from sdesim.app.sweep import sweep_config


def slow(spec):
    import time
    import numpy as np
    time.sleep(0.3)
    return {"ts": np.zeros(3)}, {"spec": spec}


procs = []


def lost_scheduler(cfg, folder):
    """A scheduler that dies mid-sweep: ConnectionError, the points in flight not recorded as failed."""
    bindir, sf = os.path.dirname(sys.executable), os.path.join(os.path.dirname(cfg), "scheduler.json")
    sched = subprocess.Popen([os.path.join(bindir, "dask"), "scheduler", "--port", "0", "--no-dashboard",
                              "--scheduler-file", sf], stderr=subprocess.DEVNULL, start_new_session=True)
    procs.append(sched)
    try:
        while not os.path.exists(sf):
            time.sleep(0.05)
        time.sleep(0.2)
        with open(sf) as f:
            addr = json.load(f)["address"]
        procs.append(subprocess.Popen([os.path.join(bindir, "dask"), "worker", addr, "--nthreads", "1",
                                       "--no-dashboard"], stderr=subprocess.DEVNULL, start_new_session=True))

        def kill_when_two_done():
            while len(glob.glob(os.path.join(folder, "*.npz"))) < 2:
                time.sleep(0.02)
            sched.kill()
        threading.Thread(target=kill_when_two_done, daemon=True).start()
        sw._compute = slow  # (pickled by value to the worker: defined in __main__)
        return addr
    except BaseException:
        stop(procs)
        raise


def stop(procs):
    import signal
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

def server(kind):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    def serve():
        while True:
            c, _ = s.accept()
            if kind == "garbage":
                c.sendall(b"HTTP/1.1 200 OK\\r\\n\\r\\n" + b"x" * 200)
            conns.append(c)
    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{s.getsockname()[1]}"

if __name__ == "__main__":
    conns = []
    free = socket.socket(); free.bind(("127.0.0.1", 0)); refused = free.getsockname()[1]; free.close()
    from dask.distributed import LocalCluster
    empty = LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=None)
    out = {}
    for name, addr in [("refused", f"tcp://127.0.0.1:{refused}"), ("silent", server("silent")),
                       ("garbage", server("garbage")), ("no_workers", empty.scheduler_address)]:
        t0 = time.monotonic()
        try:
            sweep_config(sys.argv[1], scheduler=addr, progress=False, log=None, connect_timeout=1.5,
                         worker_timeout=1.5)
            out[name] = ["no error", "", 0]
        except Exception as exc:
            out[name] = [type(exc).__name__, str(exc), time.monotonic() - t0]
    folder = sys.argv[2]
    addr = lost_scheduler(sys.argv[1], folder)
    try:
        stats = sweep_config(sys.argv[1], scheduler=addr, progress=False, log=None, connect_timeout=1.5,
                             worker_timeout=1.5)
        out["lost"] = ["no error", json.dumps(stats), 0]
    except Exception as exc:
        out["lost"] = [type(exc).__name__, str(exc), 0]
    finally:
        stop(procs)
    statuses = []
    for p in glob.glob(os.path.join(folder, "*.json")):
        if not p.endswith("sweep.json"):
            with open(p) as f:
                statuses.append(json.load(f)["status"])
    out["lost_statuses"] = statuses
    print(json.dumps(out), flush=True)
'''


def test_unreachable_silent_or_workerless_schedulers_fail_within_the_timeouts(tmp_path):
    cfg = _config(tmp_path)
    script = tmp_path / "checks.py"
    script.write_text(SCHEDULER_CHECKS)
    t0 = time.monotonic()
    try:
        out = subprocess.run([sys.executable, str(script), cfg, plan(cfg)[1]["results"]], capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a scheduler check hung (> 60 s) after {time.monotonic() - t0:.0f} s")
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    expect = {"refused": ("ConnectionError", "cannot connect"),
              "silent": ("TimeoutError", "did not answer as a Dask scheduler within 1.5 s"),
              "garbage": ("ConnectionError", "did not answer as a Dask scheduler"),
              "no_workers": ("TimeoutError", "no Dask workers at tcp://"),
              "lost": ("ConnectionError", "lost the Dask scheduler")}
    for name, (kind, msg) in expect.items():
        got_kind, got_msg, took = res[name]
        assert got_kind == kind and msg in got_msg and "\n" not in got_msg, (name, res[name])
        assert took < 6.0, (name, took)
    # the points in flight when the scheduler died are not recorded as failures; no claim is left
    assert res["lost_statuses"] and set(res["lost_statuses"]) == {"ok"}, res["lost_statuses"]
    assert _leftovers(plan(cfg)[1]["results"]) == []


# ---------------------------------------------------------------------------------------------
# two sweeps on one folder; Ctrl-C; SIGKILL at random moments


def _driver(tmp_path):
    """The driver script and its environment."""
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps(sweep._versions()))
    return str(path), {**os.environ, "SWEEP_VERSIONS": str(versions)}


def test_two_sweeps_on_one_folder_compute_each_point_once(tmp_path):
    cfg = _config(tmp_path, seeds="[0, 1, 2, 3]")
    points, opts = plan(cfg)
    (driver, env), log, go = _driver(tmp_path), tmp_path / "computed.log", tmp_path / "go"
    env["SWEEP_GO"] = str(go)
    procs = [subprocess.Popen([sys.executable, driver, cfg, "0.1", str(log)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:  # both ready, then both start at once
            assert p.stdout.readline().strip() == "ready", p.stderr.read()[-3000:]
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    computed = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(computed) == sorted(h for h, _ in points)  # each point computed once, by one of them
    assert stats[0]["ran"] + stats[1]["ran"] == len(points)
    for h, spec in points:
        _assert_point_equals_fake(opts["results"], h, spec)
    assert _leftovers(opts["results"]) == []


def test_keyboard_interrupt_propagates_and_leaves_no_partial_files(client, monkeypatch, tmp_path):
    def slow(spec):
        time.sleep(0.15)
        return fake(spec)
    monkeypatch.setattr(sweep, "_compute", slow)
    # 8 points: the interrupt lands while points are left even when a loaded machine delays it
    cfg = _config(tmp_path, seeds="[0, 1, 2, 3, 4, 5, 6, 7]")
    points, opts = plan(cfg)
    folder = opts["results"]
    sent = []

    def interrupt():
        while sum(point_status(folder, h) == "ok" for h, _ in points) < 3:
            time.sleep(0.01)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    th = threading.Thread(target=interrupt, daemon=True)
    th.start()
    with pytest.raises(KeyboardInterrupt):
        sweep_config(cfg, client=client, progress=False, log=None)
    took = time.monotonic() - sent[0]
    assert took < 1.0, took
    print(f"SIGINT to KeyboardInterrupt out of sweep_config: {took:.3f} s")
    assert _leftovers(folder) == []
    done = [h for h, _ in points if os.path.exists(os.path.join(folder, f"{h}.json"))]
    assert 3 <= len(done) < len(points)
    assert all(check_point(folder, h)[0] == "ok" for h in done)
    npz = {n[:-4] for n in os.listdir(folder) if n.endswith(".npz")}
    assert npz == set(done)  # no .npz without its JSON


def test_ctrl_c_stops_a_real_sweep_within_a_second(tmp_path):
    """The real path: ``sdesim sweep`` with a LocalCluster of 2 worker processes; Ctrl-C from a
    terminal goes to the whole process group."""
    cfg = _config(tmp_path, seeds="[0, 1, 2, 3]", paths=300, stop=1500.0)
    points, opts = plan(cfg)
    folder = opts["results"]
    proc = subprocess.Popen([sys.executable, "-m", "sdesim", "sweep", cfg, "--no-progress"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(point_status(folder, h) == "ok" for h, _ in points) >= 1:
                break
            time.sleep(0.02)
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert proc.poll() is None and len(kids) >= 2, "the sweep ended before it could be interrupted"
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert took < 1.5, f"{took:.2f} s to stop"
    print(f"Ctrl-C to exit: {took:.2f} s")
    _, alive = psutil.wait_procs(kids, timeout=3)
    assert not alive, f"orphan worker processes: {alive}"
    assert _leftovers(folder) == []
    done = [h for h, _ in points if os.path.exists(os.path.join(folder, f"{h}.json"))]
    assert 1 <= len(done) < len(points)
    assert all(check_point(folder, h)[0] == "ok" for h in done)
    assert {n[:-4] for n in os.listdir(folder) if n.endswith(".npz")} == set(done)


def test_sigkill_at_random_moments_and_corrupted_files(tmp_path):
    """Several runs killed (SIGKILL) at seeded random moments, with corrupted results, leftovers and
    stale claims planted between them; a final run completes: every point done exactly once."""
    cfg = _config(tmp_path, seeds="[0, 1, 2, 3, 4, 5, 6, 7]")  # 32 points, 0.1 s each on 2 threads
    points, opts = plan(cfg)
    folder = opts["results"]
    hs = [h for h, _ in points]
    (driver, env), log = _driver(tmp_path), tmp_path / "computed.log"
    rng = random.Random(20240613)
    kills, kept, corrupted, rounds = 0, {}, [], []

    def verified():
        return {h: _meta(folder, h)["run_id"] for h in hs if check_point(folder, h)[0] == "ok"}

    def run(kill_after=None):
        proc = subprocess.Popen([sys.executable, driver, cfg, "0.1", str(log)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
            if kill_after is None:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err[-3000:]
                return json.loads(out.strip().splitlines()[-1])
            time.sleep(kill_after)
            alive = proc.poll() is None
            return alive
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def corrupt(h, how):
        path = os.path.join(folder, f"{h}.npz" if how in ("truncate", "empty") else f"{h}.json")
        if how == "truncate":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) - 100)
        elif how == "empty":
            open(path, "wb").close()
        elif how == "garble":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 3)
        elif how == "spec":
            m = _meta(folder, h)
            m["spec"]["seed"] = 99
            _write_meta(folder, h, m)
        corrupted.append((h, how))
        kept.pop(h, None)

    faults = {1: ["truncate"], 2: ["empty", "garble"], 3: ["spec", "leftovers"], 4: ["truncate", "sweep.json"]}
    waiting = []  # corruptions waiting for a finished point
    for r in range(7):
        delay = rng.uniform(0.0, 0.6)
        alive = run(kill_after=delay)
        now = verified()
        rounds.append((round(delay, 2), alive, len(now)))
        kills += alive and len(now) < len(hs)  # killed mid-sweep
        for h, run_id in kept.items():  # finished before: never redone
            assert now.get(h) == run_id, f"round {r}: point {h} redone or lost"
        kept.update({h: run_id for h, run_id in now.items() if h not in kept})
        waiting += faults.get(r, [])
        for how in list(waiting):
            if how in ("truncate", "empty", "garble", "spec") and not kept:
                continue
            waiting.remove(how)
            if how == "leftovers":
                h = rng.choice(hs)
                for name in (f".tmp-k1ll3d00{h}.npz", f".tmp-x9y8z7w6{h}.json"):
                    (tmp_path / "res" / name).write_bytes(b"partial")
                _claim(folder, rng.choice(hs), pid=_dead_pid())
                stale = _claim(folder, rng.choice(hs), host="elsewhere.example", pid=7)
                old = time.time() - sweep.CLAIM_STALE_S - 1
                os.utime(stale, (old, old))
            elif how == "sweep.json":
                (tmp_path / "res" / "sweep.json").write_text('{"points": [')
            else:
                corrupt(rng.choice(sorted(kept)), how)
    assert kills >= 5, f"only {kills} runs killed mid-sweep: (delay, alive, points done) {rounds}"
    print(f"kills mid-sweep: {kills}; (delay, alive, points done) per round: {rounds}")
    assert len(corrupted) == 5 and not waiting
    stats = run()
    assert stats["failed"] == 0 and stats.get("busy", 0) == 0
    assert stats["skipped"] == len(kept) and stats["ran"] == len(hs) - len(kept)
    final = verified()
    assert set(final) == set(hs)
    for h, run_id in kept.items():
        assert final[h] == run_id
    for h, spec in points:
        with np.load(os.path.join(folder, f"{h}.npz"), allow_pickle=False) as z:
            assert z["ys"].shape == (5, 500, 3)
        _assert_point_equals_fake(folder, h, spec)
    assert _leftovers(folder) == []
    with open(os.path.join(folder, "sweep.json")) as f:
        assert [p["hash"] for p in json.load(f)["points"]] == hs
    assert sorted(n for n in os.listdir(folder) if not n.startswith(".")) == sorted(
        [f"{h}.npz" for h in hs] + [f"{h}.json" for h in hs] + ["sweep.json"])
    # a final rerun has nothing to do
    assert run()["ran"] == 0


def test_the_cancel_race_report_is_dropped_during_a_sweep_only():
    """distributed's own race on Ctrl-C (its ``sync`` cancel callback failing in tornado's loop) is
    not shown while a sweep runs; tornado's other callback errors are, and nothing is filtered after."""
    import io
    import logging
    from sdesim.app.sweep_cluster import _drop_cancel_race
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("tornado.application")
    logger.addHandler(handler)
    race = "Exception in callback functools.partial(<function sync.<locals>.cancel at 0x7f>)"
    try:
        with _drop_cancel_race():
            logger.error(race)
            logger.error("Exception in callback something else")
        logger.error(race)
    finally:
        logger.removeHandler(handler)
    assert buf.getvalue().splitlines() == ["Exception in callback something else", race]

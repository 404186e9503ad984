"""Compile time: cold, warm in the process, and loaded from the on-disk kernel cache.

For each case (a user's SDE, the paper's SDE on the sphere model, on the digits classifier, and
discrete SGD on the sphere model) three times are measured in fresh subprocesses:

* ``cold_s``: the first solve in a process whose caches are empty (sdesim's kernel cache and
  Numba's own ``cache=True`` folder both point at new empty folders);
* ``in_process_s``: building the model/SDE again from the same functions and solving again in
  that process (no compile: kernels are reused by fingerprint);
* ``on_disk_s``: the first solve in a second fresh process with the caches the cold one filled.

Each time is the wall time of building the SDE (or model) and a small solve (100 paths x 100 steps
for the user SDE); the solve itself takes milliseconds.

    python benchmarks/bench_compile.py [--cases user sphere digits sgd] [--out FILE.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, time
import numpy as np
case = sys.argv[1]
t_import = time.perf_counter()
import sdesim
from sdesim.normalized import SphereModel, sgd_sde, run_sgd, NormalizedLinearClassifier, load_digits
import_s = time.perf_counter() - t_import


def drift(t, y, args, out):
    for i in range(y.size):
        out[i] = -args[0] * y[i]


def diffusion(t, y, args, out):
    for i in range(y.size):
        for j in range(out.shape[1]):
            out[i, j] = args[1] * (1.0 if i == j else 0.1) * y[j]


def once():
    if case == "user":
        sde = sdesim.SDE(drift, diffusion, dim=3, noise_dim=3, noise="general", args=(0.5, 0.2))
        return sdesim.solve(sde, np.ones(3), np.linspace(0.0, 1.0, 11), dt=0.01, n_paths=100, seed=1)
    if case == "sphere":
        sde = sgd_sde(SphereModel(10), 0.1, 1e-3)
        return sdesim.solve(sde, np.ones(10), np.array([0.0, 100.0]), dt=1.0, n_paths=100, seed=1)
    if case == "digits":
        model = NormalizedLinearClassifier(load_digits(), batch_size=32)
        sde = sgd_sde(model, 0.1, 1e-3)
        return sdesim.solve(sde, np.full(model.d, 0.1), np.array([0.0, 10.0]), dt=1.0, n_paths=4, seed=1)
    if case == "sgd":
        return run_sgd(SphereModel(10), 0.1, 1e-3, np.ones(10), [0, 100], n_runs=10, seed=1)
    raise SystemExit(f"unknown case {case}")


t = time.perf_counter()
once()
first = time.perf_counter() - t
t = time.perf_counter()
once()
again = time.perf_counter() - t
print(json.dumps({"first_s": first, "again_s": again, "import_s": import_s}))
"""


def _child(case, env):
    out = subprocess.run([sys.executable, "-c", _CHILD, case], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{case}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(case):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SDESIM_CACHE_DIR=os.path.join(tmp, "sdesim"), NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
                   SDESIM_CACHE="1")
        cold = _child(case, env)
        warm = _child(case, env)
    return {"case": case, "cold_s": cold["first_s"], "in_process_s": cold["again_s"], "on_disk_s": warm["first_s"],
            "import_s_cold": cold["import_s"], "import_s_cached": warm["import_s"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=["user", "sphere", "digits", "sgd"])
    ap.add_argument("--out", default="benchmarks/results/bench_compile.json")
    a = ap.parse_args(argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)
    from sdesim.app._io import write_json_atomic
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)  # fail before measuring, not after
    rows = []
    for case in a.cases:
        row = measure(case)
        rows.append(row)
        print(f"{case:7s} cold {row['cold_s']:7.2f} s   in-process {row['in_process_s']:7.3f} s   "
              f"on disk {row['on_disk_s']:7.3f} s")
    write_json_atomic(a.out, {"rows": rows, "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg()), "units": "seconds (wall)"})
    print("->", a.out)


if __name__ == "__main__":
    main()

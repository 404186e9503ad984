"""Where one Euler-Maruyama step of the paper's SDE spends its time, per path, on one thread.

The step of ``sgd_sde(SphereModel(d))`` (no H, the row of ``bench_vs_torchsde.py``) is taken
apart by measuring, each in compiled code and in nanoseconds per path-step (minimum over
``--repeats`` runs; compile time excluded):

* ``philox``: the Philox4x32-10 words for the step's ``d`` normals;
* ``normals``: the ``d`` standard normals themselves (:func:`sdesim.brownian.rng.normals_range`: Philox,
  the ziggurat's vectorised fast path, and the repair of the ~1.5% rejected words);
* ``normals_float32``: the same count of float32 normals, four per Philox call
  (:func:`sdesim.brownian.rng32.normals_range32`; not yet used by ``solve``);
* ``kernel_null_sde``: a whole solve of an SDE whose noise product is ``dW`` itself and whose
  drift is ``-0.1 y``: the normals plus the time loop's own bookkeeping;
* ``sgd_sde``: the whole solve of the paper's SDE on the sphere model;

and the differences (``loop_bookkeeping`` = kernel_null_sde - normals, ``model`` = sgd_sde -
kernel_null_sde). ``sgd_sde_all_threads`` is the same solve on every core (wall time per
path-step), with ``--paths`` paths.

    python benchmarks/profile_step.py [--dims 10 100] [--paths 100] [--out FILE.json]
"""

import argparse
import os
import platform

import numba as nb
import numpy as np

import sdesim
from sdesim.app._io import write_json_atomic

from _timing import best_time
from sdesim.brownian.rng import _counter, normals_range, philox4x32, seed_to_key
from sdesim.brownian.rng32 import normals_range32
from sdesim.normalized import SphereModel, sgd_sde


@nb.njit
def _philox_words(k0, k1, d, reps, bits):
    for r in range(reps):
        for p in range(d // 2):
            c0, c1, c2, c3 = _counter(0, p, r, 7)
            a, b = philox4x32(c0, c1, c2, c3, k0, k1)
            bits[2 * p] = a
            bits[2 * p + 1] = b
    return bits[0]


@nb.njit
def _normals(k0, k1, d, reps, out):
    for r in range(reps):
        normals_range(k0, k1, 0, 0, d, r, 7, out)
    return out[0]


@nb.njit(error_model="numpy")  # (as the Brownian tree draws them: no division-by-zero checks)
def _normals32(k0, k1, d, reps, out):
    for r in range(reps):
        normals_range32(k0, k1, 0, 0, d, r, 7, out)
    return out[0]


def _null_drift(t, y, args, out):
    for i in range(y.size):
        out[i] = -0.1 * y[i]


def _identity_diffusion(t, y, args, out):  # g = I (Euler uses the product below, g dW = dW)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = 1.0 if i == j else 0.0


def _dw_itself(t, y, args, dB, out):
    for i in range(y.size):
        out[i] = dB[i]


def _best(f, repeats):
    return best_time(f, repeats)[0]


def profile(d, paths, steps, repeats, n_threads):
    k0, k1 = seed_to_key(3)
    reps = max(1, 2_000_000 // d)
    bits, out, out32 = np.empty(d + 1, np.uint64), np.empty(d), np.empty(d, np.float32)
    null = sdesim.SDE(_null_drift, _identity_diffusion, dim=d, noise_dim=d, noise="general",
                      diffusion_product=_dw_itself, name="null")
    sphere = sgd_sde(SphereModel(d), 0.1, 1e-3)
    w0 = np.full(d, 1.0)
    solve_paths = max(paths, 1000)
    ts = np.array([0.0, float(steps)])

    def solve(sde, n_paths, threads):
        return lambda: sdesim.solve(sde, w0, ts, dt=1.0, n_paths=n_paths, seed=1, n_threads=threads)

    ns = {
        "philox": _best(lambda: _philox_words(k0, k1, d, reps, bits), repeats) / reps * 1e9,
        "normals": _best(lambda: _normals(k0, k1, d, reps, out), repeats) / reps * 1e9,
        "normals_float32": _best(lambda: _normals32(k0, k1, d, reps, out32), repeats) / reps * 1e9,
        "kernel_null_sde": _best(solve(null, solve_paths, 1), repeats) / (solve_paths * steps) * 1e9,
        "sgd_sde": _best(solve(sphere, solve_paths, 1), repeats) / (solve_paths * steps) * 1e9,
        "sgd_sde_all_threads": _best(solve(sphere, paths, n_threads), repeats) / (paths * steps) * 1e9,
    }
    ns["loop_bookkeeping"] = ns["kernel_null_sde"] - ns["normals"]
    ns["model"] = ns["sgd_sde"] - ns["kernel_null_sde"]
    ns["normals_share_of_sgd_sde"] = ns["normals"] / ns["sgd_sde"]
    return {"d": d, "paths_all_threads": paths, "steps": steps, "ns_per_path_step": ns}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--paths", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default="benchmarks/results/profile_step.json")
    a = ap.parse_args(argv)
    n_threads = os.cpu_count() or 1
    rows = []
    for d in a.dims:
        row = profile(d, a.paths, a.steps, a.repeats, n_threads)
        rows.append(row)
        print(f"d={d:5d}  " + "  ".join(f"{k} {v:.3g}" for k, v in row["ns_per_path_step"].items()))
    write_json_atomic(a.out, {"rows": rows, "threads": n_threads, "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg()), "units": "ns per path-step (min over repeats)"})
    print("->", a.out)


if __name__ == "__main__":
    main()

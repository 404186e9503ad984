"""sdesim's CUDA backend against torchsde on CUDA, same card, same problem, same dtype; and the card's
random-number ceiling.

Problem: the paper's SDE in full form on the sphere model, ``dW = -eta (lam W) dt + eta (s/|W|)(I -
Wbar Wbar^T) dB`` (``SphereModel(100, s=1)``, no H, ``lr = 0.1``, ``wd = 1e-3``, time in SGD steps,
``dt = 1``), Euler-Maruyama, started at the equilibrium norm, ``--steps`` steps, saved at the start
and the end; ``n_paths`` in 1e3..1e6; float32 and float64. One run per row after a warm-up.

* sdesim: ``sdesim.cuda.solve`` (what ``solve(..., device="cuda")`` runs): one kernel, one
  thread per path, every step inside. Timed: upload, output allocation and the kernel
  (``stats["device_s"]``; the copy of the paths to the host is not counted, as torchsde's stay on
  the device). ``kernel_s`` alone is also reported.
* torchsde: ``sdesim.compare.torchsde.SphereSGD`` (matrix-free ``f_and_g_prod``, a ``BrownianInterval``
  with the ``dt`` hint, no autograd) through ``torchsde.sdeint``, all paths in one batch, ys on the
  device; timed to a ``torch.cuda.synchronize``. If that module is missing, an equivalent minimal
  torchsde SDE defined here.
* ceiling: a bare kernel making the very normals a solve consumes (Philox4x32-10 + the ziggurat,
  counter = (tag 0, component, step, path)) and only summing them: normals per second at 1e6
  paths. sdesim's normals consumed per second (``n_paths * steps * 100 / kernel_s``) is reported
  as a fraction of it.

Targets (issue 6): >= 20x torchsde at 1e5 paths, and >= 0.5 of the ceiling at 1e6 paths, each dtype.

    python benchmarks/bench_gpu.py [--quick] [--out benchmarks/results/bench_gpu.json]

Writes JSON and a PNG beside it. Needs a CUDA GPU, numba-cuda, torch (CUDA build) and torchsde.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sdesim  # noqa: E402
import sdesim.cuda as gpu  # noqa: E402
from sdesim.compare.agreement import moment_z  # noqa: E402
from sdesim.normalized import SphereModel, sgd_sde  # noqa: E402

LR, WD, D, S = 0.1, 1e-3, 100, 1.0


# ----------------------------------------------------------------------------- torchsde side
def torch_problem():
    """``(sde_builder(device, dtype), source)``: sdesim's torch backend if present, else a minimal twin."""
    import torch
    import torchsde  # noqa: F401
    try:
        from sdesim.compare import torchsde as tb
        prob = tb.make_problem(SphereModel(D, s=S), LR, WD)
        return (lambda dev, dt: prob.torchsde(dev, dt)), "sdesim.compare.torchsde.SphereSGD"
    except ImportError:
        pass

    class Sphere(torch.nn.Module):  # same SDE, matrix-free g dB
        noise_type, sde_type = "general", "ito"

        def f(self, t, y):
            return y * (-LR * WD)

        def g_prod(self, t, y, v):
            r2 = (y * y).sum(-1, keepdim=True)
            return (LR * S) * (v - ((y * v).sum(-1, keepdim=True) / r2) * y) / r2.sqrt()

        def f_and_g_prod(self, t, y, v):
            return self.f(t, y), self.g_prod(t, y, v)

    return (lambda dev, dt: Sphere()), "bench_gpu.Sphere (minimal torchsde twin)"


def _sync(torch, dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_torchsde(build, w0, n_paths, n_steps, dtype, seed, device="cuda"):
    import torch
    import torchsde
    dev = torch.device(device)
    tdt = getattr(torch, dtype)
    sde = build(dev, tdt)
    y0 = torch.as_tensor(np.broadcast_to(w0, (n_paths, D)).copy(), dtype=tdt, device=dev)
    ts = torch.tensor([0.0, float(n_steps)], dtype=torch.float64)  # host times: no syncs in the loop
    _sync(torch, dev)
    t = time.perf_counter()
    bm = torchsde.BrownianInterval(t0=0.0, t1=float(n_steps), size=(n_paths, D), dt=1.0, entropy=seed,
                                   device=dev, dtype=tdt, levy_area_approximation="none")
    with torch.no_grad():
        ys = torchsde.sdeint(sde, y0, ts, bm=bm, method="euler", dt=1.0)
    _sync(torch, dev)
    el = time.perf_counter() - t
    norms = ys[-1].norm(dim=-1).double().cpu().numpy()
    del ys, bm, y0
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return el, norms


def _free_torch():
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- sdesim side
def run_sdesim(sde, w0, n_paths, n_steps, dtype, seed, tpb, grid_threads=None):
    ts = np.array([0.0, float(n_steps)])
    sol = gpu.solve(sde, w0, ts, dt=1.0, n_paths=n_paths, seed=seed, dtype=dtype, threads_per_block=tpb,
                    grid_threads=grid_threads)
    norms = np.linalg.norm(sol.ys[-1].astype(np.float64), axis=-1)
    return sol.stats, norms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1e3..1e5 paths, 20 steps")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--paths", default="1e3,1e4,1e5,1e6")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--tpb", type=int, default=gpu.THREADS_PER_BLOCK,
                    help="threads per block (sdesim), one thread per path, for the main rows")
    ap.add_argument("--sweep", default="64,128,256,64x4,128x2,128x4,256x2",
                    help="launch configurations also timed at the largest n_paths ('' for none): T = T threads "
                         "per block, one thread per path; TxB = T threads per block and B blocks per "
                         "multiprocessor in all (grid_threads), each thread striding over paths")
    ap.add_argument("--no-torch", action="store_true", help="skip torchsde")
    ap.add_argument("--torch-device", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--allow-simulator", action="store_true", help=argparse.SUPPRESS)  # smoke tests only
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "bench_gpu.json"))
    a = ap.parse_args()
    if a.quick:
        a.paths, a.steps = "1e3,1e4,1e5", 20
    paths = [int(float(p)) for p in a.paths.split(",")]
    dtypes = a.dtypes.split(",")
    if not gpu.available() or (gpu.simulated() and not a.allow_simulator):
        raise SystemExit("bench_gpu needs a CUDA GPU (and not the simulator)")
    if gpu.simulated():
        name, n_sm = "numba CUDA simulator", 1
    else:
        from numba import cuda
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        n_sm = int(dev.MULTIPROCESSOR_COUNT)

    model = SphereModel(D, s=S)
    sde = sgd_sde(model, LR, WD)
    w_inf = (LR * model.tau / (2 * WD)) ** 0.25  # equilibrium norm: |W|^4 = eta tau / (2 lam)
    w0 = np.full(D, w_inf / np.sqrt(D))

    versions = {"python": platform.python_version(), "numpy": np.__version__, "sdesim": sdesim.__version__}
    import numba
    versions["numba"] = numba.__version__
    try:
        import importlib.metadata as md
        versions["numba-cuda"] = md.version("numba-cuda")
    except Exception:
        versions["numba-cuda"] = None
    build = None
    if not a.no_torch:
        try:
            import torch
            import torchsde
            versions["torch"], versions["torchsde"] = torch.__version__, torchsde.__version__
            build, torch_source = torch_problem()
        except ImportError as exc:
            print(f"torchsde unavailable ({exc}): sdesim rows only", flush=True)

    # the card's random-number ceiling, at the largest size
    p_max = max(paths)
    gpu.normals_per_second(min(1024, p_max), 2, D)  # compile
    ceiling, ceiling_s = gpu.normals_per_second(p_max, a.steps, D, repeats=2, threads_per_block=a.tpb)
    print(f"{name}: bare Philox+ziggurat kernel {ceiling:.3e} normals/s ({p_max} paths x {a.steps} steps x {D})",
          flush=True)

    rows = []
    for dtype in dtypes:
        t = time.perf_counter()
        run_sdesim(sde, w0, 64, 2, dtype, 0, a.tpb)  # compile
        compile_s = time.perf_counter() - t
        if build is not None:
            run_torchsde(build, w0, 1000, 3, dtype, 0, a.torch_device)  # warm-up (cuBLAS/cuRAND handles, allocator)
        for n in paths:
            st, norms_a = run_sdesim(sde, w0, n, a.steps, dtype, 1, a.tpb)
            consumed = n * a.steps * D
            row = {"dtype": dtype, "n_paths": n, "n_steps": a.steps, "threads_per_block": a.tpb,
                   "sdesim": {"device_s": st["device_s"], "kernel_s": st["kernel_s"], "run_s_with_copy": st["run_s"],
                              "compile_s": compile_s,
                              "path_steps_per_s": n * a.steps / st["device_s"],
                              "normals_per_s": consumed / st["kernel_s"],
                              "fraction_of_ceiling": consumed / st["kernel_s"] / ceiling}}
            msg = (f"{dtype} {n:>8} paths: sdesim {st['device_s']:.4f} s (kernel {st['kernel_s']:.4f} s, "
                   f"{row['sdesim']['fraction_of_ceiling']:.2f} of ceiling)")
            if build is not None:
                try:
                    el, norms_b = run_torchsde(build, w0, n, a.steps, dtype, 1, a.torch_device)
                except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is one
                    row["torchsde"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                    msg += f"; torchsde failed: {type(exc).__name__}"
                    _free_torch()
                else:
                    row["torchsde"] = {"run_s": el, "path_steps_per_s": n * a.steps / el}
                    row["speedup_vs_torchsde"] = el / st["device_s"]
                    if n >= 100:
                        zm, zv = moment_z(norms_a[:, None], norms_b[:, None])
                        row["agreement_norm_T"] = {"z_mean": float(zm[0]), "z_var": float(zv[0])}
                    msg += f"; torchsde {el:.4f} s; speedup {row['speedup_vs_torchsde']:.1f}x"
            print(msg, flush=True)
            rows.append(row)
        for conf in [x.strip() for x in a.sweep.split(",") if x.strip()]:
            tpb, _, per_sm = conf.partition("x")
            tpb = int(tpb)
            grid = n_sm * int(per_sm) * tpb if per_sm else None
            st, _ = run_sdesim(sde, w0, p_max, a.steps, dtype, 1, tpb, grid)
            frac = p_max * a.steps * D / st["kernel_s"] / ceiling
            rows.append({"dtype": dtype, "n_paths": p_max, "n_steps": a.steps, "threads_per_block": tpb,
                         "grid_threads": grid, "sweep": conf,
                         "sdesim": {"device_s": st["device_s"], "kernel_s": st["kernel_s"],
                                    "fraction_of_ceiling": frac}})
            print(f"{dtype} {p_max} paths, launch {conf} ({grid or 'one per path'} threads): kernel "
                  f"{st['kernel_s']:.4f} s ({frac:.2f} of ceiling)", flush=True)

    targets = {}
    for dtype in dtypes:
        main_rows = {r["n_paths"]: r for r in rows if r["dtype"] == dtype and not r.get("sweep")}
        r5 = main_rows.get(100_000)
        r6 = main_rows.get(max(paths))
        if r5 is not None and "speedup_vs_torchsde" in r5:
            targets[f"{dtype}: >= 20x torchsde at 1e5 paths"] = {"value": r5["speedup_vs_torchsde"],
                                                                  "met": r5["speedup_vs_torchsde"] >= 20}
        if r6 is not None:
            cands = [r for r in rows if r["dtype"] == dtype and r["n_paths"] == max(paths)]
            best = max(cands, key=lambda r: r["sdesim"]["fraction_of_ceiling"])
            targets[f"{dtype}: >= 0.5 of the RNG ceiling at {max(paths):,} paths"] = {
                "value": r6["sdesim"]["fraction_of_ceiling"],
                "best_launch": best.get("sweep") or str(best["threads_per_block"]),
                "best_value": best["sdesim"]["fraction_of_ceiling"],
                "met": r6["sdesim"]["fraction_of_ceiling"] >= 0.5,
                "met_with_best_launch": best["sdesim"]["fraction_of_ceiling"] >= 0.5}
    result = {
        "what": (f"sphere model d={D}, no H, lr={LR}, wd={WD}, dt=1, Euler-Maruyama, {a.steps} steps, "
                 "saved at start and end; one run per row after a warm-up; sdesim device_s = upload + "
                 "allocation + kernel (no copy back), torchsde run_s = BrownianInterval + sdeint to a sync"),
        "device": name, "versions": versions,
        "torchsde_problem": torch_source if build is not None else None, "torch_device": a.torch_device,
        "ceiling": {"normals_per_s": ceiling, "seconds": ceiling_s, "n_paths": p_max, "n_steps": a.steps,
                    "noise_dim": D},
        "rows": rows, "targets": targets,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(targets, indent=1))
    try:
        plot(result, os.path.splitext(a.out)[0] + ".png")
    except ImportError:
        print("matplotlib missing: no plot")
    print(f"wrote {a.out}")


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for dtype, ls in (("float32", "-"), ("float64", "--")):
        rows = [r for r in result["rows"] if r["dtype"] == dtype and not r.get("sweep")]
        if not rows:
            continue
        n = [r["n_paths"] for r in rows]
        ax1.loglog(n, [r["sdesim"]["device_s"] for r in rows], "o" + ls, color="C0", label=f"sdesim CUDA {dtype}")
        tr = [r for r in rows if "run_s" in r.get("torchsde", {})]
        if tr:
            ax1.loglog([r["n_paths"] for r in tr], [r["torchsde"]["run_s"] for r in tr], "s" + ls, color="C1",
                       label=f"torchsde {result['torch_device']} {dtype}")
        ax2.semilogx(n, [r["sdesim"]["fraction_of_ceiling"] for r in rows], "o" + ls, color="C0", label=dtype)
    ax1.set_xlabel("paths")
    ax1.set_ylabel("seconds")
    ax1.set_title(f"sphere d={D}, {result['rows'][0]['n_steps']} EM steps on {result['device']}", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax2.set_xlabel("paths")
    ax2.set_ylabel("normals consumed/s / bare Philox kernel")
    ax2.set_ylim(0, 1.05)
    ax2.set_title(f"fraction of the RNG ceiling ({result['ceiling']['normals_per_s']:.2e} normals/s)", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

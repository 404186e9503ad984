"""sdesim against diffrax (JAX on the CPU) on the paper's SDE: throughput side by side, and agreement.

The sphere model with no loss, full form, ``dW = -eta lam W dt + eta S(W) dB`` with the matrix-free
tangent noise ``S(W) v = (s / |W|) (v - What (What . v))`` (``noise_dim = d``), Euler-Maruyama,
``dt = 1`` (time in SGD steps), started at the equilibrium norm; ``d`` in 10/100/1000, ``n_paths`` in
100/10,000, float64 and float32.

diffrax gets its fast set-up: ``jax.jit(jax.vmap(diffeqsolve))`` over paths, ``Euler()``, a
``ControlTerm`` whose vector field returns a ``lineax.FunctionLinearOperator`` (matrix-free, no dense
``g``), ``SaveAt(t1=True)``, and either ``UnsafeBrownianPath`` (its fastest Brownian motion: one normal
draw per step, not refinement-consistent) or ``VirtualBrownianTree`` (refinement-consistent, as
sdesim's path is; ``tol = dt / 2``). XLA uses every core; sdesim runs on as many threads. Compile
(jit) time and sdesim's kernel compile are excluded (a warm-up run first). Per row: paths x steps
per second (the best of ``--repeats`` runs with new seeds), the ratio sdesim / diffrax, and the
agreement of the final ensembles (z-scores of mean and variance of |W_T| and eta_eff = eta / |W_T|^2,
KS p-value of |W_T|) between sdesim and diffrax-Unsafe. sdesim's float32 rows are native float32
(``brownian_dtype="float32"``: the float32 Brownian path, as diffrax draws float32 normals there).

    pip install "sdesim[jax]"      # jax, diffrax, lineax (not needed by the tests)
    python benchmarks/bench_vs_diffrax.py [--quick] [--out benchmarks/results/bench_vs_diffrax]

Writes JSON (atomically) and a PNG.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sdesim  # noqa: E402
from sdesim.app._io import write_json_atomic  # noqa: E402
from sdesim.compare.agreement import ks, moment_z  # noqa: E402
from sdesim.normalized import SphereModel, sgd_sde, theory  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    import diffrax
    import lineax
except ImportError as exc:  # pragma: no cover
    raise SystemExit(f"this benchmark needs the jax extra (pip install 'sdesim[jax]'): {exc}")

jax.config.update("jax_enable_x64", True)
LR, WD, S = 0.1, 1e-3, 1.0


def diffrax_solver(d, n_steps, dtype, tree):
    """``run(keys, w0) -> W_T`` (jitted, vmapped over the keys' paths)."""
    dt_ = jnp.dtype(dtype)
    t1 = float(n_steps)

    def drift(t, y, args):
        return -LR * WD * y

    def noise(t, y, args):
        r = jnp.sqrt(jnp.sum(y * y))
        yhat = y / r

        def apply(v):
            return (LR * S / r) * (v - yhat * jnp.dot(yhat, v))
        return lineax.FunctionLinearOperator(apply, jax.ShapeDtypeStruct((d,), dt_))

    def one(key, w0):
        if tree:
            bm = diffrax.VirtualBrownianTree(0.0, t1, tol=0.5, shape=jax.ShapeDtypeStruct((d,), dt_), key=key)
        else:
            bm = diffrax.UnsafeBrownianPath(shape=jax.ShapeDtypeStruct((d,), dt_), key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(noise, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, t1, dt0=1.0, y0=w0, saveat=diffrax.SaveAt(t1=True),
                                  max_steps=n_steps + 1, adjoint=diffrax.DirectAdjoint())
        return sol.ys[0]

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def run_diffrax(fn, n_paths, w0, seed, dtype):
    keys = jax.random.split(jax.random.PRNGKey(seed), n_paths)
    t = time.perf_counter()
    out = fn(keys, jnp.asarray(w0, dtype=dtype)).block_until_ready()
    return time.perf_counter() - t, np.asarray(out, dtype=np.float64)


def run_sdesim(sde, n_paths, w0, n_steps, seed, dtype, threads):
    t = time.perf_counter()
    sol = sdesim.solve(sde, w0, [0.0, float(n_steps)], dt=1.0, n_paths=n_paths, seed=seed, dtype=dtype,
                       brownian_dtype=dtype, n_threads=threads)
    return time.perf_counter() - t, sol.ys[-1].astype(np.float64)


def agreement(a, b):
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    out = {}
    for name, fa, fb in (("norm", na, nb), ("eta_eff", LR / na**2, LR / nb**2)):
        zm, zv = moment_z(fa, fb)
        out[name] = {"z_mean": float(zm), "z_var": float(zv)}
    out["norm"]["ks_p"] = ks(na, nb)[1]
    return out


def best(fn, repeats):
    runs = [fn(r) for r in range(repeats)]
    return min(r[0] for r in runs), runs[-1][1]


def row(d, n_paths, dtype, n_steps, repeats, threads):
    model = SphereModel(d, s=S)
    sde = sgd_sde(model, LR, WD)
    norm_eq = (theory.G_inf(LR * WD, model.tau) * LR**2) ** 0.25  # |W|^4 = G eta^2 at equilibrium
    w0 = np.full(d, norm_eq / np.sqrt(d))
    res = {"d": d, "n_paths": n_paths, "dtype": dtype, "n_steps": n_steps}
    run_sdesim(sde, 4, w0, 2, 0, dtype, threads)  # compile
    secs, ys_sd = best(lambda r: run_sdesim(sde, n_paths, w0, n_steps, 100 + r, dtype, threads), repeats)
    res["sdesim_path_steps_per_s"] = n_paths * n_steps / secs
    for label, tree in (("unsafe", False), ("tree", True)):
        # the tree is far slower: it runs (and is timed on) fewer steps, its throughput per path-step
        steps = max(5, n_steps // 20) if tree else n_steps
        res[f"diffrax_{label}_steps"] = steps
        fn = diffrax_solver(d, steps, dtype, tree)
        t = time.perf_counter()
        run_diffrax(fn, n_paths, w0, 0, dtype)  # jit compile + first run
        res[f"diffrax_{label}_compile_and_first_s"] = time.perf_counter() - t
        secs, ys_dx = best(lambda r: run_diffrax(fn, n_paths, w0, 200 + r, dtype), repeats)
        res[f"diffrax_{label}_path_steps_per_s"] = n_paths * steps / secs
        res[f"ratio_vs_diffrax_{label}"] = res["sdesim_path_steps_per_s"] / res[f"diffrax_{label}_path_steps_per_s"]
        if label == "unsafe":
            res["agreement"] = agreement(ys_sd, ys_dx)
    print(f"d={d:5d} paths={n_paths:6d} {dtype:7s} steps={n_steps:5d}: sdesim {res['sdesim_path_steps_per_s']:.3g}/s, "
          f"diffrax unsafe {res['diffrax_unsafe_path_steps_per_s']:.3g}/s (x{res['ratio_vs_diffrax_unsafe']:.1f}), "
          f"tree {res['diffrax_tree_path_steps_per_s']:.3g}/s (x{res['ratio_vs_diffrax_tree']:.1f}); "
          f"agreement |z| <= {max(abs(v) for a in res['agreement'].values() for k, v in a.items() if k != 'ks_p'):.2f}, "
          f"KS p {res['agreement']['norm']['ks_p']:.2f}", flush=True)
    return res


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, dtype in zip(axes, ("float64", "float32")):
        for d in sorted({r["d"] for r in rows}):
            rs = [r for r in rows if r["d"] == d and r["dtype"] == dtype]
            if not rs:
                continue
            x = [r["n_paths"] for r in rs]
            for key, style in (("sdesim", "o-"), ("diffrax_unsafe", "s--"), ("diffrax_tree", "^:")):
                ax.loglog(x, [r[f"{key}_path_steps_per_s"] for r in rs], style, label=f"{key}, d={d}")
        ax.set_title(f"sphere model, Euler, {dtype}")
        ax.set_xlabel("paths")
        ax.set_ylabel("path-steps per second")
        ax.legend(fontsize=6)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="benchmarks/results/bench_vs_diffrax")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)  # before measuring
    sizes = [(10, 100), (100, 100), (100, 10_000)] if a.quick else \
        [(10, 100), (10, 10_000), (100, 100), (100, 10_000), (1000, 100), (1000, 2000)]
    rows = []
    for dtype in ("float64", "float32"):
        for d, n in sizes:
            n_steps = int(min(2000, max(20, 2e7 / (n * d))))  # ~2e7 state entries advanced per run
            rows.append(row(d, n, dtype, n_steps, a.repeats, a.threads))
    write_json_atomic(a.out + ".json", {
        "rows": rows, "lr": LR, "wd": WD, "s": S, "threads": a.threads, "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "load_average": list(os.getloadavg()),
        "versions": {"jax": jax.__version__, "diffrax": diffrax.__version__, "sdesim": sdesim.__version__}})
    plot(rows, a.out + ".png")
    print("->", a.out + ".json", a.out + ".png")


if __name__ == "__main__":
    main()

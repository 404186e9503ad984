"""Data models batched across paths: the digits classifier's sgd_sde on the block kernel, against
the per-path kernel and against the GEMM rate of the same machine.

Per dtype, on one thread (BLAS held to one thread), compile excluded, best of ``--repeats``:

* path-steps per second of ``sgd_sde(NormalizedLinearClassifier(digits))``, Euler, ``dt = 1``,
  on the block kernel (the model's ``block_paths`` per GEMM: 8 in float64, 32 in float32) and on the
  per-path kernel;
* the flops of a path-step, counted as the matrix products each kernel computes: the logits
  ``X (n, p) @ W (p, K)`` (``2 n p K``) and the weighted sums back. The block kernel needs one,
  ``X^T (p, n) @ R c (n, K)`` (``2 n p K``: the Euler increment's drift and noise product summed
  in one set of weights), 3.50 Mflop per path-step in all; the per-path kernel two,
  ``X^T @ [R c0, R c1] (n, 2K)`` (``4 n p K``), 5.26 Mflop. ``n = 1348`` samples (with the bias
  column), ``p = 65``, ``K = 10``;
* the GEMM rate: NumPy's ``@`` on the block kernel's shapes (``(n, p) @ (p, P K)`` and
  ``(p, n) @ (n, P K)`` for a block of ``P`` paths), in the same run, measured before and after
  the kernels' timings, the highest of the rates at the block's own ``P`` and at ``P = 32``;
* the fraction of the GEMM rate each kernel reaches (its flop rate so counted / the GEMM rate);

the same for a grid of rates, one ``(lr, wd)`` pair per path (``sdesim.per_path``: each block
reads its paths' own rates);

and the weight-normalized MLP (``m = 8`` hidden units), per dtype (its block form in float32 for
float32 states; one path at a time it computes in float64), block form against one path at a time, with
its flops counted as its products: the pre-activations ``X U`` (``2 n p m``), the logits ``H A``
(``2 n m K``), ``R A^T`` (``2 n K m``) and the weighted sums back, ``(Q c)^T X`` (``2 n p m``) in
the block form and ``[Q c0, Q c1]^T X`` (``4 n p m``) one path at a time: 3.24 and 4.64 Mflop per
path-step; its GEMM rate is NumPy's on the block form's two large products (``(n, p) @ (p, P m)``
and ``(P m, n) @ (n, p)``, before and after its timings, the highest of ``P`` = its block size, 16, and 32).

    python benchmarks/bench_blocks.py [--paths 256] [--steps 20] [--out FILE.json]
"""

import argparse
import os
import platform
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sdesim  # noqa: E402
import sdesim.runners.cpu as cpu  # noqa: E402
from sdesim.app._io import write_json_atomic  # noqa: E402
from sdesim.normalized import NormalizedLinearClassifier, WeightNormMLP, load_digits, sgd_sde  # noqa: E402
from sdesim.runners.block_kernel import BLOCK_PATHS, block_size  # noqa: E402

from _timing import best_time  # noqa: E402


def gemm_rate(X, K, dtype, repeats, P):
    """Flop rate of the two products of a block of ``P`` paths (one thread)."""
    n, p = X.shape
    Xd = X.astype(dtype)
    W = np.random.default_rng(0).random((p, P * K)).astype(dtype)
    R = np.random.default_rng(1).random((n, P * K)).astype(dtype)
    secs, _ = best_time(lambda: (Xd @ W, Xd.T @ R), repeats)
    return 4 * n * p * K * P / secs


def mlp_gemm_rate(X, hidden, repeats, P, dtype):
    """Flop rate of the MLP's two large products for a block of ``P`` paths (one thread)."""
    n, p = X.shape
    Xd = X.astype(dtype)
    U = np.random.default_rng(0).random((p, P * hidden)).astype(dtype)
    Q = np.random.default_rng(1).random((n, P * hidden)).astype(dtype)
    secs, _ = best_time(lambda: (Xd @ U, Q.T @ Xd), repeats)
    return 4 * n * p * hidden * P / secs


def gemm_rates(rate, P):
    """The GEMM rates a kernel is measured against, on its own block's shapes (``P`` paths) and on
    ``BLOCK_PATHS`` paths (wider products, usually the faster GEMM) -> ``{P: rate}``."""
    with threadpool_limits(1):
        return {int(size): rate(size) for size in sorted({P, BLOCK_PATHS})}


def reference_gemm_rate(before, after):
    """The reference GEMM rate: the highest of the rates measured before and after the kernel's
    timings (so that a slow moment of the shared machine during either does not lower it) ->
    ``(rate, {P: rate})``."""
    rates = {P: max(before[P], after[P]) for P in before}
    return max(rates.values()), rates


def finish_row(row, flops, gemm, gemm_before):
    """Fill ``row``'s block/per-path ratio, reference GEMM rate (``gemm`` measured again now, against
    ``gemm_before``) and each kernel's fraction of it, from its ``*_path_steps_per_s``."""
    row["block_over_per_path"] = row["block_path_steps_per_s"] / row["per_path_path_steps_per_s"]
    row["gemm_flops_per_s"], row["gemm_flops_per_s_by_block_paths"] = reference_gemm_rate(
        gemm_before, gemm_rates(gemm, row["block_paths"]))
    for mode in ("block", "per_path"):
        row[f"{mode}_fraction_of_gemm_rate"] = row[f"{mode}_path_steps_per_s"] * flops[mode] / row["gemm_flops_per_s"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/bench_blocks.json")
    a = ap.parse_args(argv)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    model = NormalizedLinearClassifier(load_digits(), batch_size=32)
    sde = sgd_sde(model, 0.1, 1e-3)
    w0 = model.random_init(norm=1.0, seed=0)
    n, p = model.params.X.shape
    K = model.params.Y.shape[1]
    flops = {"block": 4 * n * p * K, "per_path": 6 * n * p * K}  # (see the module's docstring)
    ts = np.array([0.0, float(a.steps)])
    rows = []
    eligible = cpu.block_eligible
    rng = np.random.default_rng(0)  # a grid of (lr, wd) pairs, one per path
    grid = sgd_sde(model, sdesim.per_path(rng.uniform(0.02, 0.3, a.paths)), sdesim.per_path(rng.uniform(1e-4, 1e-2, a.paths)))
    for dtype in ("float64", "float32"):
        row = {"model": "NormalizedLinearClassifier", "dtype": dtype, "flops_per_path_step": flops, "paths": a.paths, "steps": a.steps}
        row["block_paths"] = block_size(sde, dtype, False)
        gemm = lambda P: gemm_rate(model.params.X, K, dtype, 5 * a.repeats, P)  # noqa: E731
        gemm_before = gemm_rates(gemm, row["block_paths"])
        for mode in ("block", "per_path"):
            for which, solved in (("", sde), ("grid_", grid)):
                cpu.block_eligible = eligible if mode == "block" else (lambda plan: False)
                try:
                    secs, sol = best_time(lambda: sdesim.solve(solved, w0, ts, dt=1.0, n_paths=a.paths, seed=1,
                                                               n_threads=1, dtype=dtype, brownian_dtype=dtype), a.repeats)
                finally:
                    cpu.block_eligible = eligible
                assert sol.stats["paths_per_block"] == (block_size(solved, dtype, False) if mode == "block" else 1)
                row[f"{which}{mode}_path_steps_per_s"] = a.paths * a.steps / secs
        row["grid_block_over_per_path"] = row["grid_block_path_steps_per_s"] / row["grid_per_path_path_steps_per_s"]
        finish_row(row, flops, gemm, gemm_before)
        rows.append(row)
        print(f"{dtype}: block {row['block_path_steps_per_s']:.4g}/s ({row['block_fraction_of_gemm_rate']:.2f} of "
              f"GEMM), per path {row['per_path_path_steps_per_s']:.4g}/s ({row['per_path_fraction_of_gemm_rate']:.2f}),"
              f" GEMM {row['gemm_flops_per_s'] / 1e9:.1f} Gflop/s, block/per-path {row['block_over_per_path']:.2f};"
              f" a grid of rates per path: block {row['grid_block_path_steps_per_s']:.4g}/s, per path "
              f"{row['grid_per_path_path_steps_per_s']:.4g}/s ({row['grid_block_over_per_path']:.2f}x)", flush=True)
    # the MLP (8 hidden units): its block form against one path at a time, and against the GEMM rate
    mlp = WeightNormMLP(load_digits(), batch_size=32)
    sde_m, w0_m = sgd_sde(mlp, 0.1, 1e-3), mlp.random_init(norm=1.0, seed=0)
    hidden = mlp.params.top.shape[0]
    flops_m = {"block": 4 * n * p * hidden + 4 * n * hidden * K, "per_path": 6 * n * p * hidden + 4 * n * hidden * K}
    for dtype in ("float64", "float32"):
        row = {"model": f"WeightNormMLP(hidden={hidden})", "dtype": dtype, "paths": a.paths, "steps": a.steps,
               "flops_per_path_step": flops_m, "block_paths": block_size(sde_m, dtype, False)}
        gemm = lambda P: mlp_gemm_rate(model.params.X, hidden, 5 * a.repeats, P, dtype)  # noqa: E731
        gemm_before = gemm_rates(gemm, row["block_paths"])
        for mode in ("block", "per_path"):
            cpu.block_eligible = eligible if mode == "block" else (lambda plan: False)
            try:
                secs, _ = best_time(lambda: sdesim.solve(sde_m, w0_m, ts, dt=1.0, n_paths=a.paths, seed=1, n_threads=1,
                                                         dtype=dtype, brownian_dtype=dtype), a.repeats)
            finally:
                cpu.block_eligible = eligible
            row[f"{mode}_path_steps_per_s"] = a.paths * a.steps / secs
        finish_row(row, flops_m, gemm, gemm_before)
        rows.append(row)
        print(f"MLP {dtype}: block {row['block_path_steps_per_s']:.4g}/s ({row['block_fraction_of_gemm_rate']:.2f} of "
              f"GEMM), per path {row['per_path_path_steps_per_s']:.4g}/s ({row['per_path_fraction_of_gemm_rate']:.2f}),"
              f" GEMM {row['gemm_flops_per_s'] / 1e9:.1f} Gflop/s, block/per-path {row['block_over_per_path']:.2f}",
              flush=True)
    write_json_atomic(a.out, {"rows": rows, "threads": 1, "max_block_paths": BLOCK_PATHS,
                              "machine": platform.processor() or platform.machine(),
                              "load_average": list(os.getloadavg())})
    print("->", a.out)


if __name__ == "__main__":
    main()

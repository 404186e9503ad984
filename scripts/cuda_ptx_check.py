"""Compile sdesim's CUDA kernels to PTX without a GPU: typing and lowering of the real CUDA target.

The CUDA simulator runs kernels as Python and checks no types; this compiles every kernel the
CUDA backend builds for a set of SDEs (the core's reference SDEs, the sphere model) through Numba's
CUDA target and NVVM, as a GPU run would, and reports the PTX size and per-thread local memory.
Needs numba-cuda and NVVM (``pip install "numba-cuda[cu13]"`` or ``[cu12]``), no driver.

    python scripts/cuda_ptx_check.py [--cc 9.0]
"""

import argparse
import re
import sys
import time

import numba
import numpy as np
from numba import cuda

import sdesim
from sdesim import reference as ref
from sdesim.cuda.kernel import build_kernel
from sdesim.cuda.rng import build_normals_kernel
from sdesim.normalized import SphereModel, sgd_sde
from sdesim.solvers import get_solver


def signature(sde, dtype, save_w, n_out, T=3):
    dt_ = np.dtype(dtype)
    host = [np.zeros((1, sde.dim), dt_), np.int64(0), np.int64(1), np.int64(0), 0.0, 0.1, np.int64(5), np.int64(16),
            np.zeros(T, np.int64), np.zeros((60, 2), np.uint32), np.zeros(60), 0.3,
            np.zeros(256, np.uint64), np.zeros(256), np.zeros(256), sde.args,
            np.zeros((T, 1, n_out), dt_), np.zeros((T, 1, sde.noise_dim) if save_w else (1, 1, 1)),
            np.zeros(1, np.int64)]
    return tuple(numba.typeof(x) for x in host)


def local_bytes(ptx):
    return sum(int(n) for n in re.findall(r"\.local \.align \d+ \.b8 \s*__local_depot\d+\[(\d+)\]", ptx))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="9.0", help="compute capability (default 9.0: H100/H200)")
    a = ap.parse_args()
    cc = tuple(int(x) for x in a.cc.split("."))
    # device functions ask the driver for the current device's compute capability: answer for it
    import numba.cuda.dispatcher as dispatcher
    dispatcher.get_current_device = lambda: type("Device", (), {"compute_capability": cc})()
    sphere = sgd_sde(SphereModel(100, s=1.0), 0.1, 1e-3)
    sphere_h = sgd_sde(SphereModel(8, s=1.0, H=np.diag(np.linspace(0.1, 1.0, 8))), 0.1, 1e-3)
    cases = [(sphere_h, "euler"), (ref.gbm, "euler"), (ref.gbm, "milstein"), (ref.gbm_analytic, "milstein"), (ref.ou, "euler"),
             (ref.lin_scalar, "euler"), (ref.lin_scalar, "milstein"), (ref.lin_commutative, "euler"),
             (ref.lin_commutative, "milstein"), (ref.noncommutative, "euler"), (sphere, "euler")]
    failures = 0
    for sde, method in cases:
        for dtype in ("float64", "float32"):
            for max_depth, save_w in ((15, False), (15, True), (23, True)):
                if (max_depth, save_w) != (15, False) and sde is sphere and dtype == "float32":
                    continue
                t = time.perf_counter()
                label = f"{sde.name:<20} {method:<9} {dtype} max_depth={max_depth} save_w={int(save_w)}"
                try:
                    kern = build_kernel(sde, get_solver(method), dtype=dtype, max_depth=max_depth, store_state=True,
                                        save_w=save_w)
                    ptx, _ = cuda.compile_ptx(kern.py_func, signature(sde, dtype, save_w, sde.dim), cc=cc)
                    print(f"ok   {label}  {len(ptx) // 1024} KiB PTX, local {local_bytes(ptx)} B/thread, "
                          f"{time.perf_counter() - t:.1f} s", flush=True)
                except Exception as exc:  # report every failure, then exit non-zero
                    failures += 1
                    print(f"FAIL {label}: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
    # a reduce-mode kernel with a functional
    @numba.njit
    def norm2(t, y, args, out):
        acc = 0.0
        for i in range(y.size):
            acc += y[i] * y[i]
        out[0] = acc

    kern = build_kernel(sphere, get_solver("euler"), dtype="float32", max_depth=15, store_state=False,
                        save_w=False, functional=norm2, n_functional=1)
    ptx, _ = cuda.compile_ptx(kern.py_func, signature(sphere, "float32", False, 1), cc=cc)
    print(f"ok   sphere functional reduce float32: {len(ptx) // 1024} KiB PTX")
    nk = build_normals_kernel()
    sig = tuple(numba.typeof(x) for x in (np.int64(1), np.int64(1), np.int64(1), np.uint32(1), np.uint32(1),
                                          np.zeros(256, np.uint64), np.zeros(256), np.zeros(256), np.zeros(1)))
    ptx, _ = cuda.compile_ptx(nk.py_func, sig, cc=cc)
    muls = sorted(set(re.findall(r"\bmul\.[a-z0-9.]+", ptx)))
    print(f"ok   bare normals kernel: {len(ptx) // 1024} KiB PTX; multiplies used: {muls}")
    if failures:
        sys.exit(f"{failures} kernel(s) failed to compile")


if __name__ == "__main__":
    main()

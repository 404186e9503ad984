"""The CUDA backend (``solve(..., device="cuda")``) under Numba's CUDA simulator, in CI, on the CPU.

The simulator must be switched on before ``numba.cuda`` is first imported, so the checks run in a
child process (``python tests/test_cuda_sim.py``, ``NUMBA_ENABLE_CUDASIM=1``) that prints one JSON
record per check; the rest of the suite never sees the simulator. The same checks run on a real GPU
with ``python tests/test_cuda_sim.py --gpu`` (``scripts/gpu_check.sh``). Sizes are small (the
simulator runs a Python thread per CUDA thread). What is checked:

* the device's normals are the CPU backend's, bitwise (accepted draws, wedge rejections, the tail;
  tags 0 and 3), and so are the Brownian tree's node draws (per-depth keys, node counters with
  negative indices, cell words, high index bits, odd starts);
* same seed, same Brownian path as the CPU backend (the tree of :mod:`sdesim.brownian.tree`, read
  at absolute times): ``ws`` bitwise equal to the tree's definition (its pure-Python walk, every
  operation rounded on its own) and to the CPU's to rounding (the compiled CPU kernel may contract
  the splits into multiply-adds), at ``dt = 0.1`` (step depth 16),
  ``dt = 1``, a continuation start ``ts[0] = 3 dt``, a negative start crossing a top node, steps
  wider than a top node (``dt = 8192``, summed top nodes), a ``bm=`` of another unit in the family;
  states equal to rounding (float64: 1e-12 relative; float32: 1e-5): Euler-Maruyama on diagonal
  (GBM) and matrix (commutative linear) noise and on the sphere model's full-form SDE (dim 100,
  matrix-free noise product), Milstein on diagonal (derivative-free), scalar and commutative noise;
  float32 on the sphere model;
* results do not depend on threads per block or on a grid smaller than the number of paths;
  per-path ``y0``; ``reduce``/``functional`` equal to reducing the stored paths; ``on_nonfinite``
  flags the CPU's paths and ``"raise"`` raises;
* agreement in distribution: GBM and OU against their exact Euler-Maruyama moments, the sphere
  model against an independent CPU ensemble (|z| < 4);
* clear errors: off-grid save times and an off-grid ``ts[0]``, Milstein for general noise,
  ``levy_substeps``, the data models (batched GEMM), allocating user functions (the polar SDE's
  ``np.empty``), an unknown device, no GPU and no simulator.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

Z_MAX = 4.0
_CHECKS = {}
#: True in the child process under the simulator; False with ``--gpu`` on a real GPU, where NVVM
#: fuses ``a * b + c`` in the states and libdevice rounds ``log`` its own way: there bitwise equality
#: is asked of the normals' accepted and wedge draws, the rest (tail normals, ``ws``, states) to rounding.
SIM = True


def _check(fn):
    _CHECKS[fn.__name__] = fn
    return fn


# ============================================================================= child process side
def _same_seed(sde, method="euler", dtype="float64", n_paths=6, dt=0.1, n_steps=5, y0=None, seed=11, start=0,
               **kw):
    """CPU and CUDA solves of the same seed on ``ts = (start + n) dt``, ``n = 0 .. n_steps``."""
    import sdesim
    ts = (start + np.arange(n_steps + 1)) * dt
    y0 = np.linspace(0.5, 1.5, sde.dim) if y0 is None else y0
    a = sdesim.solve(sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, dtype=dtype,
                     save_brownian=True, n_threads=1, **kw)
    b = sdesim.solve(sde, y0, ts, method=method, dt=dt, n_paths=n_paths, seed=seed, dtype=dtype,
                     save_brownian=True, device="cuda", **kw)
    scale = np.maximum(np.abs(a.ys.astype(np.float64)), 1.0)
    rel = float(np.max(np.abs(a.ys.astype(np.float64) - b.ys.astype(np.float64)) / scale))
    tree = _tree_ws(b.brownian, ts, dt, n_paths)
    return {"ws_bitwise_tree": bool(np.array_equal(b.ws, tree)), "ws_rel_diff_tree": _rel(b.ws, tree),
            "ws_bitwise_cpu": bool(np.array_equal(a.ws, b.ws)), "ws_rel_diff_cpu": _rel(b.ws, a.ws),
            "ys_bitwise": bool(np.array_equal(a.ys, b.ys)), "rel_diff": rel,
            "step_depth": b.stats["brownian_step_depth"], "ws_nonzero": bool(np.all(b.ws[1:] != 0.0)),
            "shape_ok": a.ys.shape == b.ys.shape and b.ys.dtype == a.ys.dtype}


def _rel(x, ref):
    return float(np.max(np.abs(x - ref) / np.maximum(np.abs(ref), 1.0)))


def _tree_ws(bm, ts, dt, n_paths):
    """``W(ts) - W(ts[0])`` (ts on the grid of ``dt``, one save per step) from the Brownian tree's
    definition, every operation rounded on its own: the pure-Python ``walk_increment`` /
    ``coarse_increment`` of :mod:`sdesim.brownian.tree`, summed as the kernels sum (the bitwise
    reference: compiled CPU code may contract ``0.5 D +- s z`` into multiply-adds)."""
    from sdesim.brownian.tree import TOP_LEVEL, coarse_increment, walk_increment
    depth = TOP_LEVEL - bm.step_level(dt)
    g0, n_steps, m = int(round(ts[0] / dt)), ts.size - 1, bm.noise_dim
    ws = np.zeros((ts.size, n_paths, m))
    for p in range(n_paths):
        stack, z, inc = np.zeros((max(depth, 0) + 1, m)), np.zeros(m), np.zeros(m)
        w_cell, w_rel = np.zeros(m), np.zeros(m)
        for n in range(n_steps):
            if depth < 0:
                coarse_increment.py_func(bm.keys, bm.top_sd, 1 << -depth, g0 + n, p, m, z, inc)
            else:
                walk_increment.py_func(bm.keys, bm.sds, bm.top_sd, depth, g0 + n, n == 0, p, m, stack, z, np.zeros(0, np.uint32), inc)
            w_cell = w_cell + w_rel
            w_rel = inc.copy()
            ws[n + 1, p] = w_cell + w_rel
    return ws


def _ws_ok(r):
    """``ws``: the tree's values bitwise (on a GPU: but for the ``log`` of rare tail normals), and the
    CPU's to rounding (its compiled splits may be contracted into multiply-adds)."""
    tree_ok = r["ws_bitwise_tree"] or (not SIM and r["ws_rel_diff_tree"] < 1e-14)
    return r["ws_nonzero"] and tree_ok and r["ws_rel_diff_cpu"] < 1e-14


_SPHERE = {}


def _sphere(d=100):
    """The sphere model's full-form SDE, built once (its CPU kernels compile once per process)."""
    from sdesim.normalized import SphereModel, sgd_sde
    if d not in _SPHERE:
        _SPHERE[d] = sgd_sde(SphereModel(d, s=1.0), 0.1, 0.01)
    return _SPHERE[d]


SPHERE_Y0 = np.full(100, 0.3) + 0.01 * np.arange(100)


@_check
def normals_bitwise():
    from sdesim.brownian.rng import _ZR, normals_range, seed_to_key
    from sdesim.cuda.rng import normal_at_kernel, seed_words, tables

    k0, k1 = seed_to_key(2024)
    cell, path = 5, 3
    big = np.empty(60000)
    normals_range(k0, k1, 0, 0, big.size, cell, path, big)
    tail = np.flatnonzero(np.abs(big) > _ZR)[:6]          # tail draws (Marsaglia's method, log)
    idx = np.unique(np.concatenate([np.arange(1500), tail, tail ^ 1])).astype(np.int64)
    # tags other than 0, odd counts: the midpoint normals of the Brownian tree
    idx2 = np.arange(37, dtype=np.int64)

    kern = normal_at_kernel()
    w0, w1 = seed_words(k0, k1)
    res = {}
    for name, ix, tag in (("tag0", idx, 0), ("tag3", idx2, 3)):
        out = np.zeros(ix.size)
        kern[-(-ix.size // 128), 128](ix, tag, cell, path, w0, w1, *tables(), out)
        ref = np.empty(int(ix.max()) + 1)
        normals_range(k0, k1, tag, 0, ref.size, cell, path, ref)
        ref = ref[ix]
        body = np.abs(ref) <= _ZR
        res[name] = bool(np.array_equal(out[body], ref[body]))  # accepted and wedge-rejected draws
        if (~body).any():
            res[name + "_tail_bitwise"] = bool(np.array_equal(out[~body], ref[~body]))
            res[name + "_tail_rel_diff"] = float(np.max(np.abs(out[~body] - ref[~body]) / np.abs(ref[~body])))
    res["n_tail"] = int(tail.size)
    tail_ok = res["tag0_tail_bitwise"] if SIM else res["tag0_tail_rel_diff"] < 1e-15
    res["ok"] = res["tag0"] and res["tag3"] and tail.size > 0 and tail_ok
    return res


@_check
def tree_node_normals_bitwise():
    """The Brownian tree's node draws on the device (sdesim.cuda.walk.node_normals) against the
    CPU's (sdesim.brownian.tree.node_normals): per-depth keys, tags, negative node indices, other
    cell words (index >> 24), the high index bits (index >= 2**56), odd counter starts (m = 3)."""
    from sdesim.brownian.path import BrownianPath
    from sdesim.brownian.tree import TAG_SPLIT, TAG_TOP, node_normals
    from sdesim.cuda.rng import device_keys, tables
    from sdesim.cuda.walk import node_normals_kernel

    keys = BrownianPath(2024).keys
    d_keys = device_keys(keys)
    nodes = np.array([0, 1, 2, 3, -1, -2, -5, 2**24 - 1, 2**24, 7 * 2**24 + 3, -(2**24) - 1, 2**40 + 11,
                      2**56 + 5, 2**58 + 12345, 3 * 2**58 + 2**30 + 7, -(2**57) - 5], dtype=np.int64)
    depths = np.array([0, 1, 5, 16, 0, 16, 59, 30, 30, 40, 40, 50, 58, 59, 59, 59], dtype=np.int64)
    kern = node_normals_kernel()
    res = {}
    ok = True
    for m in (1, 3, 4):
        for tag in (TAG_TOP, TAG_SPLIT):
            out = np.zeros((nodes.size, m))
            kern[1, 32](nodes, depths, tag, 9, m, d_keys, *tables(), out)
            ref = np.zeros((nodes.size, m))
            z = np.empty(m)
            for j in range(nodes.size):
                node_normals(keys, depths[j], tag, nodes[j], 9, m, z)
                ref[j] = z
            same = np.array_equal(out, ref) if SIM else bool(np.max(np.abs(out - ref)) < 1e-14)
            res[f"m{m}_tag{tag}"] = bool(same)
            ok = ok and same
    res["ok"] = ok
    return res


@_check
def euler_same_seed():
    from sdesim import reference as ref
    out = {}
    for sde in (ref.gbm, ref.lin_commutative):  # diagonal; matrix noise (the general-noise code path)
        out[sde.name] = _same_seed(sde)
    out["sphere100"] = _same_seed(_sphere(100), dt=1.0, n_paths=3, n_steps=3, y0=SPHERE_Y0)
    out["ok"] = all(_ws_ok(r) and r["rel_diff"] < 1e-12 and r["shape_ok"] for r in out.values())
    return out


@_check
def milstein_same_seed():
    from sdesim import reference as ref
    out = {}
    for sde in (ref.gbm, ref.lin_scalar, ref.lin_commutative):  # diagonal, scalar, commutative
        out[sde.name] = _same_seed(sde, method="milstein")
    out["ok"] = all(_ws_ok(r) and r["rel_diff"] < 1e-12 for r in out.values())
    return out


@_check
def brownian_grid_same_seed():
    """The absolute-time tree at other grids: dt = 1, a continuation start, a negative start (node
    indices below 0, a top node boundary crossed), steps of two top nodes, a BrownianPath of another
    unit of the family; the deprecated brownian_dt changes nothing."""
    import warnings

    import sdesim
    from sdesim import reference as ref
    out = {"gbm_dt1": _same_seed(ref.gbm, dt=1.0, n_steps=4),  # (kernels compiled above)
           "gbm_start3": _same_seed(ref.gbm, start=3, n_steps=9),
           "commutative_start_neg": _same_seed(ref.lin_commutative, method="milstein", start=-4, n_steps=7),
           "gbm_coarse": _same_seed(ref.gbm, dt=8192.0, n_steps=3, start=-1, y0=np.full(2, 1e-3)),
           "gbm_bm_unit": _same_seed(ref.gbm, bm=sdesim.BrownianPath(7, 2, unit=0.4), seed=None, start=2,
                                     n_steps=6)}
    depths = {k: r["step_depth"] for k, r in out.items()}
    ok = all(_ws_ok(r) and r["rel_diff"] < 1e-12 for r in out.values())
    ok = ok and depths == {"gbm_dt1": 12, "gbm_start3": 16, "commutative_start_neg": 16, "gbm_coarse": -1,
                           "gbm_bm_unit": 16}
    # ws is the path's value at ts (BrownianPath.values reads the same tree by bisection)
    ts = (2 + np.arange(7)) * 0.1
    bm = sdesim.BrownianPath(7, 2, unit=0.4)
    b = sdesim.solve(ref.gbm, np.ones(2), ts, dt=0.1, n_paths=5, bm=bm, save_brownian=True, device="cuda")
    vals_rel = float(np.max(np.abs(b.ws - bm.values(ts, np.arange(5), dt=0.1))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = sdesim.solve(ref.gbm, np.ones(2), ts, dt=0.1, n_paths=5, bm=bm, save_brownian=True, device="cuda",
                         brownian_dt=0.4)
    deprecated = any(issubclass(w.category, DeprecationWarning) for w in caught)
    same = bool(np.array_equal(b.ws, c.ws) and np.array_equal(b.ys, c.ys))
    out["ws_vs_values_abs_diff"] = vals_rel
    out["brownian_dt_ignored"] = {"deprecated": deprecated, "same": same}
    out["ok"] = bool(ok and vals_rel < 1e-12 and deprecated and same and b.brownian is bm)
    return out


@_check
def float32_same_seed():
    out = {"sphere100": _same_seed(_sphere(100), dtype="float32", dt=1.0, n_paths=3, n_steps=3, y0=SPHERE_Y0)}
    out["ok"] = all(_ws_ok(r) and r["rel_diff"] < 1e-5 and r["shape_ok"] for r in out.values())
    return out


@_check
def launch_independent_and_per_path_y0():
    import sdesim
    import sdesim.cuda
    from sdesim import reference as ref
    ts = np.arange(4) * 0.1
    y0 = np.random.default_rng(0).uniform(0.5, 1.5, (40, 2))
    runs = [sdesim.cuda.solve(ref.gbm, y0, ts, dt=0.1, seed=4, threads_per_block=tpb, grid_threads=grid)
            for tpb, grid in ((32, None), (64, None), (8, 16))]  # the last: 16 threads, 2-3 paths each
    cpu = sdesim.solve(ref.gbm, y0, ts, dt=0.1, seed=4, n_threads=1, save_brownian=True)
    rel = float(np.max(np.abs(runs[0].ys - cpu.ys) / np.maximum(np.abs(cpu.ys), 1)))
    same = all(np.array_equal(runs[0].ys, r.ys) for r in runs[1:])
    return {"launch_independent": bool(same), "rel_diff_vs_cpu": rel, "ok": same and rel < 1e-12}


@_check
def reduce_matches_stored_paths():
    import numba as nb

    import sdesim
    from sdesim import reference as ref

    @nb.njit
    def first_and_square(t, y, args, out):
        out[0] = y[0]
        out[1] = y[0] * y[1]

    ts = np.arange(4) * 0.1
    kw = dict(dt=0.1, n_paths=70, seed=5, device="cuda")
    st = sdesim.solve(ref.gbm, np.ones(2), ts, **kw)
    rd = sdesim.solve(ref.gbm, np.ones(2), ts, reduce=True, **kw)
    rf = sdesim.solve(ref.gbm, np.ones(2), ts, reduce=True, functional=first_and_square, functional_dim=2, **kw)
    f = np.stack([st.ys[..., 0], st.ys[..., 0] * st.ys[..., 1]], axis=-1)
    checks = {
        "mean": bool(np.allclose(rd.mean, st.ys.mean(1), rtol=1e-12, atol=1e-14)),
        "var": bool(np.allclose(rd.var, st.ys.var(1, ddof=1), rtol=1e-10)),
        "functional_mean": bool(np.allclose(rf.mean, f.mean(1), rtol=1e-12, atol=1e-14)),
        "functional_var": bool(np.allclose(rf.var, f.var(1, ddof=1), rtol=1e-10)),
        "count": bool(np.all(rd.count == 70)),
    }
    checks["ok"] = all(checks.values())
    return checks


@_check
def nonfinite_flags_the_cpu_paths():
    import numba as nb

    import sdesim

    @nb.njit
    def drift(t, y, args, out):
        out[0] = y[0] * y[0] * y[0]

    @nb.njit
    def diffusion(t, y, args, out):
        out[0] = 3.0

    sde = sdesim.SDE(drift, diffusion, dim=1, noise="diagonal", name="blowup")
    ts = np.arange(9) * 0.25
    kw = dict(dt=0.25, n_paths=24, seed=1, on_nonfinite="flag")
    a = sdesim.solve(sde, np.ones(1), ts, n_threads=1, **kw)
    b = sdesim.solve(sde, np.ones(1), ts, device="cuda", **kw)  # (the simulator warns of the overflow)
    try:
        sdesim.solve(sde, np.ones(1), ts, dt=0.25, n_paths=24, seed=1, device="cuda")
        raised = False
    except sdesim.NonFiniteError:
        raised = True
    fa = [] if a.failed is None else a.failed.tolist()
    fb = [] if b.failed is None else b.failed.tolist()
    ok = raised and len(fa) > 0 and fa == fb and np.array_equal(np.isnan(a.ys), np.isnan(b.ys))
    return {"failed_cpu": fa, "failed_gpu": fb, "raised": raised, "ok": bool(ok)}


def _z(mean, var, n, exact_mean):
    return float(np.max(np.abs(mean - exact_mean) / np.sqrt(var / n)))


@_check
def gbm_ou_moments():
    """EM's exact moments: E Y_n = y0 (1 + a h)^n and E Y_n^2 = y0^2 ((1 + a h)^2 + b^2 h)^n (GBM)."""
    import sdesim
    from sdesim import reference as ref
    n, h, P = 8, 0.1, 384
    ts = np.arange(n + 1) * h
    y0 = np.array([1.0, 0.8])
    g = sdesim.solve(ref.gbm, y0, ts, dt=h, n_paths=P, seed=21, device="cuda").ys[-1]
    mu, s = ref.GBM_MU, ref.GBM_S
    m1 = y0 * (1 + mu * h) ** n
    m2 = y0**2 * ((1 + mu * h) ** 2 + s**2 * h) ** n
    var = m2 - m1**2
    z_gbm = _z(g.mean(0), var, P, m1)
    # the second moment's estimator: Var(Y^2) from the 4th moment ((1+ah)^4 + 6(1+ah)^2 b^2 h + 3 b^4 h^2)
    m4 = y0**4 * ((1 + mu * h) ** 4 + 6 * (1 + mu * h) ** 2 * s**2 * h + 3 * s**4 * h**2) ** n
    z_gbm2 = _z((g**2).mean(0), m4 - m2**2, P, m2)
    th, sg = ref.OU_THETA, ref.OU_SIGMA
    y0o = np.array([1.0, -0.5, 0.2])
    o = sdesim.solve(ref.ou, y0o, ts, dt=h, n_paths=P, seed=22, device="cuda").ys[-1]
    a = 1 - th * h
    om1 = y0o * a**n
    ovar = sg**2 * h * (1 - a ** (2 * n)) / (1 - a**2)
    z_ou = _z(o.mean(0), ovar, P, om1)
    z_ou_var = float(np.max(np.abs(o.var(0, ddof=1) - ovar) / (ovar * np.sqrt(2.0 / (P - 1)))))
    zs = {"gbm_mean": z_gbm, "gbm_second_moment": z_gbm2, "ou_mean": z_ou, "ou_var": z_ou_var}
    zs["ok"] = all(v < Z_MAX for v in zs.values())
    return zs


@_check
def sphere_distribution_vs_cpu():
    """The sphere model's |W_T|^2 and one coordinate: GPU (seed 1) against an independent CPU ensemble."""
    import sdesim
    P, n = 48, 4
    sde = _sphere(100)
    ts = np.arange(n + 1) * 1.0
    g = sdesim.solve(sde, SPHERE_Y0, ts, dt=1.0, n_paths=P, seed=1, device="cuda", save_brownian=True).ys[-1]
    c = sdesim.solve(sde, SPHERE_Y0, ts, dt=1.0, n_paths=2000, seed=2, n_threads=1, save_brownian=True).ys[-1]
    out = {}
    for name, fg, fc in (("norm2", (g**2).sum(1), (c**2).sum(1)), ("w0", g[:, 0], c[:, 0])):
        se = np.sqrt(fg.var(ddof=1) / fg.size + fc.var(ddof=1) / fc.size)
        out[name] = float(abs(fg.mean() - fc.mean()) / se)
    out["ok"] = all(v < Z_MAX for v in out.values())
    return out


@_check
def clear_errors():
    import sdesim
    from sdesim import reference as ref
    from sdesim.cuda import GPUUnsupportedError
    from sdesim.normalized import NormalizedLinearClassifier, SphereModel, gaussian_mixture, polar_sde

    def message(fn):
        try:
            fn()
        except (GPUUnsupportedError, ValueError, TypeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "no error"

    ts = np.array([0.0, 0.25, 0.5])
    clf = NormalizedLinearClassifier(gaussian_mixture(n=40, dim=3, n_classes=2, seed=0), batch_size=8)
    msgs = {
        "off_grid": message(lambda: sdesim.solve(ref.gbm, np.ones(2), np.array([0.0, 0.15, 0.3]), dt=0.1,
                                                 device="cuda")),
        "off_grid_start": message(lambda: sdesim.solve(ref.gbm, np.ones(2), np.array([0.05, 0.1, 0.2]),
                                                       dt=0.1, device="cuda")),
        "milstein_general": message(lambda: sdesim.solve(ref.noncommutative, np.ones(2), ts, dt=0.25,
                                                         method="milstein", device="cuda")),
        "classifier": message(lambda: sdesim.solve(sdesim.normalized.sgd_sde(clf, 0.1, 1e-3),
                                                   np.ones(clf.d), ts, dt=0.25, device="cuda")),
        "polar": message(lambda: sdesim.solve(polar_sde(SphereModel(4), 0.1, 1e-3),
                                              np.array([1, 0, 0, 0, 1.0, 0.1]), ts, dt=0.25, device="cuda")),
        "levy_substeps": message(lambda: sdesim.solve(ref.gbm, np.ones(2), ts, dt=0.25, levy_substeps=4,
                                                      device="cuda")),
    }
    expect = {"off_grid": ("GPUUnsupportedError", "step grid", "ts[1]"),
              "off_grid_start": ("GPUUnsupportedError", "step grid", "ts[0]"),
              "milstein_general": ("GPUUnsupportedError", "general noise"),
              "classifier": ("GPUUnsupportedError", "batched GEMM"),
              "polar": ("GPUUnsupportedError", "np.empty"),
              "levy_substeps": ("GPUUnsupportedError", "levy_substeps")}
    out = {k: {"message": v, "ok": all(e in v for e in expect[k])} for k, v in msgs.items()}
    out["ok"] = all(v["ok"] for v in out.values())
    return out


def _run_checks(names):
    results = {}
    import time
    for name in names:
        t = time.perf_counter()
        try:
            results[name] = _CHECKS[name]()
            results[name]["seconds"] = round(time.perf_counter() - t, 1)
        except Exception as exc:  # report, do not stop the other checks
            import traceback
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()[-3000:]}
        print(json.dumps({name: results[name]}), flush=True)
    return results


# ============================================================================= pytest side
@pytest.fixture(scope="module")
def sim_results():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env, capture_output=True,
                          text=True, timeout=600)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    if proc.returncode != 0 and not results:
        pytest.fail(f"the simulator run failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return results


@pytest.mark.parametrize("name", list(_CHECKS))
def test_under_cuda_simulator(sim_results, name):
    assert name in sim_results, f"check {name} did not report"
    res = sim_results[name]
    assert res["ok"], json.dumps(res, indent=1)


def test_unknown_device_is_refused():
    import sdesim
    from sdesim.reference import gbm
    with pytest.raises(ValueError, match="device must be"):
        sdesim.solve(gbm, np.ones(2), np.array([0.0, 0.1]), dt=0.1, device="tpu")


def test_no_gpu_no_simulator_is_a_clear_error():
    code = ("import numpy as np, sdesim\n"
            "from numba import cuda\n"
            "if cuda.is_available():\n"
            "    print('GPU'); raise SystemExit\n"
            "from sdesim.reference import gbm\n"
            "try:\n"
            "    sdesim.solve(gbm, np.ones(2), np.array([0.0, 0.1]), dt=0.1, device='cuda')\n"
            "except RuntimeError as exc:\n"
            "    print('ERR', exc)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if out.stdout.startswith("GPU"):
        pytest.skip("a GPU is usable here")
    assert "ERR" in out.stdout and "NUMBA_ENABLE_CUDASIM" in out.stdout, out.stdout + out.stderr


if __name__ == "__main__":
    # python tests/test_cuda_sim.py [--gpu] [CHECK ...]: the checks, one JSON line each
    argv = sys.argv[1:]
    import warnings
    warnings.filterwarnings("ignore", message=".*under-utilization.*")  # tiny launches, on purpose
    if "--gpu" in argv:  # the same checks on a real GPU (scripts/gpu_check.sh)
        argv.remove("--gpu")
        SIM = False
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            sys.exit("--gpu runs on a real GPU: unset NUMBA_ENABLE_CUDASIM")
        import sdesim.cuda as _backend
        if not _backend.available():
            sys.exit("--gpu: no usable CUDA GPU here")
        from numba import cuda as _nc
        print(json.dumps({"device": str(_nc.get_current_device().name)}), flush=True)
    elif os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        sys.exit("run with NUMBA_ENABLE_CUDASIM=1 (pytest does that for you), or with --gpu on a GPU")
    res = _run_checks(argv or list(_CHECKS))
    sys.exit(0 if all(r.get("ok") for r in res.values()) else 1)

"""Issue 13, the core: grids the kernel cannot run, every user function checked, O(dim) memory with a
matrix-free product, flat reduce memory, NaN means where nothing was counted, debug mode."""

import json
import subprocess
import sys
import textwrap
import tracemalloc

import numba as nb
import numpy as np
import pytest

import sdesim


def _drift(t, y, args, out):
    out[:] = -y


def _diag(t, y, args, out):
    out[:] = 0.5


def _dense(t, y, args, out):  # (2, 2) matrix noise
    out[0, 0] = 0.5
    out[0, 1] = 0.1
    out[1, 0] = 0.0
    out[1, 1] = 0.3


def _good_product(t, y, args, dW, out):
    out[0] = 0.5 * dW[0] + 0.1 * dW[1]
    out[1] = 0.3 * dW[1]


def _silent_product(t, y, args, dW, out):  # writes nothing: a noise-free solve, silently
    pass


def _wrong_product(t, y, args, dW, out):  # not diffusion @ dW
    out[0] = 0.5 * dW[0]
    out[1] = 0.3 * dW[1]


def _matrix_sde(**kw):
    return sdesim.SDE(_drift, _dense, dim=2, noise_dim=2, noise="general", **kw)


# ----------------------------------------------------------------------------- 1. arithmetic limits
@pytest.mark.parametrize("ts, dt", [([0.0, 1.0], 1e-300),        # 1e300 steps: overflowed to < 0
                                    ([0.0, 1e300], 1.0),         # the same from the span
                                    ([0.0, 1.0], 2.0**-32),      # 4e9 cells > 2**31
                                    ([1e12, 1e12 + 1.0], 1e-5)])  # steps below the times' resolution
def test_grids_the_kernel_cannot_run_are_refused(ts, dt):
    sde = sdesim.SDE(_drift, _diag, dim=2, noise="diagonal")
    with pytest.raises(ValueError, match="dt"):
        sdesim.solve(sde, np.ones(2), ts, dt=dt)


def test_the_largest_supported_grid_passes_the_check():
    from sdesim import BrownianPath
    from sdesim.plan import MAX_CELLS, save_layout as _save_layout
    ts = np.array([0.0, 1.0])
    dt = 1.0 / (MAX_CELLS - 1)
    layout = _save_layout(ts, dt, BrownianPath(0, 1, unit=dt), 0)
    assert layout["n_steps"] == MAX_CELLS - 1 and layout["save_step"][-1] == layout["n_steps"] - 1


@pytest.mark.parametrize("kw", [{"n_threads": 2.5}, {"n_threads": "2"}, {"n_threads": True},
                                {"reduce": True, "functional": _drift, "functional_dim": 2.5}])
def test_counts_must_be_integers(kw):
    sde = sdesim.SDE(_drift, _diag, dim=2, noise="diagonal")
    with pytest.raises(ValueError):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.5, **kw)


# ----------------------------------------------------------------------------- 2. user functions
def test_a_product_that_writes_nothing_is_refused():
    sde = _matrix_sde(diffusion_product=_silent_product)
    with pytest.raises(ValueError, match="diffusion_product.*unwritten"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)


def test_a_product_that_disagrees_with_the_diffusion_is_refused():
    sde = _matrix_sde(diffusion_product=_wrong_product)
    with pytest.raises(ValueError, match="disagree"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)
    ok = _matrix_sde(diffusion_product=_good_product)
    assert sdesim.solve(ok, np.ones(2), [0.0, 1.0], dt=0.1).ys.shape == (2, 1, 2)


def _both_wrong_drift(t, y, args, dW, a, gdw):
    a[:] = y  # the drift is -y
    _good_product(t, y, args, dW, gdw)


def _both_silent_noise(t, y, args, dW, a, gdw):
    a[:] = -y


@pytest.mark.parametrize("both, match", [(_both_wrong_drift, "drift_and_product's drift"),
                                         (_both_silent_noise, "drift_and_product.*unwritten")])
def test_drift_and_product_is_checked_against_drift_and_product(both, match):
    sde = _matrix_sde(diffusion_product=_good_product, drift_and_product=both)
    with pytest.raises(ValueError, match=match):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)


def _proj_returns(t, y, args):
    return 1.0


def _proj_nan(t, y, args):
    y[:] = y / 0.0 * 0.0


def _proj_raises(t, y, args):
    y[5] = 1.0


@pytest.mark.parametrize("proj, match", [(_proj_returns, "return None"), (_proj_nan, "non-finite"),
                                         (_proj_raises, "projection.*IndexError.*debug=True")])
def test_projection_is_checked(proj, match):
    sde = sdesim.SDE(_drift, _diag, dim=2, noise="diagonal", projection=proj)
    with pytest.raises(ValueError, match=match):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)


def _drift_writes_y(t, y, args, out):
    out[:] = -y
    y[0] = 0.0


def test_a_function_that_changes_its_input_is_refused():
    sde = sdesim.SDE(_drift_writes_y, _diag, dim=2, noise="diagonal")
    with pytest.raises(ValueError, match="changed its input y"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)


def _drift_late_oob(t, y, args, out):  # fine at t0 (the pre-check), out of bounds from t = 0.5 on
    n = y.size + (1 if t >= 0.5 else 0)
    for i in range(n):
        out[i] = -y[i % y.size]


def test_debug_mode_turns_a_late_out_of_bounds_write_into_an_error_naming_the_function(monkeypatch):
    sde = sdesim.SDE(_drift_late_oob, _diag, dim=2, noise="diagonal", name="late")
    with pytest.raises(IndexError, match="drift of 'late'"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1, n_paths=3, debug=True)
    monkeypatch.setenv("SDESIM_DEBUG", "1")  # the same from the environment
    with pytest.raises(IndexError, match="drift of 'late'"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1, n_paths=3)


def test_debug_mode_gives_the_same_numbers_for_a_correct_sde():
    sde = sdesim.SDE(_drift, _diag, dim=2, noise="diagonal")
    a = sdesim.solve(sde, np.ones(2), [0.0, 0.5, 1.0], dt=0.1, n_paths=5, seed=3)
    b = sdesim.solve(sde, np.ones(2), [0.0, 0.5, 1.0], dt=0.1, n_paths=5, seed=3, debug=True)
    np.testing.assert_allclose(b.ys, a.ys, rtol=1e-12, atol=1e-14)


def test_pre_check_errors_name_the_debug_mode():
    def bad(t, y, args, out):
        out[3] = 1.0
    sde = sdesim.SDE(bad, _diag, dim=2, noise="diagonal")
    with pytest.raises(ValueError, match="debug=True"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], dt=0.1)


# ----------------------------------------------------------------------------- 3. memory
_BIG_SPHERE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import sdesim
    from sdesim.normalized import SphereModel, sgd_sde
    d = int(sys.argv[1])
    model = SphereModel(d, s=1.0)
    w0 = np.ones(d) / np.sqrt(d)
    sol = sdesim.solve(sgd_sde(model, 0.1, 1e-3), w0, [0.0, 2.0], dt=1.0, n_paths=2, seed=0)
    ok = bool(np.all(np.isfinite(sol.ys)))
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ok": ok}))
""")


def test_a_matrix_free_solve_needs_memory_of_order_dim():
    """The sphere SDE at d = 30000 (a dense factor would be 7.2 GB): 2 paths x 2 steps need less than
    512 MB more than the same solve at d = 30. Peak RSS includes compiling the kernel (several hundred
    MB when Numba's disk cache is cold, as on a fresh clone), so the small solve runs first, in the
    same cache state, and only the difference is the solve's own memory."""
    peak = {}
    for d in ("30", "30000"):
        out = subprocess.run([sys.executable, "-c", _BIG_SPHERE, d], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        rep = json.loads(out.stdout.strip().splitlines()[-1])
        assert rep["ok"]
        peak[d] = rep["peak_mb"]
    assert peak["30000"] - peak["30"] < 512, peak


def _scalar_drift(t, y, args, out):
    out[0] = -y[0]


def _scalar_diff(t, y, args, out):
    out[0] = 1.0


def test_reduce_memory_is_flat_in_n_paths():
    """The peak memory a reduced solve allocates does not grow with n_paths (it did: a per-path
    failure array, 8 bytes per path, built after the run)."""
    sde = sdesim.SDE(_scalar_drift, _scalar_diff, dim=1, noise="scalar")
    run = dict(dt=0.5, reduce=True, seed=1, n_threads=1)
    sdesim.solve(sde, np.zeros(1), [0.0, 1.0], n_paths=10, **run)  # compile
    held = {}
    for n in (1 << 15, 1 << 19):
        tracemalloc.start()
        sol = sdesim.solve(sde, np.zeros(1), [0.0, 1.0], n_paths=n, **run)
        _, held[n] = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert sol.count[-1] == n
        del sol
    # 16x the paths: the old code held 8 bytes per path (4 MB more); allow 64 kB of noise
    assert held[1 << 19] - held[1 << 15] < 65536, held


@nb.njit
def _blow_up_drift(t, y, args, out):  # paths with y0 > 0 overflow to inf after t = 0.5
    out[0] = 0.0 if t < 0.5 or y[0] <= 0.0 else 1e308 * y[0] * 1e10


def test_reduce_flag_mean_is_nan_where_no_path_was_counted():
    sde = sdesim.SDE(_blow_up_drift, _scalar_diff, dim=1, noise="scalar")
    ts = np.linspace(0.0, 1.0, 5)
    sol = sdesim.solve(sde, np.full((4, 1), 1.0), ts, dt=0.25, reduce=True, seed=0,
                       on_nonfinite="flag")
    assert np.all(sol.count[:3] == 4) and np.all(sol.count[3:] == 0)
    assert np.all(np.isfinite(sol.mean[:3])) and np.all(np.isnan(sol.mean[3:]))
    assert np.all(np.isnan(sol.var[3:]))
    assert sorted(sol.failed.tolist()) == [0, 1, 2, 3]


def _functional_short(t, y, args, out):  # writes 1 of its 2 values
    out[0] = y[0]


def _functional_late_oob(t, y, args, out):
    out[0] = y[0]
    if t >= 0.5:
        out[2] = 0.0


def test_the_reduce_functional_is_checked_and_covered_by_debug_mode():
    sde = sdesim.SDE(_drift, _diag, dim=2, noise="diagonal", name="f")
    run = dict(dt=0.1, n_paths=3, reduce=True)
    with pytest.raises(ValueError, match="functional of 'f' left entries"):
        sdesim.solve(sde, np.ones(2), [0.0, 1.0], functional=_functional_short, functional_dim=2, **run)
    with pytest.raises(IndexError, match="functional of 'f'"):
        sdesim.solve(sde, np.ones(2), [0.0, 0.5, 1.0], functional=_functional_late_oob, functional_dim=1,
                     debug=True, **run)


@pytest.mark.parametrize("method", ["euler", "milstein"])
@pytest.mark.parametrize("which", ["gbm", "gbm_analytic", "lin_scalar", "lin_commutative", "noncommutative", "ou"])
def test_each_scheme_reads_only_the_scratch_and_area_it_declares(method, which):
    """The kernel sizes the work and Levy-area arrays from the scheme's declarations; a step that
    reads beyond them reads other memory, silently (commutative Milstein read a (1, 1) area)."""
    from sdesim import reference as ref
    from sdesim.solvers import SOLVERS
    sde, solver = getattr(ref, which), SOLVERS[method]
    step = solver.make_step(sde)

    @nb.njit(boundscheck=True)
    def checked(y, dW, area, args, work, y_out):
        step(0.0, 0.01, y, dW, area, args, work, y_out)

    n = solver.area_size(sde)
    y = np.linspace(0.5, 1.0, sde.dim)
    out = np.empty(sde.dim)
    checked(y, np.full(sde.noise_dim, 0.1), np.zeros((n, n)), sde.args, np.zeros(solver.work_size(sde)), out)
    assert np.all(np.isfinite(out))

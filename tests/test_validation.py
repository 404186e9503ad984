"""Bad input is refused with a clear error; non-finite paths are reported, never silent."""

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sdesim
from sdesim.reference import gbm, make_affine

Y0 = np.array([1.0, 0.7])
TS = np.array([0.0, 0.5, 1.0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(y0=np.ones(3)), "length 3"),
    (dict(y0=np.ones((4, 3))), "expected"),
    (dict(y0=np.array([1.0, np.nan])), "NaN"),
    (dict(y0=np.array([1.0, np.inf])), "NaN or inf"),
    (dict(dt=0.0), "dt must be"),
    (dict(dt=-0.1), "dt must be"),
    (dict(dt=float("nan")), "dt must be"),
    (dict(ts=np.array([0.0, 1.0, 1.0])), "strictly increasing"),
    (dict(ts=np.array([0.0, 2.0, 1.0])), "strictly increasing"),
    (dict(ts=np.array([0.0, np.nan])), "NaN"),
    (dict(ts=np.array([1.0])), "at least 2"),
    (dict(method="rk4"), "unknown method"),
    (dict(dtype="int32"), "dtype"),
    (dict(brownian_dt=0.3), "power of two"),
    (dict(y0=np.ones((5, 2)), n_paths=4), "n_paths"),
    (dict(on_nonfinite="ignore"), "on_nonfinite"),
    (dict(reduce=True, save_brownian=True), "cannot be combined"),
    (dict(levy_substeps=4), "levy_substeps"),
])
def test_bad_solve_arguments_raise(kwargs, match):
    args = dict(y0=Y0, ts=TS, dt=0.1)
    args.update(kwargs)
    y0, ts = args.pop("y0"), args.pop("ts")
    with pytest.raises((ValueError, TypeError), match=match):
        sdesim.solve(gbm, y0, ts, **args)


def test_unknown_noise_and_bad_dims_raise():
    f = gbm.drift
    with pytest.raises(ValueError, match="noise must be one of"):
        sdesim.SDE(f, f, dim=2, noise="colored")
    with pytest.raises(ValueError, match="noise_dim == dim"):
        sdesim.SDE(f, f, dim=2, noise_dim=3, noise="diagonal")
    with pytest.raises(ValueError, match="needs noise_dim"):
        sdesim.SDE(f, f, dim=2, noise="general")
    with pytest.raises(ValueError, match="positive integer"):
        sdesim.SDE(f, f, dim=0, noise="diagonal")


def test_a_method_that_does_not_fit_the_noise_is_refused_with_alternatives(monkeypatch):
    from sdesim.solvers.base import Solver
    from sdesim.solvers import SOLVERS, check_method

    class DiagonalOnly(Solver):
        name = "diag-only"
        strong_order = {"diagonal": 1.0}
        weak_order = {"diagonal": 1.0}

    with pytest.raises(ValueError, match=r"does not support noise='general'"):
        DiagonalOnly().check_noise("general")
    monkeypatch.setitem(SOLVERS, "diag-only", DiagonalOnly())  # the registry names the alternatives
    with pytest.raises(ValueError, match=r"does not support noise='general'.*'euler', 'milstein'"):
        check_method("diag-only", "general")
    monkeypatch.delitem(SOLVERS, "diag-only")
    assert set(SOLVERS) == {"euler", "milstein", "euler_heun", "srk", "sra1"}


def _wrong_shape_diffusion(t, y, args, out):
    out[0, 1] = 1.0  # a diagonal SDE's diffusion is 1-d


def _returns_instead(t, y, args, out):
    return y * 2.0


def _partial(t, y, args, out):
    out[0] = 1.0


@pytest.mark.parametrize("diffusion,match", [
    (_wrong_shape_diffusion, "shape"),
    (_returns_instead, "return None"),
    (_partial, "unwritten"),
])
def test_diffusion_of_the_wrong_shape_or_contract_is_refused(diffusion, match):
    sde = sdesim.SDE(gbm.drift, diffusion, dim=2, noise="diagonal", args=gbm.args)
    with pytest.raises(ValueError, match=match):
        sdesim.solve(sde, Y0, TS, dt=0.1)


@nb.njit
def _blowup_drift(t, y, args, out):
    out[0] = y[0] * y[0]


@nb.njit
def _small_noise(t, y, args, out):
    out[0] = 0.01


blowup = sdesim.SDE(_blowup_drift, _small_noise, dim=1, noise="diagonal", name="blowup")


def test_non_finite_paths_are_reported_not_returned():
    """dy = y^2 dt explodes at t = 1/y0: paths with y0 > ~1.1 blow up before t = 1."""
    y0 = np.linspace(0.2, 3.0, 15)[:, None]
    ts = np.linspace(0, 1, 5)
    with pytest.raises(sdesim.NonFiniteError) as info:
        sdesim.solve(blowup, y0, ts, dt=1e-3)
    bad = info.value.paths
    assert set(bad) >= set(np.flatnonzero(y0[:, 0] > 1.2)) and set(bad) <= set(np.flatnonzero(y0[:, 0] > 0.9))
    sol = sdesim.solve(blowup, y0, ts, dt=1e-3, on_nonfinite="flag")
    np.testing.assert_array_equal(sol.failed, bad)
    assert not sol.success
    for p, t in zip(sol.failed, sol.failed_at):
        assert np.all(np.isnan(sol.ys[ts >= t, p])) and np.all(np.isfinite(sol.ys[ts < t, p]))
    good = np.setdiff1d(np.arange(15), bad)
    assert np.all(np.isfinite(sol.ys[:, good]))
    red = sdesim.solve(blowup, y0, ts, dt=1e-3, on_nonfinite="flag", reduce=True)
    assert red.count[-1] == 15 - bad.size and np.all(np.isfinite(red.mean))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 3), dt_exp=st.integers(2, 6),
       t_end=st.floats(0.05, 1.0))
def test_zero_diffusion_is_explicit_euler(seed, n, dt_exp, t_end):
    """With g = 0 every scheme reduces to explicit Euler on the same grid (incl. shortened steps)."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(3, 3))
    b = rng.normal(size=3)
    y0 = rng.normal(size=3)
    ts = np.sort(rng.uniform(0, t_end, size=n))
    ts = np.concatenate([[0.0], ts[ts > 1e-6], [t_end]])
    ts = np.unique(ts)
    sde = _AFFINE
    sde.args[0][:] = M
    sde.args[1][:] = b
    dt = 2.0**-dt_exp
    # reference: Euler on the grid k*dt with the save times inserted
    grid = np.unique(np.concatenate([np.arange(0, t_end, dt), ts]))
    y = y0.copy()
    ref = [y.copy()]
    for t0, t1 in zip(grid[:-1], grid[1:]):
        y = y + (M @ y + b * np.sin(t0)) * (t1 - t0)
        if np.any(np.isclose(t1, ts[1:], rtol=0, atol=1e-12)):
            ref.append(y.copy())
    for method in ("euler", "milstein"):
        sol = sdesim.solve(sde, y0, ts, dt=dt, method=method)
        np.testing.assert_allclose(sol.ys[:, 0], np.array(ref), rtol=1e-9, atol=1e-9)


_AFFINE = make_affine(np.zeros((3, 3)), np.zeros(3))


def _cube_drift(t, y, args, out):  # plain function: inlined into the kernel
    out[0] = y[0] * y[0] * y[0]


def _three(t, y, args, out):
    out[0] = 3.0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # squares of ~1e150 (finite)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("steps_per_save", [1, 3])
@pytest.mark.parametrize("reduce", [False, True])
def test_overflow_to_inf_is_flagged_with_one_or_more_steps_per_save(dtype, steps_per_save, reduce):
    """y' = y^3 overflows to +inf within a few steps: every such path is flagged, none is returned.

    With one step per save the saved value is the step's arithmetic itself; a check written as
    ``x - x == 0`` is folded away there under fast-math reassociation (a bug this guards against).
    """
    sde = sdesim.SDE(_cube_drift, _three, dim=1, noise="diagonal", name="cube")
    h = 0.25
    ts = np.arange(9) * h * steps_per_save
    kw = dict(dt=h, n_paths=24, seed=1, dtype=dtype, on_nonfinite="flag", reduce=reduce, n_threads=1)
    sol = sdesim.solve(sde, np.ones(1), ts, **kw)
    # the same Brownian path in float64 with a check outside the kernel: which paths overflow
    ref = sdesim.solve(sde, np.ones(1), ts, **dict(kw, reduce=False, dtype="float64"))
    assert ref.failed is not None and ref.failed.size > 0
    if reduce:
        counted = sol.count > 0  # where every path failed the mean is NaN (issue 13), never 0.0
        assert np.all(np.isfinite(sol.mean[counted])) and np.all(np.isnan(sol.mean[~counted]))
        assert sol.count[-1] == 24 - sol.failed.size
    else:
        assert np.all(np.isfinite(sol.ys[~np.isnan(sol.ys)]))
        for p, t in zip(sol.failed, sol.failed_at):
            assert np.all(np.isnan(sol.ys[ts >= t, p])) and np.all(np.isfinite(sol.ys[ts < t, p]))
    if dtype == "float64":
        np.testing.assert_array_equal(sol.failed, ref.failed)
    else:  # float32 overflows earlier (at 3.4e38): at least the float64 failures
        assert set(ref.failed) <= set(sol.failed)


@nb.njit  # a user's plain @njit: no error model given
def _pole_diffusion(t, y, args, out):
    out[0] = 1.0 / (t - 0.5)


def test_a_users_njit_division_by_zero_is_a_flagged_path():
    """The kernel computes 1/0 = inf (NumPy's error model) in a user's non-inlined @njit function
    too, so the path is flagged as non-finite at t = 0.75, although the diffusion is compiled from
    Python first (by the noise-structure check, where Numba's default error model would raise
    ZeroDivisionError inside the kernel)."""
    sde = sdesim.SDE(_three, _pole_diffusion, dim=1, noise="diagonal", name="pole")
    sol = sdesim.solve(sde, np.ones(1), np.array([0.0, 0.25, 0.5, 0.75]), dt=0.25, n_paths=3, seed=0,
                       on_nonfinite="flag")
    assert sol.failed.tolist() == [0, 1, 2] and np.all(sol.failed_at == 0.75)

"""Per-path parameters (sdesim.per_path): a grid of parameters in one solve, each path bitwise equal
to a solve with that parameter in every path; clear errors for a wrong count."""

import numpy as np
import pytest

import sdesim
from sdesim.reference import gbm_drift, gbm_diffusion

TS = np.linspace(0.0, 1.0, 5)


def _gbm(mu, s):
    return sdesim.SDE(gbm_drift, gbm_diffusion, dim=2, noise="diagonal", args=(mu, s))


@pytest.mark.parametrize("method", ["euler", "milstein"])
def test_a_grid_of_parameters_equals_the_single_solves(method):
    n = 5
    mus = np.stack([np.linspace(-0.5, 0.5, n), np.linspace(0.2, -0.2, n)], axis=1)  # (n, 2): a row per path
    s = np.array([0.4, 0.3])
    y0 = np.array([1.0, 0.5])
    grid = sdesim.solve(_gbm(sdesim.per_path(mus), s), y0, TS, method=method, dt=0.01, n_paths=n, seed=7,
                        n_threads=2)
    for p in range(n):
        alone = sdesim.solve(_gbm(mus[p].copy(), s), y0, TS, method=method, dt=0.01, n_paths=n, seed=7)
        np.testing.assert_array_equal(grid.ys[:, p], alone.ys[:, p])
    # a per-path number (1-d values) and reduce mode: path p's functional sees its own value
    ss = np.linspace(0.1, 0.5, n)
    sde = sdesim.SDE(_lin_drift, _lin_diffusion, dim=1, noise="diagonal", args=(-0.2, sdesim.per_path(ss)))
    red = sdesim.solve(sde, np.ones(1), TS, method=method, dt=0.01, n_paths=n, seed=3, reduce=True)
    full = sdesim.solve(sde, np.ones(1), TS, method=method, dt=0.01, n_paths=n, seed=3)
    np.testing.assert_allclose(red.mean[:, 0], full.ys[:, :, 0].mean(axis=1), rtol=1e-12)


def _lin_drift(t, y, args, out):
    out[0] = args[0] * y[0]


def _lin_diffusion(t, y, args, out):
    out[0] = args[1] * y[0]


def test_per_path_errors():
    y0 = np.array([1.0, 0.5])
    sde = _gbm(sdesim.per_path(np.zeros((3, 2))), np.array([0.4, 0.3]))
    with pytest.raises(ValueError, match="per path with 3 entries but the solve has n_paths=4"):
        sdesim.solve(sde, y0, TS, dt=0.1, n_paths=4, seed=1)
    with pytest.raises(ValueError, match="leading axis"):
        sdesim.per_path(np.float64(1.0))
    with pytest.raises(TypeError, match="real numeric"):
        sdesim.per_path(np.array(["a", "b"]))
    # the functions are checked at path 0's arguments: a bad value there is named
    bad = _gbm(sdesim.per_path(np.array([[np.nan, 0.0], [0.1, 0.1]])), np.array([0.4, 0.3]))
    with pytest.raises(ValueError, match="non-finite"):
        sdesim.solve(bad, y0, TS, dt=0.1, n_paths=2, seed=1)


def test_the_check_at_path_0_is_kept_per_sde_and_follows_its_args():
    """The functions' check at path 0's arguments runs once per SDE (its path-0 twin is kept), and a
    copy with other per-path args (with_args, which copies the SDE's attributes) is checked at its
    own path 0: a NaN there is named by the check, not met later in the solve."""
    y0 = np.array([1.0, 0.5])
    good = _gbm(sdesim.per_path(np.array([[0.1, 0.0], [0.1, 0.1]])), np.array([0.4, 0.3]))
    sdesim.solve(good, y0, TS, dt=0.1, n_paths=2, seed=1)
    twin = good.__dict__["_path0_twin"][1]
    sdesim.solve(good, y0, TS, dt=0.1, n_paths=2, seed=2)
    assert good.__dict__["_path0_twin"][1] is twin and twin._checked  # (checked once, kept)
    assert "_path0_twin" not in twin.__dict__  # (no chain of twins holding old args)
    bad = good.with_args((sdesim.per_path(np.array([[np.nan, 0.0], [0.1, 0.1]])), good.args[1]))
    assert "_path0_twin" not in bad.__dict__
    with pytest.raises(ValueError, match="drift of .* left entries of its output .* non-finite"):
        sdesim.solve(bad, y0, TS, dt=0.1, n_paths=2, seed=1)


def test_sgd_sde_takes_a_grid_of_rates_per_path():
    """The paper's grid of (lr, wd) pairs as one solve: path p bitwise equals path p of a solve with
    pair p's rates alone (same seed, same path index)."""
    from sdesim.normalized import SphereModel, sgd_sde
    model = SphereModel(6, s=1.0)
    etas = np.array([0.05, 0.5, 0.2, 0.1])
    lams = 1e-2 / etas
    y0 = np.random.default_rng(0).normal(size=(4, 6))
    ts = [0.0, 3.0, 6.0]
    grid = sdesim.solve(sgd_sde(model, sdesim.per_path(etas), sdesim.per_path(lams)), y0, ts, dt=0.5,
                        n_paths=4, seed=2)
    for p in range(4):
        alone = sdesim.solve(sgd_sde(model, etas[p], lams[p]), y0, ts, dt=0.5, n_paths=4, seed=2)
        assert np.array_equal(grid.ys[:, p], alone.ys[:, p])
    with pytest.raises(ValueError, match="one number per path"):
        sgd_sde(model, sdesim.per_path(np.ones((4, 2))), 0.1)
    with pytest.raises(ValueError, match="finite and positive"):
        sgd_sde(model, 0.1, sdesim.per_path([0.1, -1.0, 0.1, 0.1]))
    with pytest.raises(ValueError, match="n_paths=3"):
        sdesim.solve(sgd_sde(model, sdesim.per_path(etas), 0.1), y0[:3], ts, dt=0.5, n_paths=3)

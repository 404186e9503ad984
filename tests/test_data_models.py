"""Data models (normalized linear classifier, weight-normalized MLP): scale invariance per group,
exact minibatch noise against brute-force enumeration of minibatches, and the polar form with
several groups."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sdesim
from sdesim.normalized import (NormalizedLinearClassifier, WeightNormMLP, full_from_polar,
                               gaussian_mixture, group_norms, polar_sde, polar_state, sgd_sde)

DATA = gaussian_mixture(n=7, dim=2, n_classes=3, seed=1)
MODELS = {
    "linear": lambda replace: NormalizedLinearClassifier(DATA, batch_size=3, replace=replace, scale=3.0),
    "mlp": lambda replace: WeightNormMLP(DATA, hidden=3, batch_size=3, replace=replace, gain=1.5, scale=3.0),
}


def _group_scale(model, c):
    """Per-group scale factors ``c`` (shape (k,)) spread over the parameter vector."""
    return np.repeat(c, np.diff(model.group_offsets))


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), logc=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
       replace=st.booleans())
def test_data_models_are_scale_invariant_per_group(name, seed, logc, replace):
    m = MODELS[name](replace)
    w = np.random.default_rng(seed).normal(size=m.d)
    c = _group_scale(m, np.exp(logc[:m.n_groups]))
    g, Sigma = m.grad(w), m.noise_cov(w)
    assert np.isclose(m.loss(c * w), m.loss(w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.grad(c * w), g / c, rtol=1e-8, atol=1e-12 * np.abs(g / c).max())
    np.testing.assert_allclose(m.noise_cov(c * w), Sigma / np.outer(c, c), rtol=1e-7,
                               atol=1e-12 * np.abs(Sigma / np.outer(c, c)).max())
    for a, b in zip(m.group_offsets[:-1], m.group_offsets[1:]):
        assert abs(w[a:b] @ g[a:b]) <= 1e-12 * np.linalg.norm(w[a:b]) * (np.linalg.norm(g) + 1e-300) + 1e-15
        np.testing.assert_allclose(Sigma[:, a:b] @ w[a:b], 0.0, atol=1e-13 * np.abs(Sigma).max() * np.linalg.norm(w))
    # gradient against a central finite difference of the loss
    e = np.random.default_rng(seed + 1).normal(size=m.d)
    h = 1e-6 * np.linalg.norm(w)
    fd = (m.loss(w + h * e) - m.loss(w - h * e)) / (2 * h)
    assert abs(fd - g @ e) < 1e-6 * (1 + abs(fd))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("replace", [False, True])
def test_noise_factor_equals_brute_force_minibatch_covariance(name, replace):
    """Sigma from the factor S (d x n) equals the covariance of the minibatch-mean gradient over
    every minibatch: all C(n, B) subsets without replacement, all n^B ordered draws with."""
    m = MODELS[name](replace)
    w = np.random.default_rng(5).normal(size=m.d)
    g = m.per_sample_grads(w)
    n, B = DATA.n, m.batch_size
    batches = (itertools.product(range(n), repeat=B) if replace else itertools.combinations(range(n), B))
    G = np.array([g[list(b)].mean(axis=0) for b in batches])
    brute = (G - G.mean(axis=0)).T @ (G - G.mean(axis=0)) / len(G)
    np.testing.assert_allclose(G.mean(axis=0), m.grad(w), atol=1e-14)
    S = np.empty((m.d, m.noise_dim))
    m.noise_factor_kernel(w, m.params, S)
    tol = 1e-12 * np.abs(brute).max()
    np.testing.assert_allclose(S @ S.T, brute, atol=tol)
    np.testing.assert_allclose(m.noise_cov(w), brute, atol=tol)
    blocks = [np.trace(brute[a:b, a:b]) for a, b in zip(m.group_offsets[:-1], m.group_offsets[1:])]
    np.testing.assert_allclose(m.noise_traces(w), blocks, rtol=1e-10)
    dB = np.random.default_rng(6).normal(size=m.noise_dim)
    out = np.empty(m.d)
    m.noise_product_kernel(w, m.params, dB, out)
    np.testing.assert_allclose(out, S @ dB, atol=1e-12 * np.abs(S @ dB).max())


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        NormalizedLinearClassifier(DATA, batch_size=0)
    with pytest.raises(ValueError, match="no gradient noise"):
        NormalizedLinearClassifier(DATA, batch_size=DATA.n, replace=False)
    m = NormalizedLinearClassifier(DATA, batch_size=2)
    with pytest.raises(ValueError, match="shape"):
        m.grad(np.ones(m.d + 1))
    with pytest.raises(ValueError, match="NaN"):
        m.grad(np.full(m.d, np.nan))
    with pytest.raises(ValueError, match="zero"):
        WeightNormMLP(DATA, hidden=2, batch_size=2).grad(np.r_[np.zeros(DATA.p), np.ones(DATA.p)])
    with pytest.raises(ValueError, match="labels"):
        type(DATA)(DATA.X, DATA.y + 5, DATA.X_test, DATA.y_test, 3, "bad")


def test_multi_group_full_and_polar_forms_agree_pathwise():
    """The weight-normalized MLP (3 groups): full-form and polar-form Euler-Maruyama on one
    Brownian path converge to each other as dt shrinks (their difference is O(dt^{1/2}) or better)."""
    data = gaussian_mixture(n=40, dim=3, n_classes=3, seed=1)
    m = WeightNormMLP(data, hidden=3, batch_size=4)
    eta, lam = 0.1, 0.05
    w0 = m.random_init(seed=3)
    ts = np.array([0.0, 20.0, 40.0])
    full, polar = sgd_sde(m, eta, lam), polar_sde(m, eta, lam)
    errs = []
    dts = [0.25, 0.0625]
    for dt in dts:
        kw = dict(n_paths=40, seed=1, dt=dt)
        a = sdesim.solve(full, w0, ts, **kw).ys[-1]
        b = full_from_polar(sdesim.solve(polar, polar_state(w0, eta, model=m), ts, **kw).ys[-1], m)
        errs.append(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1))))
    # strong order >= 1/2 for both schemes: a 4x smaller step must shrink the gap by >= 2x (here ~4x)
    assert errs[1] < errs[0] / 2, errs
    # each group has its own norm: the three group norms end up different
    norms = group_norms(a, m.group_offsets).mean(axis=0)
    assert np.ptp(norms) > 0.02



def test_digits_classifier_loads_offline_and_is_consistent():
    pytest.importorskip("sklearn")
    from sdesim.normalized import load_digits
    data = load_digits(test_fraction=0.25, seed=0)
    assert data.n + len(data.y_test) == 1797 and data.p == 65 and data.n_classes == 10
    assert np.allclose(data.X[:, -1], 1.0) and set(np.unique(data.y)) == set(range(10))
    m = NormalizedLinearClassifier(data, batch_size=32)
    w = m.random_init(seed=1)
    c = 7.5
    assert np.isclose(m.loss(c * w), m.loss(w), rtol=1e-12)
    np.testing.assert_allclose(m.grad(c * w), m.grad(w) / c, rtol=1e-9, atol=1e-15)
    S = np.empty((m.d, m.noise_dim))
    m.noise_factor_kernel(w, m.params, S)
    g = m.per_sample_grads(w)
    Sigma = (g - g.mean(0)).T @ (g - g.mean(0)) / data.n / 32 * (data.n - 32) / (data.n - 1)
    np.testing.assert_allclose(S @ S.T, Sigma, atol=1e-12 * np.abs(Sigma).max())
    assert np.isclose(m.noise_traces(w)[0], np.trace(Sigma), rtol=1e-10)
    np.testing.assert_allclose(S.T @ w, 0.0, atol=1e-12 * np.abs(S).max() * np.linalg.norm(w))


@pytest.mark.parametrize("name", MODELS)
def test_fused_gradient_and_noise_product_equal_the_separate_kernels(name):
    """Euler-Maruyama on the data models uses one forward pass for grad L and S dB together."""
    m = MODELS[name](False)
    w = np.random.default_rng(7).normal(size=m.d)
    dB = np.random.default_rng(8).normal(size=m.noise_dim)
    g, s, g2, s2 = (np.empty(m.d) for _ in range(4))
    m.grad_kernel(w, m.params, g)
    m.noise_product_kernel(w, m.params, dB, s)
    m.grad_and_noise_product_kernel(w, m.params, dB, g2, s2)
    np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-14 * np.abs(g).max())
    np.testing.assert_allclose(s2, s, rtol=1e-12, atol=1e-14 * np.abs(s).max())


@pytest.mark.parametrize("name", MODELS)
def test_float32_state_gives_the_float64_gradient_and_noise_to_float32_precision(name):
    """A float32 state may make a model compute in float32 (the classifier's GEMMs do): the fused
    kernel then agrees with float64 to a few float32 rounding errors (eps32 = 6e-8 per operation,
    sums of n = 7 samples): 1e-5 of the largest entry is ~20x that."""
    m = MODELS[name](False)
    w = np.random.default_rng(7).normal(size=m.d)
    dB = np.random.default_rng(8).normal(size=m.noise_dim)
    g, s = np.empty(m.d), np.empty(m.d)
    g32, s32 = np.empty(m.d, np.float32), np.empty(m.d, np.float32)
    m.grad_and_noise_product_kernel(w, m.params, dB, g, s)
    m.grad_and_noise_product_kernel(w.astype(np.float32), m.params, dB.astype(np.float32), g32, s32)
    np.testing.assert_allclose(g32, g, rtol=0, atol=1e-5 * np.abs(g).max())
    np.testing.assert_allclose(s32, s, rtol=0, atol=1e-5 * np.abs(s).max())


def test_float32_classifier_solve_tracks_float64_on_the_same_brownian_path():
    """Same seed, same Brownian path: 20 Euler steps in float32 stay within 1e-4 (relative, in
    |W| and in W/|W|) of float64; the rounding of 20 steps is ~20 x 6e-8 per entry."""
    m = MODELS["linear"](False)
    sde = sgd_sde(m, 0.1, 1e-3)
    w0 = m.random_init(norm=1.0, seed=0)
    ts = np.array([0.0, 10.0, 20.0])
    y64 = sdesim.solve(sde, w0, ts, dt=1.0, n_paths=8, seed=3).ys
    y32 = sdesim.solve(sde, w0, ts, dt=1.0, n_paths=8, seed=3, dtype="float32").ys.astype(np.float64)
    n64, n32 = np.linalg.norm(y64, axis=-1), np.linalg.norm(y32, axis=-1)
    np.testing.assert_allclose(n32, n64, rtol=1e-4)
    np.testing.assert_allclose(y32 / n32[..., None], y64 / n64[..., None], rtol=0, atol=1e-4)

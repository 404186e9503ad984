"""The paper's SDE on the sphere model: scale invariance, full vs polar form, projection,
closed forms, intrinsic learning rate, learning-rate schedules."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sdesim
from sdesim.normalized import (Schedule, SphereModel, full_from_polar, polar_sde, polar_state,
                               sgd_sde, theory)

D = 10
H = np.diag(np.linspace(0.0, 2.0, D))
MODEL = SphereModel(D, s=1.0)
MODEL_H = SphereModel(D, s=0.7, H=H)
ETA, LAM = 0.1, 0.01
FULL = sgd_sde(MODEL_H, ETA, LAM)
POLAR = polar_sde(MODEL_H, ETA, LAM)
POLAR_PROJ = polar_sde(MODEL_H, ETA, LAM, project=True)
W0 = np.full(D, 3.0 / np.sqrt(D))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(0.01, 100.0))
def test_sphere_model_is_scale_invariant(seed, c):
    w = np.random.default_rng(seed).normal(size=D)
    m = MODEL_H
    assert np.isclose(m.loss(c * w), m.loss(w), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.grad(c * w), m.grad(w) / c, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.noise_cov(c * w), m.noise_cov(w) / c**2, rtol=1e-9, atol=1e-14)
    assert abs(w @ m.grad(w)) < 1e-10 * np.linalg.norm(w) * np.linalg.norm(m.grad(w)) + 1e-14
    np.testing.assert_allclose(m.noise_cov(w) @ w, 0.0, atol=1e-12)
    # the factor the SDE uses squares to Sigma, and the product equals the factor times dB
    S = np.empty((D, D))
    m.noise_factor_kernel(w, m.params, S)
    np.testing.assert_allclose(S @ S.T, m.noise_cov(w), rtol=1e-9, atol=1e-14)
    dB = np.random.default_rng(seed + 1).normal(size=D)
    out = np.empty(D)
    m.noise_product_kernel(w, m.params, dB, out)
    np.testing.assert_allclose(out, S @ dB, rtol=1e-9, atol=1e-14)
    # gradient matches a finite difference of the loss
    e = np.random.default_rng(seed + 2).normal(size=D)
    h = 1e-6 * np.linalg.norm(w)
    fd = (m.loss(w + h * e) - m.loss(w - h * e)) / (2 * h)
    assert abs(fd - m.grad(w) @ e) < 1e-6 * (1 + abs(fd))


def _full_vs_polar_error(dt, paths=100):
    ts = np.array([0.0, 100.0, 200.0])
    kw = dict(n_paths=paths, seed=3, dt=dt)
    a = sdesim.solve(FULL, W0, ts, **kw)
    b = sdesim.solve(POLAR, polar_state(W0, ETA), ts, **kw)
    return np.sqrt(np.mean((full_from_polar(b.ys[-1]) - a.ys[-1]) ** 2)) / np.sqrt(np.mean(a.ys[-1] ** 2))


def test_full_and_polar_forms_agree_on_the_same_brownian_path():
    """Ito's lemma check: both forms, driven by one Brownian path, give the same W up to the
    schemes' strong error, which shrinks as dt does (at least like dt^0.5)."""
    dts = [1.0, 0.5, 0.25, 0.125]
    errs = [_full_vs_polar_error(dt) for dt in dts]
    slope, _, _ = sdesim.fit_order(dts, errs)
    assert errs[-1] < 1e-3
    assert slope > 0.5 - 0.15, (slope, errs)


def test_projection_keeps_the_direction_on_the_sphere():
    ts = np.array([0.0, 300.0])
    dev = {}
    for dt in (1.0, 0.25, 0.0625):
        kw = dict(n_paths=200, seed=4, dt=dt)
        em = sdesim.solve(POLAR, polar_state(W0, ETA), ts, **kw)
        pr = sdesim.solve(POLAR_PROJ, polar_state(W0, ETA), ts, **kw)
        dev[dt] = np.sqrt(np.mean((np.linalg.norm(em.ys[-1, :, :D], axis=1) - 1) ** 2))
        assert np.max(np.abs(np.linalg.norm(pr.ys[-1, :, :D], axis=1) - 1)) < 1e-14
    assert dev[1.0] > dev[0.25] > dev[0.0625] > 0  # plain EM drifts off the sphere, less for small dt


def test_sphere_mean_norm4_follows_the_closed_form():
    """|W_t|^4 = e^{-4 lam_e t}|W_0|^4 + eta tau/(2 lam)(1 - e^{-4 lam_e t}), within 3 standard errors
    at every save time (dt = 1/8 step: the EM bias is below the standard error with 400 paths)."""
    sde = sgd_sde(MODEL, ETA, LAM)
    w0 = np.zeros(D)
    w0[0] = 3.0
    ts = np.linspace(0, 1000, 6)
    sol = sdesim.solve(sde, w0, ts, dt=0.125, n_paths=400, seed=1)
    n4 = np.linalg.norm(sol.ys, axis=2) ** 4
    se = n4.std(axis=1, ddof=1) / np.sqrt(n4.shape[1])
    th = theory.norm4(ts, 3.0, ETA, LAM, MODEL.tau)
    assert np.all(np.abs(n4.mean(axis=1) - th)[1:] < 3 * se[1:]), ((n4.mean(1) - th) / se)


def test_equilibrium_effective_lr_is_set_by_intrinsic_lr():
    sde = sgd_sde(MODEL, ETA, LAM)
    ts = np.array([0.0, 2500.0, 3000.0])
    sol = sdesim.solve(sde, W0, ts, dt=0.25, n_paths=400, seed=2)
    eff = ETA / np.linalg.norm(sol.ys[1:], axis=2) ** 2
    se = eff.std(axis=1, ddof=1) / np.sqrt(eff.shape[1])
    pred = theory.eta_eff_inf(ETA * LAM, MODEL.tau)
    # remaining transient at t=2500: relative gap of G is < e^{-10}; negligible
    assert np.all(np.abs(eff.mean(axis=1) - pred) < 3 * se + 1e-3 * pred), (eff.mean(1), pred)


@pytest.mark.parametrize("c", [4.0, 0.25])
def test_intrinsic_lr_same_law_for_same_product(c):
    """(eta, lam, W0) and (c eta, lam / c, sqrt(c) W0): same law of (Wbar . e, eta_eff)."""
    ts = np.array([0.0, 100.0, 400.0])
    a = sdesim.solve(sgd_sde(MODEL_H, ETA, LAM), W0, ts, dt=0.25, n_paths=1000, seed=5)
    b = sdesim.solve(sgd_sde(MODEL_H, c * ETA, LAM / c), np.sqrt(c) * W0, ts, dt=0.25, n_paths=1000, seed=6)
    for sol, eta in ((a, ETA), (b, c * ETA)):
        sol.obs = np.stack([sol.ys[1:, :, 0] / np.linalg.norm(sol.ys[1:], axis=2),
                            eta / np.linalg.norm(sol.ys[1:], axis=2) ** 2], axis=-1)
    for q in (None, 0.25, 0.5, 0.75):
        if q is None:
            da = a.obs.mean(axis=1) - b.obs.mean(axis=1)
            se = np.sqrt(a.obs.var(axis=1, ddof=1) / 1000 + b.obs.var(axis=1, ddof=1) / 1000)
            assert np.all(np.abs(da) < 4 * se), da / se
        else:  # quantiles: se from the asymptotic formula with a kernel density estimate
            qa, qb = np.quantile(a.obs, q, axis=1), np.quantile(b.obs, q, axis=1)
            spread = np.quantile(a.obs, 0.75, axis=1) - np.quantile(a.obs, 0.25, axis=1)
            dens = 1.0 / (spread * 1.35 * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((qa - a.obs.mean(1)) / (spread / 1.35)) ** 2)
            se = np.sqrt(2 * q * (1 - q) / 1000) / dens
            assert np.all(np.abs(qa - qb) < 5 * se), (q, (qa - qb) / se)


def test_lr_schedule_polar_rescales_G_and_matches_full_form():
    """LR divided by 10 at t=200: the polar G jumps by 100 and |W| stays continuous, so the
    polar and full forms still agree on the same path."""
    lr = Schedule([ETA, ETA / 10], [200.0])
    full = sgd_sde(MODEL_H, lr, LAM)
    polar = polar_sde(MODEL_H, lr, LAM)
    ts = np.array([0.0, 199.5, 200.0, 200.5, 400.0])
    kw = dict(n_paths=50, seed=8, dt=0.125)
    a = sdesim.solve(full, W0, ts, **kw)
    b = sdesim.solve(polar, polar_state(W0, lr), ts, **kw)
    np.testing.assert_allclose(b.ys[2:, :, D + 1], ETA / 10)
    ratio = b.ys[2, :, D] / b.ys[1, :, D]
    assert np.all((ratio > 80) & (ratio < 120))
    err = np.abs(full_from_polar(b.ys) - a.ys).max()
    assert err < 1e-2 * np.abs(a.ys).max()


def test_theory_formulas_are_consistent():
    lam_e, tau = 1e-3, 9.0
    G0 = 5 * theory.G_inf(lam_e, tau)
    t = theory.equilibration_time(G0 / theory.G_inf(lam_e, tau), lam_e, 0.01)
    assert np.isclose(theory.relative_gap(t, G0, lam_e, tau), 0.01)
    assert np.isclose(theory.eta_eff_inf(lam_e, tau), theory.G_inf(lam_e, tau) ** -0.5)
    assert np.isclose(theory.lr_decay_eta_eff_ratio(0.0, 10, lam_e / 10), 0.1)
    assert np.isclose(theory.lr_decay_eta_eff_ratio(1e9, 10, lam_e / 10), 10**-0.5)
    assert np.isclose(theory.wd_decay_eta_eff_ratio(0.0, 10, lam_e / 10), 1.0)
    assert np.isclose(theory.direction_correlation(0.0, G0, lam_e, tau), 1.0)
    eq = theory.direction_correlation(100.0, theory.G_inf(lam_e, tau), lam_e, tau)
    assert np.isclose(eq, np.exp(-lam_e * 100.0), rtol=1e-3)
    # norm4 solves d(n4)/dt = -4 lam_e n4 + 2 eta^2 tau
    eta, lam = 0.1, 0.01
    h = 1e-4
    n = lambda s: theory.norm4(s, 2.0, eta, lam, tau)
    deriv = (n(50 + h) - n(50 - h)) / (2 * h)
    assert np.isclose(deriv, -4 * eta * lam * n(50) + 2 * eta**2 * tau, rtol=1e-6)


def test_the_experiments_functionals_read_sgd_sdes_args_by_name():
    """The norm-equilibration experiment's reduce functional (classifier) and settle event (sphere)
    read sgd_sde's SGDArgs by name (args.params, args.lr_values): a solve with each runs and gives
    the values they define."""
    import sdesim
    from sdesim.app.experiments import norm_equilibration as ne
    from sdesim.normalized import NormalizedLinearClassifier, gaussian_mixture

    model = NormalizedLinearClassifier(gaussian_mixture(n=40, dim=3, n_classes=2, seed=1), batch_size=8)
    w0 = np.random.default_rng(0).normal(size=model.d)
    sol = sdesim.solve(sgd_sde(model, 0.1, 0.01), w0, np.array([0.0, 1.0]), dt=1.0, n_paths=2, seed=0, reduce=True,
                       functional=ne._digits_functional(model), functional_dim=2)
    r2 = float(w0 @ w0)
    assert np.allclose(sol.mean[0], [r2 * r2, model.noise_traces(w0)[0] * r2], rtol=1e-12)
    sphere = SphereModel(5)
    for w, expected in ((3.0, np.nan), (0.5, 0.0)):  # |W|^4 = 2025 or 1.6 against (1.05) G_inf eta^2 = 21
        sol = sdesim.solve(sgd_sde(sphere, 0.1, 0.01), np.full(5, w), np.array([0.0, 2.0]), dt=1.0, n_paths=2,
                           seed=0, event=ne.settle_event(sphere, 0.05))
        assert np.array_equal(sol.event_t, [expected, expected], equal_nan=True)

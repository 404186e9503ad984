"""The property suite: sdesim's claims checked over generated inputs with :mod:`sdesim.testing`.

Examples per property follow the hypothesis profile (``tests/conftest.py``: ``sdesim-ci`` by default,
5 examples; ``HYPOTHESIS_PROFILE=sdesim-thorough`` for 50). Statistical tolerances come from the
fitted slopes' standard errors (``assert_strong_order``: ``max(0.15, 3 SE)``).
"""

import numpy as np
from hypothesis import given, strategies as st

import sdesim
from sdesim.solvers import SOLVERS
from sdesim.testing import (NOISES, assert_mean_close, assert_same_distribution, assert_strong_order,
                            dt_refinements, exact_problems, schedules, seeds, sphere_models, time_grids)
from sdesim.normalized import full_from_polar, polar_sde, polar_state, sgd_sde


def _schemes(noise, calculus):
    return sorted(n for n, s in SOLVERS.items() if s.accepts(noise) and calculus in s.calculus)


@given(data=st.data())
def test_every_scheme_converges_at_least_at_its_declared_order(data):
    """Ito: any exact problem, any scheme that accepts its noise. "At least": with weak noise a
    scheme's deterministic error (order 1 for Euler) hides the stochastic one at these steps."""
    noise = data.draw(st.sampled_from(NOISES), label="noise")
    problem = data.draw(exact_problems(noise=noise), label="problem")
    method = data.draw(st.sampled_from(_schemes(noise, "ito")), label="method")
    assert_strong_order(problem, method, at_least=True, n_paths=400, seed=data.draw(seeds(), label="seed"))


@given(data=st.data())
def test_stratonovich_schemes_converge_at_least_at_their_declared_order(data):
    noise = data.draw(st.sampled_from(("scalar", "diagonal", "commutative")), label="noise")
    problem = data.draw(exact_problems(noise=noise, calculus="stratonovich"), label="problem")
    method = data.draw(st.sampled_from(_schemes(noise, "stratonovich")), label="method")
    assert_strong_order(problem, method, at_least=True, n_paths=400, seed=data.draw(seeds(), label="seed"))


@given(problem=exact_problems(noise="diagonal", dims=(1,)), seed=seeds(), ts=time_grids(), ref=dt_refinements(),
       threads=st.integers(1, 3), n=st.integers(2, 40), head=st.integers(1, 40))
def test_the_brownian_path_is_one_function_of_time(problem, seed, ts, ref, threads, n, head):
    """For any seed, save times (on or off the grid), refinement dt -> dt / 2**k, interval split,
    thread count and number of paths: the saved W is the same."""
    dt, k = ref
    head = min(head, n)
    bm = sdesim.BrownianPath(seed, 1, unit=dt)
    common = dict(method="euler", save_brownian=True, bm=bm)
    coarse = sdesim.solve(problem.sde, problem.y0, ts, dt=dt, n_paths=n, n_threads=threads, **common)
    fine = sdesim.solve(problem.sde, problem.y0, ts, dt=dt / 2**k, n_paths=head, n_threads=1, **common)
    np.testing.assert_allclose(fine.ws, coarse.ws[:, :head], rtol=0, atol=1e-12)
    np.testing.assert_allclose(coarse.ws, bm.values(ts, np.arange(n), dt=dt), rtol=0, atol=1e-12)
    j = len(ts) // 2
    if 0 < j < len(ts) - 1:  # a continuation reads the rest of the same path
        rest = sdesim.solve(problem.sde, problem.y0, ts[j:], dt=dt, n_paths=n, **common)
        np.testing.assert_allclose(rest.ws + coarse.ws[j], coarse.ws[j:], rtol=0, atol=1e-12)


@given(model=sphere_models(dims=(3, 6)), c=st.floats(0.01, 100.0), seed=seeds(),
       log_eta=st.floats(-2.0, 0.0), log_lam_e=st.floats(-3.0, -1.0))
def test_the_scale_equivalence_holds_exactly(model, c, seed, log_eta, log_lam_e):
    """(eta, lam, W_0) -> (c eta, lam / c, sqrt(c) W_0) maps Euler paths onto each other:
    W' = sqrt(c) W at every save time, to rounding (the scheme is covariant, not just the SDE)."""
    eta, lam = 10.0**log_eta, 10.0**log_lam_e / 10.0**log_eta
    w0 = np.linspace(1.0, 2.0, model.d)
    ts = np.linspace(0.0, 20.0, 5)
    a = sdesim.solve(sgd_sde(model, eta, lam), w0, ts, dt=1.0, n_paths=8, seed=seed)
    b = sdesim.solve(sgd_sde(model, c * eta, lam / c), np.sqrt(c) * w0, ts, dt=1.0, n_paths=8, seed=seed)
    np.testing.assert_allclose(b.ys, np.sqrt(c) * a.ys, rtol=1e-9, atol=0)


@given(model=sphere_models(dims=(4,)), lr=schedules(max_knots=2, t_max=40.0, low=0.02, high=0.3), seed=seeds())
def test_full_and_polar_forms_agree_for_any_schedule(model, lr, seed):
    """Ito's lemma, pathwise: the full SDE and the direction/norm SDE driven by one Brownian path
    give the same W up to the schemes' strong error, for any learning-rate schedule (the polar
    form rescales G at each change): a 4x smaller step shrinks the gap by at least 1.6x (order
    >= 1/2 gives 2x)."""
    wd = 0.02
    w0 = np.full(model.d, 2.0 / np.sqrt(model.d))
    ts = np.array([0.0, 40.0])
    gaps = []
    for dt in (0.5, 0.125):
        kw = dict(n_paths=64, seed=seed, dt=dt)
        a = sdesim.solve(sgd_sde(model, lr, wd), w0, ts, **kw).ys[-1]
        b = sdesim.solve(polar_sde(model, lr, wd), polar_state(w0, float(lr.values[0])), ts, **kw).ys[-1]
        gaps.append(np.sqrt(np.mean((a - full_from_polar(b)) ** 2) / np.mean(a**2)))
    assert gaps[1] < gaps[0] / 1.6, gaps


@given(problem=exact_problems(noise=("diagonal", "additive"), dims=(1,)), seed=seeds())
def test_euler_ensembles_follow_the_exact_law(problem, seed):
    """At a fine step the Euler ensemble at t = 1 and the exact solution on independent paths agree
    in distribution (KS, alpha = 1e-3) and in mean (4 combined SE)."""
    ts = np.array([0.0, 1.0])
    sol = sdesim.solve(problem.sde, problem.y0, ts, method="milstein", dt=2.0**-8, n_paths=2000, seed=seed)
    other = sdesim.solve(problem.sde, problem.y0, ts, method="euler", dt=2.0**-8, n_paths=4000, seed=seed,
                         save_brownian=True)
    exact = problem.exact(other.ts, other.ws)[-1][2000:]  # paths 2000.. : independent of sol's 0..1999
    assert_same_distribution(sol.ys[-1], exact)
    assert_mean_close(sol.ys[-1], exact.mean(axis=0), target_se=exact.std(axis=0, ddof=1) / np.sqrt(len(exact)))


def test_the_assertions_can_fail():
    """Each assertion rejects what it should (else the properties above prove nothing)."""
    import pytest
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError):
        assert_same_distribution(rng.normal(size=2000), rng.normal(0.3, 1.0, size=2000))
    with pytest.raises(AssertionError):
        assert_mean_close(rng.normal(0.2, 1.0, size=4000), 0.0)
    from sdesim.testing import gbm_problem
    with pytest.raises(AssertionError):  # Milstein on GBM is order 1, not 1.5
        assert_strong_order(gbm_problem([0.1], [0.5], [1.0]), "milstein", order=1.5, n_paths=400)

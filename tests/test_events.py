"""Events and first passage (solve(..., event=, stop_at_event=)): exact location for a path linear
in time, the first-passage law of Brownian motion (reflection principle with the discrete-monitoring
shift), events at ts[0], stopping in stored and reduced solves, and the errors."""

import math

import numpy as np
import pytest

import sdesim


def _drift_one(t, y, args, out):
    out[0] = args[0]


def _diffusion_const(t, y, args, out):
    out[0, 0] = args[1]


def _above(t, y, args):
    return y[0] - args[2]


def _sde(rate, sigma, level):
    return sdesim.SDE(_drift_one, _diffusion_const, dim=1, noise_dim=1, noise="additive", args=(rate, sigma, level))


def test_event_of_a_linear_path_is_exact_and_stops_it():
    ts = np.linspace(0.0, 1.0, 11)
    sde = _sde(1.0, 0.0, 0.37)  # y = t: the event value is linear in time within every step
    sol = sdesim.solve(sde, np.zeros(1), ts, dt=0.1, n_paths=3, seed=1, event=_above)
    np.testing.assert_allclose(sol.event_t, 0.37, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(sol.ys))
    stopped = sdesim.solve(sde, np.zeros(1), ts, dt=0.1, n_paths=3, seed=1, event=_above, stop_at_event=True)
    np.testing.assert_array_equal(stopped.event_t, sol.event_t)
    assert np.all(np.isfinite(stopped.ys[ts <= 0.3])) and np.all(np.isnan(stopped.ys[ts >= 0.4]))
    # not reached: NaN
    far = sdesim.solve(_sde(1.0, 0.0, 5.0), np.zeros(1), ts, dt=0.1, n_paths=2, seed=1, event=_above)
    assert np.all(np.isnan(far.event_t))


def test_an_event_does_not_change_the_paths():
    ts = np.linspace(0.0, 1.0, 5)
    sde = _sde(0.2, 1.0, 0.5)
    a = sdesim.solve(sde, np.zeros(1), ts, dt=0.01, n_paths=50, seed=4)
    b = sdesim.solve(sde, np.zeros(1), ts, dt=0.01, n_paths=50, seed=4, event=_above)
    np.testing.assert_array_equal(a.ys, b.ys)
    hit = ~np.isnan(b.event_t)
    assert hit.any() and (~hit).any()
    # a path whose saved value is above the level has had its event by then
    assert np.all(hit[(b.ys[:, :, 0] >= 0.5).any(axis=0)])


def test_first_passage_of_brownian_motion():
    """P(max_{s<=T} W_s >= a) = 2 (1 - Phi(a / sqrt(T))) (reflection principle); monitored at steps
    of dt the level is effectively a + 0.5826 sqrt(dt) (Broadie, Glasserman & Kou 1997). The
    observed fraction must lie within 4 standard errors of that."""
    a, T, dt, n = 1.0, 1.0, 2.0**-8, 20000
    sol = sdesim.solve(_sde(0.0, 1.0, a), np.zeros(1), np.array([0.0, T]), dt=dt, n_paths=n, seed=9,
                       event=_above, stop_at_event=True)
    hit = np.isfinite(sol.event_t)
    shifted = a + 0.5826 * math.sqrt(dt)
    p = 2.0 * (1.0 - 0.5 * (1.0 + math.erf(shifted / math.sqrt(2.0 * T))))
    se = math.sqrt(p * (1.0 - p) / n)
    assert abs(hit.mean() - p) < 4.0 * se, (hit.mean(), p, se)
    assert np.all((sol.event_t[hit] > 0.0) & (sol.event_t[hit] <= T))


def test_event_at_the_start_and_reduced_counts():
    ts = np.linspace(0.0, 1.0, 6)
    at_start = sdesim.solve(_sde(0.0, 1.0, -1.0), np.zeros(1), ts, dt=0.05, n_paths=4, seed=2, event=_above,
                            stop_at_event=True)
    np.testing.assert_array_equal(at_start.event_t, 0.0)
    assert np.all(np.isnan(at_start.ys[1:])) and np.all(at_start.ys[0] == 0.0)
    sde = _sde(0.3, 1.0, 0.8)
    full = sdesim.solve(sde, np.zeros(1), ts, dt=0.01, n_paths=300, seed=5, event=_above, stop_at_event=True)
    red = sdesim.solve(sde, np.zeros(1), ts, dt=0.01, n_paths=300, seed=5, event=_above, stop_at_event=True,
                       reduce=True)
    np.testing.assert_array_equal(red.event_t, full.event_t)
    alive = ~np.isnan(full.ys[:, :, 0])
    np.testing.assert_array_equal(red.count, alive.sum(axis=1))
    np.testing.assert_allclose(red.mean[:, 0], np.nanmean(full.ys[:, :, 0], axis=1), rtol=1e-12, atol=1e-15)


def test_event_errors():
    sde, y0, ts = _sde(1.0, 1.0, 0.5), np.zeros(1), np.array([0.0, 1.0])
    with pytest.raises(TypeError, match="event must be a function"):
        sdesim.solve(sde, y0, ts, dt=0.1, event=3.0)
    with pytest.raises(ValueError, match="stop_at_event=True needs an event"):
        sdesim.solve(sde, y0, ts, dt=0.1, stop_at_event=True)
    with pytest.raises(ValueError, match="must return a number"):
        sdesim.solve(sde, y0, ts, dt=0.1, event=lambda t, y, args: None)
    with pytest.raises(ValueError, match="device='cpu' only"):
        sdesim.solve(sde, y0, ts, dt=0.1, event=_above, device="cuda")

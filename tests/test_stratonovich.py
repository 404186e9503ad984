"""Stratonovich SDEs: Euler-Heun and Milstein (Stratonovich integrals) reach their declared strong
orders against exact Stratonovich solutions on shared Brownian paths; the calculus is checked
against the scheme; the Ito <-> Stratonovich drift conversion gives the same process.

Tolerance as in test_strong_order.py: fitted slope within 0.15 of the declared order (the standard
error of a slope over 1,500 paths is a few hundredths)."""

import numpy as np
import pytest

import sdesim
from sdesim.analysis import fit_order, strong_error
from sdesim.reference import (LIN_B, gbm_analytic, gbm_exact, gbm_stratonovich, lin_commutative,
                              lin_commutative_stratonovich, lin_scalar_stratonovich, linear_exact,
                              noncommutative, noncommutative_stratonovich)
from sdesim.solvers import SOLVERS

TS = np.array([0.0, 0.5, 1.0])
DTS = [2.0**-k for k in range(3, 8)]
PATHS = 1500


def _slope(sde, method, exact, y0, paths=PATHS):
    errs = []
    for dt in DTS:
        sol = sdesim.solve(sde, y0, TS, method=method, dt=dt, n_paths=paths, seed=21, save_brownian=True)
        errs.append(strong_error(sol.ys[-1], exact(sol.ts, sol.ws, y0)[-1])[0])
    slope, _, se = fit_order(DTS, errs)
    return slope, se, errs


CASES = {
    "gbm-diagonal": (gbm_stratonovich, lambda t, w, y0: gbm_exact(t, w, y0, "stratonovich"), np.array([1.0, 0.7])),
    "linear-scalar": (lin_scalar_stratonovich, lambda t, w, y0: linear_exact(t, w, y0, LIN_B[:1], "stratonovich"),
                      np.array([1.0, 0.5])),
    "linear-commutative": (lin_commutative_stratonovich,
                           lambda t, w, y0: linear_exact(t, w, y0, LIN_B, "stratonovich"), np.array([1.0, 0.5])),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["euler_heun", "milstein"])
def test_strong_order_against_exact_stratonovich_solution(case, method):
    sde, exact, y0 = CASES[case]
    order = SOLVERS[method].strong_order[sde.noise]
    slope, se, errs = _slope(sde, method, exact, y0)
    assert abs(slope - order) < 0.15, (case, method, slope, se, errs)


def test_noncommutative_stratonovich_orders():
    """General noise: Milstein with Levy areas of the same path has order 1, Euler-Heun (no areas)
    order 1/2, both against a fine Milstein solve on the same path."""
    y0 = np.array([0.3, 0.0])
    common = dict(n_paths=400, seed=5, save_brownian=True)
    ref = sdesim.solve(noncommutative_stratonovich, y0, TS, method="milstein", dt=2.0**-9, **common)
    for method, order in (("milstein", 1.0), ("euler_heun", 0.5)):
        errs = []
        for dt in DTS[:4]:
            sol = sdesim.solve(noncommutative_stratonovich, y0, TS, method=method, dt=dt, **common)
            errs.append(strong_error(sol.ys[-1], ref.ys[-1])[0])
        slope, _, se = fit_order(DTS[:4], errs)
        assert abs(slope - order) < 0.15, (method, slope, se, errs)


def test_the_calculus_must_match_the_scheme():
    y0, ts = np.array([0.3, 0.0]), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="integrates ito SDEs, not stratonovich.*euler_heun"):
        sdesim.solve(noncommutative_stratonovich, y0, ts, method="euler", dt=0.1, seed=1)
    with pytest.raises(ValueError, match="integrates stratonovich SDEs, not ito"):
        sdesim.solve(noncommutative, y0, ts, method="euler_heun", dt=0.1, seed=1)
    with pytest.raises(ValueError, match="calculus must be one of"):
        sdesim.SDE(lambda t, y, a, o: None, lambda t, y, a, o: None, dim=1, noise="scalar", calculus="ito ")


def test_ito_to_stratonovich_conversion_is_the_same_process():
    """The Ito GBM converted to Stratonovich and solved by Euler-Heun converges at order 1 to the Ito
    exact solution; the Stratonovich GBM converted to Ito and solved by Milstein to the Stratonovich
    one (a wrong correction would leave an O(1) error floor, a fitted slope near 0)."""
    y0 = np.array([1.0, 0.7])
    converted = gbm_analytic.to_stratonovich()
    assert converted.calculus == "stratonovich" and converted.to_stratonovich() is converted
    slope, se, errs = _slope(converted, "euler_heun", lambda t, w, y: gbm_exact(t, w, y, "ito"), y0, paths=800)
    assert abs(slope - 1.0) < 0.15, (slope, se, errs)  # (a wrong drift would leave an error floor: slope ~0)
    back = gbm_stratonovich.to_ito()
    slope, se, errs = _slope(back, "milstein", lambda t, w, y: gbm_exact(t, w, y, "stratonovich"), y0, paths=800)
    assert abs(slope - 1.0) < 0.15, (slope, se, errs)  # (a wrong drift would leave an error floor: slope ~0)
    with pytest.raises(ValueError, match="needs diffusion_derivative"):
        lin_commutative.to_stratonovich()

"""Hypothesis strategies for testing SDE code: exact problems, seeds, time grids, step refinements,
scale-invariant models and schedules. Import with the ``test`` extra (``hypothesis``).

Coefficients are drawn in ranges that keep the solutions tame over ``[0, 1]`` (no blow-up, errors
dominated by the scheme), noise coefficients of magnitude 0.1 to 0.6 (no deterministic problem), and
dimensions from a small set: each new dimension (or family, or
scheme) compiles a kernel once (seconds), every further example of it reuses it.
"""

import numpy as np
from hypothesis import strategies as st

from .problems import additive_problem, arctan_problem, gbm_problem, linear_problem, sinh_problem

__all__ = ["NOISES", "exact_problems", "seeds", "time_grids", "dt_refinements", "sphere_models", "schedules"]

#: The noise structures :func:`exact_problems` covers.
NOISES = ("scalar", "diagonal", "commutative", "additive")

_coef = st.floats(-0.5, 0.5, allow_nan=False)
_noise_coef = st.floats(0.1, 0.6, allow_nan=False)


def _vector(n, elements):
    return st.lists(elements, min_size=n, max_size=n).map(np.array)


@st.composite
def _orthogonal(draw, dim):
    seed = draw(st.integers(0, 2**32 - 1))
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


@st.composite
def _linear(draw, m, calculus, dims):
    dim = draw(st.sampled_from(dims))
    a = draw(_vector(dim, _coef))
    b = np.stack([draw(_vector(dim, _noise_coef)) * draw(st.sampled_from([-1.0, 1.0])) for _ in range(m)])
    q = draw(_orthogonal(dim))
    y0 = draw(_vector(dim, st.floats(0.2, 1.5)))
    return linear_problem(a, b, q, y0, calculus)


@st.composite
def _gbm(draw, calculus, dims):
    dim = draw(st.sampled_from(dims))
    return gbm_problem(draw(_vector(dim, _coef)), draw(_vector(dim, _noise_coef)),
                       draw(_vector(dim, st.floats(0.2, 1.5))), calculus)


@st.composite
def _additive(draw, calculus, dims):
    dim = draw(st.sampled_from(dims))
    m = draw(st.sampled_from(sorted({1, dim})))
    # entries of magnitude 0.1 .. 0.8: every component is noisy (no degenerate, deterministic problem)
    C = np.stack([draw(_vector(m, _noise_coef)) * draw(_vector(m, st.sampled_from([-1.0, 1.0])))
                  for _ in range(dim)])
    return additive_problem(draw(_vector(dim, _coef)), C, draw(_vector(dim, st.floats(-1.0, 1.0))), calculus)


@st.composite
def _scalar_nonlinear(draw, calculus):
    a = draw(st.floats(0.2, 1.0))
    if draw(st.booleans()):
        return arctan_problem(a, draw(st.floats(-1.0, 1.0)), calculus)
    return sinh_problem(a, draw(st.floats(-1.0, 1.0)), calculus)


def exact_problems(noise=None, calculus="ito", dims=(1, 2)):
    """:class:`~sdesim.testing.problems.ExactProblem` instances with random coefficients.

    ``noise``: one of :data:`NOISES` (or a tuple of them; default all); ``calculus``: "ito" or
    "stratonovich"; ``dims``: the state dimensions drawn (commutative noise uses ``dim >= 2``).
    """
    noises = NOISES if noise is None else ((noise,) if isinstance(noise, str) else tuple(noise))
    unknown = set(noises) - set(NOISES)
    if unknown:
        raise ValueError(f"exact_problems covers noise in {NOISES}, not {sorted(unknown)}")
    options = []
    for nz in noises:
        if nz == "scalar":
            options += [_linear(1, calculus, dims), _scalar_nonlinear(calculus)]
        elif nz == "diagonal":
            options.append(_gbm(calculus, dims))
        elif nz == "commutative":
            options.append(_linear(2, calculus, tuple(d for d in dims if d >= 2) or (2,)))
        else:
            options.append(_additive(calculus, dims))
    return st.one_of(*options)


def seeds():
    """Seeds ``solve(seed=)`` and :class:`sdesim.BrownianPath` accept: ints in ``[0, 2**64)``."""
    return st.integers(0, 2**64 - 1)


@st.composite
def time_grids(draw, t_max=4.0, max_points=6, start=None):
    """Strictly increasing save times in ``[start, start + t_max]`` (``start`` drawn from
    ``[-2, 2]`` unless given), 2 to ``max_points`` of them, at least ``t_max / 1000`` apart."""
    t0 = draw(st.floats(-2.0, 2.0)) if start is None else float(start)
    gaps = draw(st.lists(st.floats(t_max / 1000, t_max / (max_points - 1)), min_size=1, max_size=max_points - 1))
    return t0 + np.concatenate([[0.0], np.cumsum(gaps)])


@st.composite
def dt_refinements(draw, max_levels=3):
    """``(dt, k)``: a step ``unit * 2**e`` and a refinement ``k`` in ``1 .. max_levels``, so that
    ``dt`` and ``dt / 2**k`` read the same Brownian path."""
    unit = draw(st.sampled_from([1.0, 0.1, 0.3, 1.7]))
    e = draw(st.integers(-6, -1))
    return unit * 2.0**e, draw(st.integers(1, max_levels))


@st.composite
def sphere_models(draw, dims=(3, 5, 10), with_loss=None):
    """:class:`sdesim.normalized.SphereModel` with a random noise scale and, unless ``with_loss`` is
    False, possibly a random diagonal loss ``H``."""
    from ..normalized import SphereModel
    d = draw(st.sampled_from(dims))
    s = draw(st.floats(0.3, 2.0))
    loss = draw(st.booleans()) if with_loss is None else with_loss
    H = np.diag(draw(_vector(d, st.floats(0.0, 2.0)))) if loss else None
    return SphereModel(d, s=s, H=H)


@st.composite
def schedules(draw, max_knots=3, t_max=100.0, low=1e-3, high=1.0):
    """:class:`sdesim.normalized.Schedule`: piecewise-constant positive rates with up to ``max_knots``
    change times in ``(0, t_max)``."""
    from ..normalized import Schedule
    n = draw(st.integers(0, max_knots))
    times = sorted(set(draw(st.lists(st.floats(t_max / 100, t_max), min_size=n, max_size=n))))
    values = draw(st.lists(st.floats(low, high), min_size=len(times) + 1, max_size=len(times) + 1))
    return Schedule(values, times)

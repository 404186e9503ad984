"""Testing your own SDE code with sdesim.testing: run ``python -m pytest examples/property_tests.py``.

Three patterns: (1) your scheme or settings against the exact problems sdesim generates; (2) your own
SDE with a closed form wrapped as an ExactProblem; (3) an invariance of your model, over generated
inputs. Needs the ``test`` extra (hypothesis, pytest).
"""

import numba as nb
import numpy as np
from hypothesis import given, strategies as st

import sdesim
from sdesim.testing import (ExactProblem, assert_same_distribution, assert_strong_order, exact_problems,
                            load_profile, seeds)

load_profile()  # sdesim-ci (5 examples per property) unless HYPOTHESIS_PROFILE says otherwise


# (1) Milstein on any generated diagonal-noise problem: strong order 1
@given(problem=exact_problems(noise="diagonal"))
def test_milstein_on_generated_problems(problem):
    assert_strong_order(problem, "milstein", n_paths=400)


# (2) your own SDE with a known solution:
#     dY = -Y (1 - Y^2) dt + (1 - Y^2) dW  has  Y_t = tanh(W_t + atanh Y_0)  (|Y| < 1 throughout)
@nb.njit
def drift(t, y, args, out):
    out[0] = -y[0] * (1.0 - y[0] * y[0])


@nb.njit
def diffusion(t, y, args, out):
    out[0] = 1.0 - y[0] * y[0]


def tanh_problem(y0):
    sde = sdesim.SDE(drift, diffusion, dim=1, noise="scalar", name="tanh")
    y0 = np.array([y0])
    return ExactProblem(sde, y0, lambda ts, ws: np.tanh(ws + np.arctanh(y0)), "tanh")


@given(y0=st.floats(-0.8, 0.8))
def test_my_sde_converges_at_order_one_with_milstein(y0):
    # at_least: at these steps the slope on this problem is 1.0-1.2 (pre-asymptotic, from above)
    assert_strong_order(tanh_problem(y0), "milstein", n_paths=400, at_least=True)


# (3) an invariance: the law of Y_1 does not depend on the seed
@given(a=seeds(), b=seeds())
def test_two_seeds_give_the_same_law(a, b):
    p = tanh_problem(0.2)
    ya = sdesim.solve(p.sde, p.y0, [0.0, 0.5], method="milstein", dt=2.0**-6, n_paths=2000, seed=a).ys[-1]
    yb = sdesim.solve(p.sde, p.y0, [0.0, 0.5], method="milstein", dt=2.0**-6, n_paths=2000, seed=b).ys[-1]
    assert_same_distribution(ya, yb)

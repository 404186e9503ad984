"""Property-based testing of SDE code: hypothesis strategies, exact problems and statistical
assertions (needs the ``test`` extra: ``pip install sdesim[test]``).

    from hypothesis import given
    from sdesim.testing import exact_problems, assert_strong_order

    @given(exact_problems(noise="diagonal"))
    def test_milstein_order(problem):
        assert_strong_order(problem, "milstein")

Hypothesis profiles (``sdesim.testing.profiles``): ``sdesim-ci`` (5 derandomized examples, no deadline) and
``sdesim-thorough``; ``load_profile()`` picks ``$HYPOTHESIS_PROFILE`` (default ``sdesim-ci``).
"""

from .checks import assert_mean_close, assert_same_distribution, assert_strong_order, fitted_strong_order
from .problems import ExactProblem, additive_problem, arctan_problem, gbm_problem, linear_problem, sinh_problem
from .profiles import load_profile
from .strategies import (NOISES, dt_refinements, exact_problems, schedules, seeds, sphere_models,
                         time_grids)

__all__ = ["ExactProblem", "linear_problem", "gbm_problem", "additive_problem", "arctan_problem", "sinh_problem",
           "exact_problems", "seeds", "time_grids", "dt_refinements", "sphere_models", "schedules", "NOISES",
           "fitted_strong_order", "assert_strong_order", "assert_same_distribution", "assert_mean_close",
           "load_profile"]

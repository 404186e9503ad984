"""Hypothesis profiles for property suites of SDE code.

* ``sdesim-ci``: 5 examples per property, derandomized (the same examples every run: a statistical
  property at significance ``alpha`` cannot fail CI at random), no deadline (kernels compile on
  first use), no database writes: a property suite fits a CI budget.
* ``sdesim-thorough``: 50 random examples per property, for a release or a night run (statistical
  properties then fail at their stated rates, ``alpha`` per example).

``load_profile()`` registers both and loads ``$HYPOTHESIS_PROFILE`` (default ``sdesim-ci``); a
``@settings(max_examples=...)`` on a test overrides the profile for that test.
"""

import os

from hypothesis import HealthCheck, settings

__all__ = ["CI", "THOROUGH", "load_profile"]

CI, THOROUGH = "sdesim-ci", "sdesim-thorough"
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


def load_profile(name=None):
    """Register the two profiles and load ``name`` (default ``$HYPOTHESIS_PROFILE`` or ``sdesim-ci``);
    returns the name loaded."""
    settings.register_profile(CI, max_examples=5, deadline=None, database=None, derandomize=True,
                              suppress_health_check=_SLOW)
    settings.register_profile(THOROUGH, max_examples=50, deadline=None, suppress_health_check=_SLOW)
    name = name or os.environ.get("HYPOTHESIS_PROFILE", CI)
    settings.load_profile(name)  # (one of the two, or a profile the caller registered)
    return name

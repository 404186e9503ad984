"""Hypothesis profile for the whole suite (see sdesim.testing.profiles): ``sdesim-ci`` unless
``HYPOTHESIS_PROFILE`` names another; tests with their own ``@settings`` keep theirs."""

from sdesim.testing import load_profile

load_profile()

"""The paper's part of sdesim: scale-invariant models, the SGD SDE in full and polar form,
schedules, closed-form theory and discrete SGD (Li, Lyu & Arora 2020). Time is in SGD steps."""

from . import theory
from .builders import SGDArgs, full_from_polar, polar_sde, polar_state, sgd_sde
from .classifier import ClassifierParams, NormalizedLinearClassifier
from .contract import ScaleInvariantModel
from .data import Dataset, gaussian_mixture, load_digits
from .mlp import MLPParams, WeightNormMLP
from .models import SphereModel, SphereParams, group_norms
from .schedules import Schedule
from .sgd import SGDDivergenceError, SGDResult, run_sgd, sgd_draws, svag_coefficients

__all__ = ["ScaleInvariantModel", "SphereModel", "NormalizedLinearClassifier", "WeightNormMLP", "Dataset", "load_digits",
           "gaussian_mixture", "group_norms", "Schedule", "sgd_sde", "polar_sde", "polar_state",
           "full_from_polar", "theory", "run_sgd", "SGDResult", "SGDDivergenceError", "sgd_draws",
           "svag_coefficients", "SphereParams", "ClassifierParams", "MLPParams", "SGDArgs"]

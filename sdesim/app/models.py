"""The models a config may name, in one registry: each entry gives its TOML keys (kind and default),
the state dimension a checked parameter table gives, the checks across keys, and how to build the
model. :mod:`.config` reads the keys, the dimension and the checks; :mod:`.simulate` builds.
A new model is its class in :mod:`sdesim.normalized` plus one entry here."""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ["ConfigModel", "CONFIG_MODELS"]

DIGITS_DATA = {"test_fraction": ("fraction", 0.25), "split_seed": ("seed", 0)}
MIXTURE_DATA = {"n": ("int>=2", 200), "dim": ("int>=1", 5), "n_classes": ("int>=2", 3),
                "separation": ("positive", 2.0), "n_test": ("int>=0", 0), "data_seed": ("seed", 0)}
_BATCH = {"batch_size": ("int>=1", 32), "replace": ("bool", False), "scale": ("positive", 5.0)}
#: features (with the bias) and classes of scikit-learn's digits: 8 x 8 pixels + 1, 10 classes
DIGITS_FEATURES, DIGITS_CLASSES = 65, 10


@dataclass(frozen=True)
class ConfigModel:
    """One model of the config: ``keys`` {parameter: (kind, default)}; ``dim(m)`` the state dimension
    of a checked table ``m``; ``check(m, fail)`` cross-key checks calling ``fail(key, expected, got)``;
    ``build(m)`` the model object."""

    keys: Dict[str, Tuple[Any, Any]]
    dim: Callable[[dict], int]
    build: Callable[[dict], Any]
    check: Optional[Callable[[dict, Callable], None]] = None


def _data(m, name):
    from ..normalized import gaussian_mixture, load_digits
    if name == "digits":
        return load_digits(test_fraction=m["test_fraction"], seed=m["split_seed"])
    return gaussian_mixture(n=m["n"], dim=m["dim"], n_classes=m["n_classes"], separation=m["separation"],
                            n_test=m["n_test"], seed=m["data_seed"])


def _features(m, name):
    return DIGITS_FEATURES if name == "digits" else m["dim"] + 1


def _sphere(m):
    import numpy as np

    from ..normalized import SphereModel
    return SphereModel(m["d"], s=m["s"], H=None if m["h_diag"] is None else np.diag(m["h_diag"]))


def _classifier(name):
    def build(m):
        from ..normalized import NormalizedLinearClassifier
        return NormalizedLinearClassifier(_data(m, name), batch_size=m["batch_size"], replace=m["replace"],
                                          scale=m["scale"])
    return build


def _mlp(m):
    from ..normalized import WeightNormMLP
    return WeightNormMLP(_data(m, m["data"]), hidden=m["hidden"], batch_size=m["batch_size"], replace=m["replace"],
                         gain=m["gain"], scale=m["scale"], seed=m["top_seed"])


def _check_h_diag(m, fail):
    if m["h_diag"] is not None and len(m["h_diag"]) != m["d"]:
        fail("h_diag", f"an array of {m['d']} numbers (one per dimension d)", m["h_diag"])


def _check_batch(m, fail):
    if m.get("data", "mixture") == "mixture":
        if m["batch_size"] > m["n"] or (not m["replace"] and m["batch_size"] == m["n"]):
            fail("batch_size", f"an integer in [1, n = {m['n']}) (or <= n with replace = true)", m["batch_size"])


#: model name -> its config entry
CONFIG_MODELS = {
    "sphere": ConfigModel({"d": ("int>=2", 10), "s": ("positive", 1.0), "h_diag": ("floats", None)},
                          dim=lambda m: m["d"], build=_sphere, check=_check_h_diag),
    "digits": ConfigModel({**_BATCH, **DIGITS_DATA}, dim=lambda m: DIGITS_FEATURES * DIGITS_CLASSES,
                          build=_classifier("digits")),
    "mixture": ConfigModel({**_BATCH, **MIXTURE_DATA}, dim=lambda m: (m["dim"] + 1) * m["n_classes"],
                           build=_classifier("mixture"), check=_check_batch),
    "mlp": ConfigModel({**_BATCH, "data": (("digits", "mixture"), "digits"), "hidden": ("int>=1", 8),
                        "gain": ("positive", 1.0), "top_seed": ("seed", 0), **DIGITS_DATA, **MIXTURE_DATA},
                       dim=lambda m: m["hidden"] * _features(m, m["data"]), build=_mlp, check=_check_batch),
}

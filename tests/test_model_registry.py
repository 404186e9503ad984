"""The model contract and the config's model registry: every shipped model keeps the typed contract,
declares how discrete SGD draws its gradient, and every config model builds an object whose size is
the one the config computes from its table (what the store-size check relies on)."""

import numpy as np
import pytest

from sdesim.app.config import check_model
from sdesim.app.models import CONFIG_MODELS
from sdesim.normalized import ScaleInvariantModel
from sdesim.normalized.contract import SGD_KINDS
from sdesim.normalized.sgd_kernel import _PIECES

TABLES = {"sphere": {"name": "sphere", "d": 7},
          "digits": {"name": "digits"},
          "mixture": {"name": "mixture", "n": 30, "dim": 3, "n_classes": 4, "batch_size": 5},
          "mlp": {"name": "mlp", "data": "mixture", "n": 30, "dim": 3, "hidden": 3, "batch_size": 5}}


def test_every_config_model_is_tested_here():
    assert set(TABLES) == set(CONFIG_MODELS)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_config_models_build_contract_keeping_models_of_the_declared_size(name):
    m = check_model(TABLES[name])
    model = CONFIG_MODELS[name].build(m)
    assert isinstance(model, ScaleInvariantModel)
    assert model.d == CONFIG_MODELS[name].dim(m)
    assert model.sgd_kind in SGD_KINDS
    assert model.group_offsets[0] == 0 and model.group_offsets[-1] == model.d
    assert len(model.group_offsets) == model.n_groups + 1
    w = np.linspace(0.5, 1.5, model.d)
    assert np.isclose(model.loss(3.0 * w), model.loss(w))  # scale invariance, through the contract's names


def test_sgd_knows_every_declared_kind_and_refuses_an_object_without_one():
    from sdesim.normalized import run_sgd
    assert set(_PIECES) == set(SGD_KINDS)
    with pytest.raises(TypeError, match="sgd_kind"):
        run_sgd(object(), 0.1, 1e-3, np.ones(3), [0, 1])

"""The JAX training steps of the networks with max pools lower to no ``select_and_scatter``.

Keras' max pooling lowers its gradient to ``select_and_scatter``, an atomic scatter on XLA:GPU that nothing
fuses into; ``keras_zoo.layers.max_pooling`` computes the pools by taps on JAX instead. These tests read the
lowered StableHLO of each tiny network's whole training step, with the default and with
``KERAS_ZOO_MAX_POOLING=native`` (which shows the count the default removes).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.layers import max_pooling
from tests.helpers import lowered_train_step

pytestmark = pytest.mark.backend_agnostic


def _select_and_scatter_count(name: str) -> tuple[int, int]:
    """(max-pooling layers of the tiny ``name``, ``select_and_scatter`` ops in its lowered training step)."""
    model = keras_zoo.get_model(name, preset="tiny")
    pools = sum(
        isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.MaxPooling3D)) for layer in model.layers
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *model.input_shape[1:])).astype("float32")
    y = rng.random((2, *model.output_shape[1:])).astype("float32")
    return pools, lowered_train_step(model, x, y).count("stablehlo.select_and_scatter")


@pytest.fixture
def jax_backend():
    if keras.config.backend() != "jax":
        pytest.skip("lowers the JAX training step")


@pytest.mark.parametrize("name", ["amoebanet", "unet", "genesis"])
def test_training_step_has_no_select_and_scatter(monkeypatch, jax_backend, name):
    monkeypatch.delenv(max_pooling.IMPLEMENTATION_VARIABLE, raising=False)
    pools, found = _select_and_scatter_count(name)
    assert pools > 0 and found == 0


def test_native_pooling_lowers_one_select_and_scatter_per_layer(monkeypatch, jax_backend):
    """What the default removes (and that the count above looks for the right op)."""
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, "native")
    pools, found = _select_and_scatter_count("unet")
    assert found == pools > 0

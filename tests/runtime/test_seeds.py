import random
import sys

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.runtime.seeds import seed_everything

pytestmark = pytest.mark.backend_agnostic


def _draws() -> tuple:
    """The tiny U-Net's initial weights, then one draw from Python's, NumPy's and (torch) the backend's
    global generators."""
    weights = [np.asarray(w) for w in keras_zoo.get_model("unet", preset="tiny").get_weights()]
    draws = [random.random(), np.random.random(3)]
    if keras.config.backend() == "torch":
        import torch

        draws.append(torch.rand(3).numpy())
    return weights, draws


def _assert_same(first: tuple, second: tuple) -> None:
    for a, b in zip(first[0] + first[1], second[0] + second[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_seeds_what_keras_set_random_seed_seeds(monkeypatch):
    if keras.config.backend() == "tensorflow":
        pytest.skip("under TensorFlow seed_everything is keras.utils.set_random_seed")
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # the path a JAX or torch run takes
    seed_everything(3)
    ours = _draws()
    seed_everything(3)
    _assert_same(ours, _draws())
    keras.utils.set_random_seed(3)
    _assert_same(ours, _draws())
    seed_everything(4)
    assert not np.array_equal(ours[0][0], _draws()[0][0])

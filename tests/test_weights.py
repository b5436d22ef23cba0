"""keras_zoo.weights: one loading story (legacy files under a Keras 3 name, dispatch to a network's loader)."""

import keras
import numpy as np
import pytest

from keras_zoo.registry import get_model
from keras_zoo.weights import LoadReport, load_pretrained, load_weights, save_h5_weights

pytestmark = pytest.mark.backend_agnostic


def _tiny_unet(seed: int):
    keras.utils.set_random_seed(seed)
    return get_model("unet", preset="tiny")


def test_a_legacy_h5_renamed_weights_h5_loads_by_name_with_a_report(tmp_path, capsys):
    source, target = _tiny_unet(1), _tiny_unet(2)
    path = tmp_path / "renamed.weights.h5"
    save_h5_weights(source, path)
    report = load_weights(target, str(path))
    assert isinstance(report, LoadReport) and report.matched and not report.missing
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(capsys.readouterr().err.splitlines()) < 5


def test_load_pretrained_dispatches_to_the_networks_own_loader(tmp_path, monkeypatch):
    from keras_zoo import registry

    calls = []
    registry.list_models()
    monkeypatch.setitem(registry._WEIGHTS_LOADERS, "unet", lambda model, path, **options: calls.append(options))
    load_pretrained("unet", _tiny_unet(0), "any.npz", flip=True)
    assert calls == [{"flip": True}]
    monkeypatch.delitem(registry._WEIGHTS_LOADERS, "unet")
    source, target = _tiny_unet(3), _tiny_unet(4)
    source.save_weights(str(tmp_path / "u.weights.h5"))
    assert load_pretrained("unet", target, str(tmp_path / "u.weights.h5")) is None  # Keras 3 file: by order
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)

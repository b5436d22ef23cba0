import keras
import pytest

from keras_zoo.datasets import tfdata

pytestmark = pytest.mark.backend_agnostic

tf = pytest.importorskip("tensorflow")


@pytest.fixture
def visible_devices_calls(monkeypatch):
    """The calls of ``tf.config.set_visible_devices`` made by ``tfdata.tensorflow()`` (run afresh)."""
    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda devices, kind: calls.append((devices, kind)))
    tfdata.tensorflow.cache_clear()
    yield calls
    tfdata.tensorflow.cache_clear()


def test_gpus_are_hidden_from_tensorflow_under_another_backend_once(visible_devices_calls):
    assert tfdata.tensorflow() is tf
    assert tfdata.tensorflow() is tf
    under_tensorflow = keras.config.backend() == "tensorflow"
    assert visible_devices_calls == ([] if under_tensorflow else [([], "GPU")])


def test_too_late_to_hide_the_gpus_is_a_warning(monkeypatch, caplog):
    if keras.config.backend() == "tensorflow":
        pytest.skip("TensorFlow keeps its GPUs under its own backend")

    def initialised(devices, kind):
        raise RuntimeError("Visible devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config, "set_visible_devices", initialised)
    tfdata.tensorflow.cache_clear()
    try:
        with caplog.at_level("WARNING", logger=tfdata.__name__):
            assert tfdata.tensorflow() is tf
    finally:
        tfdata.tensorflow.cache_clear()
    assert "may hold GPU memory beside the" in caplog.text

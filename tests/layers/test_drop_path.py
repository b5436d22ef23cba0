import keras
import numpy as np
import pytest

from keras_zoo.callbacks.drop_path import DropPathSchedule
from keras_zoo.layers.drop_path import DropPath

pytestmark = pytest.mark.backend_agnostic


def test_keeps_expectation_and_drops_whole_samples():
    layer = DropPath(0.6, seed=1)
    x = np.ones((4000, 3, 3, 2), "float32")
    layer.build(x.shape)
    layer.progress.assign(1.0)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = y.reshape(len(y), -1)
    # each sample is either all zero or all 1 / keep
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.6).all(1))
    kept = (per_sample[:, 0] > 0).mean()
    assert abs(kept - 0.6) < 0.03
    assert abs(y.mean() - 1.0) < 0.05


def test_identity_at_inference_and_before_the_schedule_starts():
    layer = DropPath(0.5)
    x = np.random.default_rng(0).random((8, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    # progress 0: keep probability 1, nothing dropped
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=True)), x)


def test_linear_ramp_of_keep_probability():
    layer = DropPath(0.7)
    layer.build((1, 2))
    for progress, keep in [(0.0, 1.0), (0.5, 0.85), (1.0, 0.7), (3.0, 0.7)]:
        layer.progress.assign(progress)
        assert float(keras.ops.convert_to_numpy(layer.current_keep_prob())) == pytest.approx(keep)


def test_config_round_trip_and_bad_value():
    layer = DropPath(0.8, seed=3, name="dp")
    clone = DropPath.from_config(layer.get_config())
    assert (clone.keep_prob, clone.seed, clone.name) == (0.8, 3, "dp")
    with pytest.raises(ValueError, match="keep_prob"):
        DropPath(0.0)


def test_schedule_callback_follows_optimizer_steps():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4)(inputs)
    x = DropPath(0.5, name="dp")(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("sgd", "mse")
    schedule = DropPathSchedule(total_steps=8)
    data = np.ones((8, 4), "float32"), np.ones((8, 1), "float32")
    model.fit(*data, batch_size=2, epochs=1, callbacks=[schedule], verbose=0)
    # 4 steps done of 8: the next epoch starts at progress 0.5 (keep 0.75)
    schedule.on_epoch_begin(1)
    assert float(keras.ops.convert_to_numpy(model.get_layer("dp").progress)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="total_steps"):
        DropPathSchedule(0)

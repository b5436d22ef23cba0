"""keras_zoo.layers.batch_norm: training-mode batch norm (TensorFlow's fused kernel on TensorFlow) against a
float64 NumPy computation, the moving statistics, the fallbacks to Keras' computation, and serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_zoo.layers import batch_norm
from keras_zoo.layers.batch_norm import BatchNormalization
from tests.helpers import value_and_grads

pytestmark = pytest.mark.backend_agnostic

EPSILON = 1e-3
MOMENTUM = 0.9
# U-Net/DeepLab/AmoebaNet maps (4D) and Genesis/dynamic CascadeNet volumes (5D)
SHAPES = ((4, 9, 7, 5), (3, 6, 5, 4, 6))


def reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, cotangent: np.ndarray):
    """(output, input gradient, gamma gradient, beta gradient, batch mean, biased batch variance) of a
    training-mode batch norm over every axis but the last, in float64."""
    axes = tuple(range(x.ndim - 1))
    mean, variance = x.mean(axes), x.var(axes)
    inv = 1.0 / np.sqrt(variance + EPSILON)
    normalised = (x - mean) * inv
    y = gamma * normalised + beta
    g = cotangent
    dx = gamma * inv * (g - g.mean(axes) - normalised * (g * normalised).mean(axes))
    return y, dx, (g * normalised).sum(axes), g.sum(axes), mean, variance


def built_layer(shape, dtype_policy: str = "float32") -> BatchNormalization:
    layer = BatchNormalization(momentum=MOMENTUM, epsilon=EPSILON, dtype=dtype_policy)
    layer.build(shape)
    channels = shape[-1]
    layer.gamma.assign(np.linspace(0.5, 1.5, channels).astype("float32"))
    layer.beta.assign(np.linspace(-1.0, 1.0, channels).astype("float32"))
    layer.moving_mean.assign(np.full(channels, 0.25, "float32"))
    layer.moving_variance.assign(np.full(channels, 2.0, "float32"))
    return layer


def inputs(shape, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 3.0, shape).astype("float32"), rng.normal(size=shape).astype("float32")


@pytest.mark.parametrize("shape", SHAPES)
def test_training_output_gradient_and_moving_statistics(shape):
    x, cotangent = inputs(shape)
    layer = built_layer(shape)
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    y, dx, _, _, mean, variance = reference(x.astype(np.float64), gamma, beta, cotangent)
    got_y, got_dx = value_and_grads(lambda t: layer(t, training=True), [x], cotangent)
    np.testing.assert_allclose(got_y, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_dx, dx, rtol=1e-4, atol=1e-5)
    # one training call updates the moving statistics once, with the biased variance, as Keras does (on a
    # fresh layer: under jax.vjp the update above is traced)
    layer = built_layer(shape)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.25 * MOMENTUM + mean * (1 - MOMENTUM), rtol=1e-5)
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), 2.0 * MOMENTUM + variance * (1 - MOMENTUM), rtol=1e-5
    )


def test_inference_uses_the_moving_statistics():
    shape = SHAPES[1]
    x, _ = inputs(shape, seed=1)
    layer = built_layer(shape)
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    expected = gamma * (x - 0.25) / np.sqrt(2.0 + EPSILON) + beta
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.full(shape[-1], 0.25, "float32"))


@pytest.mark.parametrize("shape", [(4, 9, 7, 16), (3, 6, 5, 4, 32), SHAPES[0]])
def test_bfloat16_policy_matches_to_bfloat16_precision(shape):
    x, cotangent = inputs(shape, seed=2)
    layer = built_layer(shape, "mixed_bfloat16")
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32"))
    y, _, _, _, mean, _ = reference(rounded.astype(np.float64), gamma, beta, cotangent)
    got = layer(x, training=True)
    assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(got, "float32")), y, rtol=1e-2, atol=2e-2
    )
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.25 * MOMENTUM + mean * (1 - MOMENTUM), rtol=1e-5)


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="the fused kernel is TensorFlow's")
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_kernel_gives_the_weight_gradients(shape):
    import tensorflow as tf

    x, cotangent = inputs(shape, seed=3)
    layer = built_layer(shape)
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    _, _, dgamma, dbeta, _, _ = reference(x.astype(np.float64), gamma, beta, cotangent)
    with tf.GradientTape() as tape:
        y = layer(tf.constant(x), training=True)
    got_gamma, got_beta = tape.gradient(y, [layer.gamma, layer.beta], output_gradients=tf.constant(cotangent))
    np.testing.assert_allclose(got_gamma.numpy(), dgamma, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_beta.numpy(), dbeta, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="the fused kernel is TensorFlow's")
def test_fused_kernel_runs_only_where_it_computes_what_keras_does(monkeypatch):
    calls = []
    fused = BatchNormalization._fused_training_call
    monkeypatch.setattr(
        BatchNormalization,
        "_fused_training_call",
        lambda self, x: calls.append(len(x.shape)) or fused(self, x),
    )
    monkeypatch.delenv(batch_norm.IMPLEMENTATION_VARIABLE, raising=False)
    x4, _ = inputs((2, 3, 3, 4))
    x5, _ = inputs((2, 3, 3, 2, 4))
    BatchNormalization()(x4, training=True)
    BatchNormalization()(x5, training=True)
    assert calls == [4, 5]
    BatchNormalization()(x4, training=False)  # inference
    BatchNormalization()(x4[:, 0], training=True)  # rank 3
    BatchNormalization(axis=1)(x4, training=True)  # channels first
    BatchNormalization(epsilon=1e-6)(x4, training=True)  # below cuDNN's bound
    BatchNormalization(dtype="mixed_bfloat16")(x4, training=True)  # 4 channels in bfloat16
    x16, _ = inputs((2, 3, 3, 16))
    BatchNormalization(dtype="mixed_bfloat16")(x16, training=True)
    assert calls == [4, 5, 4]
    frozen = BatchNormalization()
    frozen.trainable = False
    frozen(x4, training=True)
    monkeypatch.setenv(batch_norm.IMPLEMENTATION_VARIABLE, "keras")
    BatchNormalization()(x4, training=True)
    assert calls == [4, 5, 4]


def test_implementation_follows_the_variable(monkeypatch):
    monkeypatch.delenv(batch_norm.IMPLEMENTATION_VARIABLE, raising=False)
    assert batch_norm.implementation() == ("fused" if keras.config.backend() == "tensorflow" else "keras")
    monkeypatch.setenv(batch_norm.IMPLEMENTATION_VARIABLE, "keras")
    assert batch_norm.implementation() == "keras"
    monkeypatch.setenv(batch_norm.IMPLEMENTATION_VARIABLE, "cudnn")
    with pytest.raises(ValueError, match="KERAS_ZOO_BATCH_NORM"):
        batch_norm.implementation()


def test_config_class_name_and_weights_file_are_keras_ones(tmp_path):
    """Weights saved from a model with Keras' layer load into one with this layer and the reverse (Keras 3
    weight files key layers by their class name), and the config round-trips."""
    shape = (2, 4, 4, 3)

    def model(layer_class):
        inputs = keras.Input(shape[1:])
        return keras.Model(inputs, layer_class(momentum=MOMENTUM, name="bn")(inputs))

    ours, theirs = model(BatchNormalization), model(keras.layers.BatchNormalization)
    ours.get_layer("bn").moving_mean.assign(np.arange(3, dtype="float32"))
    ours.save_weights(tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_array_equal(theirs.get_layer("bn").moving_mean.numpy(), np.arange(3, dtype="float32"))
    layer = ours.get_layer("bn")
    assert type(layer).__name__ == "BatchNormalization"
    assert keras.saving.get_registered_name(BatchNormalization) == "keras_zoo>BatchNormalization"
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is BatchNormalization and clone.get_config() == layer.get_config()

"""keras_zoo.layers.batch_norm: training-mode batch norm (the fused kernel on TensorFlow and torch) against a
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
# U-Net/DeepLab/AmoebaNet maps (4D) and Genesis/dynamic CascadeNet volumes (5D), with channel counts that
# every backend's fused kernel takes (16, 17) and one that only TensorFlow's takes (5)
SHAPES = ((2, 7, 5, 16), (3, 6, 5, 4, 17), (4, 9, 7, 5))


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


@pytest.mark.parametrize("epsilon", [1e-5, 1e-7])
def test_small_epsilons_are_used_as_given(epsilon):
    """AmoebaNet-D's 1e-5 and smaller: the output is normalised with exactly this epsilon (TensorFlow's
    Python wrapper of its kernel raised epsilons below 1.001e-5 in some versions), which matters where the
    batch variance is of its order."""
    shape = (2, 3, 3, 16)
    x = np.random.default_rng(5).normal(0.0, 1e-3, shape).astype("float32")  # variance about 1e-6
    layer = BatchNormalization(epsilon=epsilon)
    layer.build(shape)
    mean, variance = x.astype(np.float64).mean((0, 1, 2)), x.astype(np.float64).var((0, 1, 2))
    expected = (x - mean) / np.sqrt(variance + epsilon)
    got = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


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


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(4, 9, 7, 16), (3, 6, 5, 4, 32), SHAPES[2]])
def test_half_precision_policy_matches_to_its_precision(shape, dtype):
    x, cotangent = inputs(shape, seed=2)
    layer = built_layer(shape, f"mixed_{dtype}")
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(x, dtype), "float32"))
    y, _, _, _, mean, _ = reference(rounded.astype(np.float64), gamma, beta, cotangent)
    got = layer(x, training=True)
    assert keras.backend.standardize_dtype(got.dtype) == dtype
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(got, "float32")), y, rtol=1e-2, atol=2e-2
    )
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.25 * MOMENTUM + mean * (1 - MOMENTUM), rtol=1e-5)


needs_fused_kernel = pytest.mark.skipif(
    keras.config.backend() not in batch_norm.FUSED_BACKENDS, reason="JAX keeps Keras' ops (XLA fuses them)"
)


@pytest.fixture
def fused_calls(monkeypatch) -> list:
    """The input shapes of the layer's fused training calls from here on, one entry per call."""
    calls = []
    fused = BatchNormalization._fused_training_call
    monkeypatch.setattr(
        BatchNormalization, "_fused_training_call", lambda self, x: calls.append(x.shape) or fused(self, x)
    )
    return calls


def weight_gradients(layer: BatchNormalization, x: np.ndarray, cotangent: np.ndarray) -> list[np.ndarray]:
    """The gradients of ``sum(layer(x, training=True) * cotangent)`` with respect to gamma and beta, with the
    backend's own autodiff (TensorFlow or torch)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = layer(tf.constant(x), training=True)
        grads = tape.gradient(y, [layer.gamma, layer.beta], output_gradients=tf.constant(cotangent))
        return [g.numpy() for g in grads]
    import torch

    y = layer(torch.as_tensor(x), training=True)
    grads = torch.autograd.grad(y, [layer.gamma.value, layer.beta.value], torch.as_tensor(cotangent))
    return [g.numpy() for g in grads]


@needs_fused_kernel
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_kernel_gives_the_weight_gradients(shape):
    x, cotangent = inputs(shape, seed=3)
    layer = built_layer(shape)
    fuses = layer._fuses(keras.ops.convert_to_tensor(x))
    assert fuses == (keras.config.backend() == "tensorflow" or shape[-1] >= batch_norm.MIN_TORCH_CPU_CHANNELS)
    gamma, beta = keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta)
    _, _, dgamma, dbeta, _, _ = reference(x.astype(np.float64), gamma, beta, cotangent)
    got_gamma, got_beta = weight_gradients(layer, x, cotangent)
    np.testing.assert_allclose(got_gamma, dgamma, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_beta, dbeta, rtol=1e-4, atol=1e-4)


# (layer arguments, input shape, training, fused on TensorFlow, fused on torch)
DISPATCH_CASES = {
    "4D float32": ({}, (2, 3, 3, 16), True, True, True),
    "5D float32": ({}, (2, 3, 3, 2, 16), True, True, True),
    "inference": ({}, (2, 3, 3, 16), False, False, False),
    "rank 3": ({}, (2, 3, 16), True, False, False),
    "channels first": ({"axis": 1}, (2, 16, 3, 3), True, False, False),
    "epsilon below old cuDNN's bound": ({"epsilon": 1e-6}, (2, 3, 3, 16), True, True, True),
    "bfloat16, 16 channels": ({"dtype": "mixed_bfloat16"}, (2, 3, 3, 16), True, True, True),
    "bfloat16, 24 channels": ({"dtype": "mixed_bfloat16"}, (2, 3, 3, 24), True, True, True),  # float32 on TF
    "float32, 8 channels": ({}, (2, 3, 3, 8), True, True, False),
    "frozen": ({"trainable": False}, (2, 3, 3, 16), True, False, False),
}


@needs_fused_kernel
@pytest.mark.parametrize("case", DISPATCH_CASES)
def test_fused_kernel_runs_only_where_it_computes_what_keras_does(case, fused_calls, monkeypatch):
    arguments, shape, training, on_tensorflow, on_torch = DISPATCH_CASES[case]
    monkeypatch.delenv(batch_norm.IMPLEMENTATION_VARIABLE, raising=False)
    x, _ = inputs(shape)
    expected = int(on_tensorflow if keras.config.backend() == "tensorflow" else on_torch)
    BatchNormalization(**arguments)(x, training=training)
    assert len(fused_calls) == expected
    monkeypatch.setenv(batch_norm.IMPLEMENTATION_VARIABLE, "keras")
    BatchNormalization(**arguments)(x, training=training)
    assert len(fused_calls) == expected


@needs_fused_kernel
def test_fused_kernel_runs_on_a_keras_without_renorm(fused_calls, monkeypatch):
    """Keras' BatchNormalization has had ``renorm`` only since 3.14: on 3.12 and 3.13 (which TensorFlow 2.21
    admits) the layer has no such attribute, and reading it raised ``AttributeError`` at every training call."""
    monkeypatch.delenv(batch_norm.IMPLEMENTATION_VARIABLE, raising=False)
    layer = built_layer(SHAPES[0])
    monkeypatch.delattr(layer, "renorm", raising=False)
    x, cotangent = inputs(SHAPES[0])
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert len(fused_calls) == 1
    expected = reference(
        x, keras.ops.convert_to_numpy(layer.gamma), keras.ops.convert_to_numpy(layer.beta), cotangent
    )[0]
    np.testing.assert_allclose(y, expected, atol=1e-4)


@pytest.mark.skipif(keras.config.backend() != "torch", reason="torch's kernel reads a view")
def test_torch_kernel_reads_a_channels_first_view_and_returns_channels_last_memory():
    """The kernel works on the input's memory as it is (no copy into channels-first order), and its output
    is a contiguous channels-last tensor again, ready for the next layer's channels-first view."""
    import torch

    seen = []
    native = torch.native_batch_norm

    def spy(x, *args):
        seen.append((x.is_contiguous(memory_format=torch.channels_last), x.shape))
        return native(x, *args)

    x, _ = inputs((2, 5, 4, 16))
    torch.native_batch_norm = spy
    try:
        y = BatchNormalization()(torch.as_tensor(x), training=True)
    finally:
        torch.native_batch_norm = native
    assert seen == [(True, (2, 16, 5, 4))]
    assert y.shape == (2, 5, 4, 16) and y.is_contiguous()


@pytest.mark.skipif(keras.config.backend() != "torch", reason="a torch tensor's device")
def test_torch_kernel_takes_few_channels_off_the_cpu():
    """Below 16 channels the CPU keeps Keras' ops (faster there); other devices fuse every channel count."""
    import torch

    layer = built_layer((2, 3, 3, 8))
    assert not layer._fuses(torch.zeros(2, 3, 3, 8))
    assert layer._fuses(torch.zeros(2, 3, 3, 8, device="meta"))


def test_implementation_follows_the_variable(monkeypatch):
    monkeypatch.delenv(batch_norm.IMPLEMENTATION_VARIABLE, raising=False)
    assert batch_norm.implementation() == (
        "fused" if keras.config.backend() in batch_norm.FUSED_BACKENDS else "keras"
    )
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


def test_one_value_per_channel_gives_beta_and_a_zero_batch_variance():
    """DeepLabv3+'s image pooling at batch 1 normalises a 1x1 map: the batch variance is 0 (not the NaN of a
    Bessel correction by n - 1 = 0), the output is beta."""
    shape = (1, 1, 1, 16)
    x, _ = inputs(shape, seed=4)
    layer = built_layer(shape)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(y.reshape(-1), keras.ops.convert_to_numpy(layer.beta), atol=1e-4)
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), np.full(16, 2.0 * MOMENTUM, "float32"), atol=1e-6
    )
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), 0.25 * MOMENTUM + x.reshape(-1) * (1 - MOMENTUM), rtol=1e-5
    )


@needs_fused_kernel
@pytest.mark.parametrize(
    "name, config",
    [("genesis", {"filters": 8}), ("deeplabv3plus", {}), ("amoebanet", {})],
    ids=["genesis", "deeplabv3plus", "amoebanet"],
)
def test_networks_train_alike_with_either_implementation(name, config, fused_calls, monkeypatch):
    """One SGD step of a tiny network: the same loss, weight updates (the gradients) and moving statistics
    with the fused kernel as with Keras' ops, where the kernel ran in some of its layers (AmoebaNet-D's
    epsilon, 1e-5, once kept it off on TensorFlow). (One step at batch 4: over several steps, or at batch 2
    where its last maps are 1x1, the tiny AmoebaNet-D amplifies rounding; its losses diverge from a 1e-6
    change of its input, whatever the batch norm.)"""
    from keras_zoo import get_model

    runs = {}
    for name_of_implementation in ("keras", "fused"):
        monkeypatch.setenv(batch_norm.IMPLEMENTATION_VARIABLE, name_of_implementation)
        keras.utils.set_random_seed(0)
        model = get_model(name, preset="tiny", **config)
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
        rng = np.random.default_rng(0)
        x = rng.random((4, *model.inputs[0].shape[1:]), dtype=np.float32)
        targets = [rng.random((4, *output.shape[1:]), dtype=np.float32) for output in model.outputs]
        before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        loss = np.ravel(model.train_on_batch(x, targets if len(targets) > 1 else targets[0]))
        updates = [b - keras.ops.convert_to_numpy(v) for b, v in zip(before, model.trainable_variables)]
        moving = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
        runs[name_of_implementation] = (loss, updates, moving, len(fused_calls))
    (keras_loss, keras_updates, keras_moving, keras_calls), (loss, updates, moving, fused_count) = (
        runs.values()
    )
    assert keras_calls == 0
    assert fused_count > 0
    # float32 rounding: AmoebaNet-D's loss differed by 1.03e-5 relative on torch under pytest-xdist
    np.testing.assert_allclose(loss, keras_loss, rtol=1e-4)
    # to the scale of the whole update: the gradients of some small weights are the difference of nearly
    # equal sums, so their rounding is large relative to themselves (AmoebaNet-D's tiny preset has updates
    # from 5 to 1e4, and one of its 1x7 kernels differs by a quarter of its own largest update)
    scale = max(np.abs(update).max() for update in keras_updates)
    for got, expected in zip(updates, keras_updates, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=2e-3 * scale)
    for got, expected in zip(moving, keras_moving, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max() + 1e-6)

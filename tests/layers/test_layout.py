"""keras_zoo.layers.layout: convolutions and pools on channels-first views against Keras' own layers.

Each of our layers is given the weights of the matching Keras layer; under ``$KERAS_ZOO_LAYOUT=view`` (any
backend: the view is made of Keras ops) its output and its gradients with respect to the input and every
weight must equal Keras' up to float32 rounding, and one optimizer step through ``fit`` must move the
weights alike. Pools are compared bitwise.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_zoo.cli import main
from keras_zoo.layers import (
    AveragePooling2D,
    Conv2D,
    Conv3D,
    DepthwiseConv2D,
    MaxPooling2D,
    MaxPooling3D,
    implementations,
    layout,
)
from keras_zoo.layers.layout import channels_first_view
from tests.helpers import value_and_grads

pytestmark = pytest.mark.backend_agnostic

# (ours, Keras', constructor args, input shape): strided and dilated "same" convolutions (odd sizes, so
# "same" pads unevenly), 3D, depthwise, and the pools of AmoebaNet-D, U-Net and Genesis
CASES = (
    (Conv2D, keras.layers.Conv2D, dict(filters=5, kernel_size=3, strides=2, padding="same"), (2, 9, 10, 3)),
    (
        Conv2D,
        keras.layers.Conv2D,
        dict(filters=4, kernel_size=3, dilation_rate=2, padding="same"),
        (2, 9, 9, 3),
    ),
    (Conv2D, keras.layers.Conv2D, dict(filters=6, kernel_size=1, use_bias=False), (2, 5, 6, 4)),
    (Conv3D, keras.layers.Conv3D, dict(filters=3, kernel_size=3, padding="same"), (1, 4, 5, 6, 2)),
    (
        DepthwiseConv2D,
        keras.layers.DepthwiseConv2D,
        dict(kernel_size=3, strides=2, padding="same"),
        (2, 9, 9, 4),
    ),
    (
        AveragePooling2D,
        keras.layers.AveragePooling2D,
        dict(pool_size=3, strides=2, padding="same"),
        (2, 9, 10, 3),
    ),
    (AveragePooling2D, keras.layers.AveragePooling2D, dict(pool_size=1, strides=2), (2, 7, 7, 3)),
    (MaxPooling2D, keras.layers.MaxPooling2D, dict(pool_size=2), (2, 9, 8, 3)),
    (MaxPooling3D, keras.layers.MaxPooling3D, dict(pool_size=2), (2, 4, 6, 6, 3)),
)
IDS = [f"{ours.__name__}-{i}" for i, (ours, *_rest) in enumerate(CASES)]


def _pair(ours, theirs, args: dict, shape: tuple[int, ...]):
    """(our layer, Keras' layer) built on ``shape``, ours holding Keras' (random) weights."""
    keras.utils.set_random_seed(1)
    reference = theirs(**args)
    reference.build(shape)
    layer = ours(**args)
    layer.build(shape)
    layer.set_weights(reference.get_weights())
    return layer, reference


def _values_and_grads(layer, x: np.ndarray, cotangent: np.ndarray) -> list[np.ndarray]:
    """[layer(x), gradient wrt x, gradients wrt each trainable weight] for the cotangent."""
    weights = [v.value for v in layer.trainable_variables]

    def fn(inputs, *trainable):
        return layer.stateless_call(list(trainable), [], inputs)[0]

    return value_and_grads(fn, [x, *weights], cotangent)


@pytest.fixture
def view_everywhere(monkeypatch):
    """Channels-first views on, and Keras' own max pooling and depthwise convolution under them."""
    monkeypatch.setenv(layout.IMPLEMENTATION_VARIABLE, "view")
    monkeypatch.setenv("KERAS_ZOO_MAX_POOLING", "native")
    monkeypatch.setenv("KERAS_ZOO_DEPTHWISE", "native")


def _skip_without_channels_first_kernel(op: str = "conv") -> None:
    """Skips the test where this backend cannot run a channels-first 2D ``keras.ops.conv`` or
    ``keras.ops.depthwise_conv`` (``op``): TensorFlow's CPU kernels without oneDNN (Eigen's, its default on x86
    CPUs without AVX-512 VNNI/BF16 or AMX) take only NHWC, and Keras routes only 3D and grouped channels-first
    convolutions through XLA; Keras transposes a channels-first depthwise convolution on CPU only since 3.15."""
    if keras.config.backend() != "tensorflow":
        return
    import tensorflow as tf

    x, kernel = np.ones((1, 1, 3, 3), "float32"), np.ones((1, 1, 1, 1), "float32")
    try:
        getattr(keras.ops, op)(x, kernel, data_format="channels_first")
    except tf.errors.UnimplementedError:
        pytest.skip(f"TensorFlow's CPU kernels here run keras.ops.{op} only on channels-last 2D tensors")


@pytest.mark.parametrize("ours,theirs,args,shape", CASES, ids=IDS)
def test_view_equals_keras_forward_and_gradients(view_everywhere, ours, theirs, args, shape):
    if ours in (Conv2D, DepthwiseConv2D):
        _skip_without_channels_first_kernel("conv" if ours is Conv2D else "depthwise_conv")
    layer, reference = _pair(ours, theirs, args, shape)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype("float32")
    cotangent = rng.standard_normal(reference.compute_output_shape(shape)).astype("float32")
    found = _values_and_grads(layer, x, cotangent)
    expected = _values_and_grads(reference, x, cotangent)
    assert len(found) == len(expected) == 2 + len(reference.trainable_weights)
    for a, b in zip(found, expected):
        assert a.shape == b.shape
        if ours in (MaxPooling2D, MaxPooling3D):  # a maximum is exact in either layout
            np.testing.assert_array_equal(a, b)
        else:  # another kernel may sum the products, or a window (XLA in jax 0.4.34), in another order
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(np.abs(b).max(), 1.0))


def test_view_trains_like_keras(view_everywhere):
    """One Adam step of a small channels-last network through ``fit`` moves every weight as Keras' does."""
    _skip_without_channels_first_kernel()

    def network(conv, pool):
        keras.utils.set_random_seed(3)
        inputs = keras.Input((12, 12, 2))
        x = conv(4, 3, padding="same", activation="relu")(inputs)
        x = pool(2)(x)
        outputs = conv(1, 1)(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        return model

    ours, reference = network(Conv2D, MaxPooling2D), network(keras.layers.Conv2D, keras.layers.MaxPooling2D)
    rng = np.random.default_rng(4)
    x, y = rng.random((4, 12, 12, 2), dtype=np.float32), rng.random((4, 6, 6, 1), dtype=np.float32)
    ours.fit(x, y, batch_size=4, epochs=1, verbose=0)
    reference.fit(x, y, batch_size=4, epochs=1, verbose=0)
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_channels_first_view_of_a_function():
    """The view computes the channels-last op for a rank-2 and a rank-3 pool."""
    x = np.random.default_rng(5).standard_normal((2, 6, 4, 3)).astype("float32")
    found = channels_first_view(keras.ops.max_pool, x, pool_size=2, strides=2)
    expected = x.reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(found), expected)
    volume = np.arange(2 * 4 * 4 * 2 * 1, dtype="float32").reshape(2, 4, 4, 2, 1)
    found = channels_first_view(keras.ops.average_pool, volume, pool_size=2, strides=2)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(found), volume.reshape(2, 2, 2, 2, 2, 1, 2, 1).mean((2, 4, 6))
    )


def test_layers_keep_keras_class_names_config_and_serialize():
    for ours, theirs, args, _shape in CASES[::2]:
        layer = ours(**args, name="layer")
        assert layer.__class__.__name__ == theirs.__name__
        assert layer.get_config() == theirs(**args, name="layer").get_config()
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is ours and restored.get_config() == layer.get_config()


def test_keras_weight_files_load_into_our_layers(tmp_path):
    """A ``.weights.h5`` saved from Keras' layers loads into the same network built from ours."""

    def network(conv):
        keras.utils.set_random_seed(6)
        inputs = keras.Input((8, 8, 2))
        return keras.Model(inputs, conv(3, 3, padding="same")(conv(4, 3)(inputs)))

    reference, ours = network(keras.layers.Conv2D), network(Conv2D)
    path = str(tmp_path / "reference.weights.h5")
    reference.save_weights(path)
    ours.load_weights(path)
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_choice_per_backend_and_data_format(monkeypatch):
    monkeypatch.delenv(layout.IMPLEMENTATION_VARIABLE, raising=False)
    assert layout.uses_view("channels_last") == (keras.config.backend() == "torch")
    assert not layout.uses_view("channels_first")
    monkeypatch.setenv(layout.IMPLEMENTATION_VARIABLE, "view")
    assert layout.uses_view("channels_last") and layout.uses_view(None)
    assert not layout.uses_view("channels_first")
    monkeypatch.setenv(layout.IMPLEMENTATION_VARIABLE, "native")
    assert not layout.uses_view("channels_last")
    monkeypatch.setenv(layout.IMPLEMENTATION_VARIABLE, "nhwc")
    with pytest.raises(ValueError, match="KERAS_ZOO_LAYOUT"):
        Conv2D(2, 1)(np.zeros((1, 4, 4, 2), "float32"))


def test_implementations_report_each_layers_form_here(monkeypatch, capsys):
    """``keras_zoo.layers.implementations`` (in ``keras-zoo info``, benchmark records and summary.json)
    resolves "auto" per backend and follows the variables."""
    variables = ("KERAS_ZOO_DEPTHWISE", "KERAS_ZOO_MAX_POOLING", layout.IMPLEMENTATION_VARIABLE)
    for variable in (*variables, "KERAS_ZOO_BATCH_NORM"):
        monkeypatch.delenv(variable, raising=False)
    expected = {
        "tensorflow": {
            "depthwise": "native",
            "max_pooling": "native",
            "layout": "native",
            "batch_norm": "fused",
        },
        "jax": {"depthwise": "taps", "max_pooling": "taps", "layout": "native", "batch_norm": "keras"},
        "torch": {"depthwise": "atrous", "max_pooling": "native", "layout": "view", "batch_norm": "fused"},
    }[keras.config.backend()]
    assert implementations() == expected
    monkeypatch.setenv("KERAS_ZOO_DEPTHWISE", "phases")
    monkeypatch.setenv("KERAS_ZOO_MAX_POOLING", "taps")
    monkeypatch.setenv(layout.IMPLEMENTATION_VARIABLE, "view")
    monkeypatch.setenv("KERAS_ZOO_BATCH_NORM", "keras")
    chosen = {"depthwise": "phases", "max_pooling": "taps", "layout": "view", "batch_norm": "keras"}
    assert implementations() == chosen
    assert main.main(["info"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == chosen
    monkeypatch.setenv("KERAS_ZOO_MAX_POOLING", "fast")
    with pytest.raises(ValueError, match="KERAS_ZOO_MAX_POOLING"):
        implementations()

"""keras_zoo.layers.max_pooling: pooling by taps against a NumPy reference and Keras' own max pooling.

The reference pools in float64 and sends each output gradient to the first maximum of its window in
row-major order. The cotangents are multiples of 1/4, so every sum of gradients is exact in any dtype and
order and the comparisons are bitwise. Keras' own pooling follows the same rule on JAX
(``select_and_scatter``) and for TensorFlow's 2D pooling; TensorFlow's 3D pooling gradient goes to every
tied maximum, so it is compared with the reference on distinct values only.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_zoo.layers import max_pooling
from keras_zoo.layers.max_pooling import MaxPooling2D, MaxPooling3D, tap_max_pool
from tests.helpers import tf_same_padding, value_and_grads

pytestmark = pytest.mark.backend_agnostic

# (input shape, pool, strides, padding): AmoebaNet's 3x3 "same" pools at strides 1 and 2 and its 2x2
# stride-2 "same" pool on an odd map (padded after), U-Net's 2x2 "valid" (odd size: the last row is
# dropped), Genesis' 2x2x2, and a 3D "same" pool with unequal sizes
CASES = (
    ((2, 9, 9, 4), (3, 3), (1, 1), "same"),
    ((2, 9, 10, 4), (3, 3), (2, 2), "same"),
    ((2, 7, 7, 3), (2, 2), (2, 2), "same"),
    ((2, 9, 8, 3), (2, 2), (2, 2), "valid"),
    ((2, 4, 6, 6, 3), (2, 2, 2), (2, 2, 2), "valid"),
    ((1, 5, 6, 7, 2), (3, 3, 3), (2, 2, 2), "same"),
)


def reference_max_pool(x: np.ndarray, pool, strides, padding: str, cotangent: np.ndarray | None = None):
    """(output, input gradient) in float64; the gradient of each window goes to its first maximum (zero
    without a cotangent)."""
    x = np.asarray(x, np.float64)
    sizes = x.shape[1:-1]
    if padding == "same":
        pads = [tf_same_padding(n, k, s) for n, k, s in zip(sizes, pool, strides)]
    else:
        pads = [(0, 0)] * len(sizes)
    padded = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-np.inf)
    out = [(n + sum(p) - k) // s + 1 for n, p, k, s in zip(sizes, pads, pool, strides)]
    y = np.empty((x.shape[0], *out, x.shape[-1]))
    grad = np.zeros_like(padded)
    batch, channel = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[-1]), indexing="ij")
    for index in itertools.product(*(range(n) for n in out)):
        corner = [i * s for i, s in zip(index, strides)]
        window = padded[(slice(None), *(slice(c, c + k) for c, k in zip(corner, pool)))]
        flat = window.reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None), *index)] = flat.max(axis=1)
        if cotangent is None:
            continue
        offsets = np.unravel_index(flat.argmax(axis=1), pool)  # argmax: the first maximum
        target = (batch, *(c + o for c, o in zip(corner, offsets)), channel)
        np.add.at(grad, target, cotangent[(slice(None), *index)].astype(np.float64))
    crop = (slice(None), *(slice(p[0], p[0] + n) for p, n in zip(pads, sizes)))
    return y, grad[crop]


def value_and_grad(fn, x: np.ndarray, cotangent: np.ndarray, dtype: str = "float32"):
    """(fn(x), d<fn(x), cotangent>/dx) as float64 NumPy arrays, x and cotangent cast to ``dtype``."""
    return value_and_grads(fn, [ops.cast(x, dtype)], ops.cast(cotangent, dtype))


def _inputs(shape, pool, strides, padding, ties: bool, seed: int = 0):
    """Inputs (distinct normals, or ReLU'd small integers with many tied maxima) and a cotangent."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.integers(-3, 3, shape), 0) if ties else rng.standard_normal(shape)
    out_shape = reference_max_pool(np.zeros(shape), pool, strides, padding)[0].shape
    cotangent = rng.integers(-8, 9, out_shape) / 4
    return x.astype("float32"), cotangent.astype("float32")


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
def test_taps_equal_the_reference_forward_and_gradient(shape, pool, strides, padding, ties):
    x, cotangent = _inputs(shape, pool, strides, padding, ties)
    expected = reference_max_pool(x, pool, strides, padding, cotangent)
    found = value_and_grad(lambda t: tap_max_pool(t, pool, strides, padding), x, cotangent)
    for a, b in zip(found, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
def test_keras_max_pooling_follows_the_same_rule(shape, pool, strides, padding, ties):
    """The reference's tie rule is Keras' own (so taps and native agree), except TensorFlow's 3D gradient."""
    if ties and len(pool) == 3 and keras.config.backend() == "tensorflow":
        pytest.skip("TensorFlow's MaxPool3DGrad gives every tied maximum the gradient")
    x, cotangent = _inputs(shape, pool, strides, padding, ties)
    layer_class = keras.layers.MaxPooling2D if len(pool) == 2 else keras.layers.MaxPooling3D
    layer = layer_class(pool, strides=strides, padding=padding)
    for a, b in zip(
        value_and_grad(layer, x, cotangent), reference_max_pool(x, pool, strides, padding, cotangent)
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape,pool,strides,padding", CASES[:3])
def test_half_precision_keeps_dtype_and_matches_the_reference(shape, pool, strides, padding, dtype):
    x, cotangent = _inputs(shape, pool, strides, padding, ties=True)
    found = value_and_grad(lambda t: tap_max_pool(t, pool, strides, padding), x, cotangent, dtype)
    expected = reference_max_pool(x, pool, strides, padding, cotangent)
    for a, b in zip(found, expected):
        np.testing.assert_array_equal(a, b)
    assert (
        keras.backend.standardize_dtype(tap_max_pool(ops.cast(x, dtype), pool, strides, padding).dtype)
        == dtype
    )


def test_half_precision_gradients_are_summed_in_float32():
    """A pixel that is the maximum of nine overlapping windows: 1 + 8 * 2**-8 is a bfloat16 number, but
    summed in bfloat16 each 2**-8 would round away (1 + 2**-8 rounds to 1)."""
    x = np.zeros((1, 5, 5, 1), "float32")
    x[0, 2, 2, 0] = 1.0
    cotangent = np.full((1, 5, 5, 1), 2.0**-8, "float32")
    cotangent[0, 1, 1, 0] = 1.0  # the first of the nine windows around the peak
    _, dx = value_and_grad(lambda t: tap_max_pool(t, 3, 1, "same"), x, cotangent, "bfloat16")
    assert dx[0, 2, 2, 0] == 1 + 8 * 2.0**-8


def test_rejects_what_it_cannot_pool():
    x = ops.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError, match="smaller than the pooling window"):
        tap_max_pool(x, 5, 1, "valid")
    with pytest.raises(ValueError, match="padding"):
        tap_max_pool(x, 2, 2, "full")
    with pytest.raises(ValueError, match="pool_size"):
        tap_max_pool(x, (2, 2, 2), 2)
    with pytest.raises(ValueError, match="float"):
        tap_max_pool(ops.zeros((1, 4, 4, 2), dtype="int32"), 2)


def test_layers_keep_keras_class_names_config_and_serialize():
    for ours, theirs, args in (
        (MaxPooling2D, keras.layers.MaxPooling2D, (3, 2, "same")),
        (MaxPooling3D, keras.layers.MaxPooling3D, (2, None, "valid")),
    ):
        layer = ours(*args, name="pool")
        assert layer.__class__.__name__ == theirs.__name__
        assert layer.get_config() == theirs(*args, name="pool").get_config()
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is ours and restored.get_config() == layer.get_config()


@pytest.mark.parametrize("choice", ["auto", "taps", "native"])
def test_layer_output_and_gradient_equal_keras_under_every_choice(monkeypatch, choice):
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, choice)
    x, cotangent = _inputs((2, 9, 9, 4), (3, 3), (2, 2), "same", ties=True, seed=3)
    found = value_and_grad(MaxPooling2D(3, strides=2, padding="same"), x, cotangent)
    expected = value_and_grad(keras.layers.MaxPooling2D(3, strides=2, padding="same"), x, cotangent)
    for a, b in zip(found, expected):
        np.testing.assert_array_equal(a, b)


def test_choice_per_backend_and_layout(monkeypatch):
    layer = MaxPooling2D(2)
    x = ops.zeros((1, 4, 4, 2))
    monkeypatch.delenv(max_pooling.IMPLEMENTATION_VARIABLE, raising=False)
    assert max_pooling._pools_by_taps(layer, x) == (keras.config.backend() == "jax")
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, "taps")
    assert max_pooling._pools_by_taps(layer, x)
    assert not max_pooling._pools_by_taps(MaxPooling2D(2, data_format="channels_first"), x)
    assert not max_pooling._pools_by_taps(layer, ops.zeros((1, 4, 4, 2), dtype="int32"))
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, "native")
    assert not max_pooling._pools_by_taps(layer, x)
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, "fast")
    with pytest.raises(ValueError, match="KERAS_ZOO_MAX_POOLING"):
        layer(x)


@pytest.mark.parametrize("choice", ["auto", "native"])
def test_float16_3d_layer_equals_the_reference_on_every_backend(monkeypatch, choice):
    """Models Genesis under --precision fp16: TensorFlow has no float16 MaxPool3D kernel on CPUs (it raised)."""
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, choice)
    x, cotangent = _inputs((2, 4, 6, 6, 3), (2, 2, 2), (2, 2, 2), "valid", ties=False, seed=5)
    layer = MaxPooling3D(2, dtype="mixed_float16")
    y, grad = value_and_grad(layer, x, cotangent, dtype="float16")
    expected_y, expected_grad = reference_max_pool(
        x.astype(np.float16), (2, 2, 2), (2, 2, 2), "valid", cotangent
    )
    assert keras.backend.standardize_dtype(layer(ops.cast(x, "float16")).dtype) == "float16"
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)

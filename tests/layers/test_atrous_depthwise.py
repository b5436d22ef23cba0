"""keras_zoo.layers.atrous_depthwise: the taps, space-to-batch and phase forms against Keras' DepthwiseConv2D.

The layer is imported as ``AtrousDepthwiseConv2D`` here; it keeps Keras' class name ``DepthwiseConv2D``.

Equality, per backend (TensorFlow and JAX on CPU, float32):

* atrous forward and input gradient: bitwise on TensorFlow, whose native kernel sums the taps in one fixed
  order. On JAX bitwise on DeepLab's maps (3x3 at rates 2-18, "same", 33x33, where every tap reaches a
  pixel): each output pixel then sums the same products in the same order on a re-indexed grid (seen on
  AVX2, AVX-512 and AMX CPUs). Elsewhere equal to float32 rounding: XLA:CPU picks its convolution loop nest
  from the shapes and the CPU's vector width, so dropped taps (they only read padding), "valid" padding, a
  phase grid with one output pixel, or a 13x20 map on an AVX2 CPU (the last bit of 0.2 % of the outputs)
  are summed in another order.
* atrous kernel gradient: to float32 rounding on both. It sums batch x height x width products per tap; the
  space-to-batch form sums them phase by phase, an order no backend promises to share.
* strided (phase decomposition): to float32 rounding on both. The nine taps are summed as four partial
  sums, one per phase, instead of in row-major order.
* taps (the JAX form, any stride and rate): to float32 rounding on both, forward and gradients. The taps
  are summed one whole slice at a time, in row-major tap order.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_zoo.layers import atrous_depthwise
from keras_zoo.layers.atrous_depthwise import DepthwiseConv2D as AtrousDepthwiseConv2D
from keras_zoo.layers.atrous_depthwise import (
    atrous_depthwise_conv,
    strided_depthwise_conv,
    tap_depthwise_conv,
)
from keras_zoo.weights import load_weights, save_h5_weights
from tests.helpers import keras_version, tf_same_padding, value_and_grads

pytestmark = pytest.mark.backend_agnostic

RATES = (2, 6, 12, 18)
# odd, even, and sizes that are no multiple of the rates (33: DeepLab's stride-16 map of a 513 crop)
SIZES = ((9, 9), (12, 12), (13, 20), (33, 33))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype("float32")


def _value_and_grads(fn, x: np.ndarray, kernel: np.ndarray, cotangent: np.ndarray):
    """(fn(x, kernel), d<fn, cotangent>/dx, d<fn, cotangent>/dkernel) as NumPy arrays."""
    return tuple(value_and_grads(fn, [x, kernel], cotangent))


def _assert_rounding_equal(actual: np.ndarray, expected: np.ndarray):
    """Equal up to float32 rounding of sums over a few hundred to a few thousand terms."""
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _depthwise_reference(x, kernel, strides: tuple[int, int], padding: str, rate: tuple[int, int] = (1, 1)):
    """Keras' depthwise convolution. With unequal strides: the stride-1 convolution sampled at every
    stride-th pixel, after TensorFlow's "same" padding written out (out = ceil(size / stride), the padding's
    odd pixel after), since TensorFlow's CPU kernel without oneDNN (Eigen's, its default on x86 CPUs without
    AVX-512 VNNI/BF16 or AMX) takes only equal strides."""
    if strides[0] == strides[1]:
        return ops.depthwise_conv(x, kernel, strides, padding, dilation_rate=rate)
    if padding == "same":
        pads = [tf_same_padding(*axis) for axis in zip(x.shape[1:3], kernel.shape[:2], strides, rate)]
        x = ops.pad(x, [(0, 0), *pads, (0, 0)])
    y = ops.depthwise_conv(x, kernel, 1, "valid", dilation_rate=rate)
    return y[:, :: strides[0], :: strides[1]]


def _dilated_cases():
    for (height, width), rate, padding in itertools.product(SIZES, RATES, ("same", "valid")):
        if padding == "valid" and min(height, width) <= 2 * rate:
            continue  # the dilated 3x3 kernel does not fit
        yield height, width, rate, padding


@pytest.mark.parametrize("height, width, rate, padding", list(_dilated_cases()))
def test_atrous_forward_and_gradients_match_dilated_conv(height, width, rate, padding):
    rng = _rng(height, width, rate)
    x, kernel = _normal(rng, 2, height, width, 3), _normal(rng, 3, 3, 3, 2)

    def reference(x, kernel):
        return ops.depthwise_conv(x, kernel, 1, padding, dilation_rate=rate)

    def rewritten(x, kernel):
        return atrous_depthwise_conv(x, kernel, (rate, rate), padding)

    out_shape = ops.convert_to_numpy(reference(x, kernel)).shape
    cotangent = _normal(rng, *out_shape)
    y, dx, dkernel = _value_and_grads(rewritten, x, kernel, cotangent)
    y_ref, dx_ref, dkernel_ref = _value_and_grads(reference, x, kernel, cotangent)
    deeplab_map = (height, width) == (33, 33) and padding == "same"  # every tap reads pixels at rates <= 18
    backend = keras.config.backend()  # torch may choose another kernel for the smaller phase grids
    bitwise = backend == "tensorflow" or (backend == "jax" and deeplab_map)
    check = np.testing.assert_array_equal if bitwise else _assert_rounding_equal
    check(y, y_ref)
    check(dx, dx_ref)
    _assert_rounding_equal(dkernel, dkernel_ref)


@pytest.mark.parametrize(
    "kernel_size, rate, padding",
    [
        ((2, 2), (2, 2), "same"),  # even kernels pad "same" unevenly: explicit padding, then "valid"
        ((3, 2), (6, 2), "same"),
        ((2, 3), (1, 3), "valid"),
        ((5, 5), (3, 3), "same"),
        ((5, 5), (7, 10), "same"),  # outer taps read only padding along both axes and are dropped
        ((3, 3), (18, 2), "same"),  # only the centre row reads pixels: no dilation left along the height
    ],
)
def test_atrous_other_kernels_and_unequal_rates(kernel_size, rate, padding):
    rng = _rng(*kernel_size, *rate)
    x, kernel = _normal(rng, 2, 13, 20, 3), _normal(rng, *kernel_size, 3, 1)
    expected = ops.convert_to_numpy(ops.depthwise_conv(x, kernel, 1, padding, dilation_rate=rate))
    actual = ops.convert_to_numpy(atrous_depthwise_conv(x, kernel, rate, padding))
    if keras.config.backend() == "tensorflow":
        np.testing.assert_array_equal(actual, expected)
    else:
        _assert_rounding_equal(actual, expected)


@pytest.mark.parametrize(
    "height, width, kernel_size, strides, padding",
    [
        (131, 131, 3, 2, "valid"),  # DeepLab's entry flow at 257: fixed padding, then valid
        (35, 35, 3, 2, "valid"),
        (12, 17, 3, 2, "same"),
        (13, 20, 2, 2, "valid"),
        (13, 20, 5, 3, "same"),
        (13, 20, 3, (2, 1), "valid"),
        (9, 9, 1, 2, "valid"),
    ],
)
def test_strided_forward_and_gradients_match_strided_conv(height, width, kernel_size, strides, padding):
    rng = _rng(height, width, kernel_size)
    x, kernel = _normal(rng, 2, height, width, 3), _normal(rng, kernel_size, kernel_size, 3, 2)
    pair = strides if isinstance(strides, tuple) else (strides, strides)

    def reference(x, kernel):
        return _depthwise_reference(x, kernel, pair, padding)

    def rewritten(x, kernel):
        return strided_depthwise_conv(x, kernel, pair, padding)

    cotangent = _normal(rng, *ops.convert_to_numpy(reference(x, kernel)).shape)
    for actual, expected in zip(
        _value_and_grads(rewritten, x, kernel, cotangent), _value_and_grads(reference, x, kernel, cotangent)
    ):
        _assert_rounding_equal(actual, expected)


@pytest.mark.parametrize(
    "height, width, kernel_size, strides, rate, padding",
    [
        (33, 33, (3, 3), (1, 1), (1, 1), "same"),  # the middle flow
        (131, 131, (3, 3), (2, 2), (1, 1), "valid"),  # the entry flow at 257, after its fixed padding
        (12, 17, (3, 3), (2, 2), (1, 1), "same"),
        *[(33, 33, (3, 3), (1, 1), (r, r), "same") for r in (2, 6, 12, 18)],  # exit flow and ASPP at 513
        (9, 9, (3, 3), (1, 1), (18, 18), "same"),  # only the centre tap reads pixels
        (13, 20, (3, 3), (1, 1), (2, 2), "valid"),
        (13, 20, (2, 2), (1, 1), (2, 2), "same"),  # even kernel: uneven "same" padding
        (13, 20, (5, 3), (3, 2), (1, 1), "same"),
        (13, 20, (3, 2), (1, 1), (6, 2), "same"),
    ],
)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_taps_forward_and_gradients_match_depthwise_conv(
    height, width, kernel_size, strides, rate, padding, multiplier
):
    rng = _rng(height, width, *kernel_size, *strides, *rate, multiplier)
    x, kernel = _normal(rng, 2, height, width, 3), _normal(rng, *kernel_size, 3, multiplier)

    def reference(x, kernel):
        return _depthwise_reference(x, kernel, strides, padding, rate)

    def rewritten(x, kernel):
        return tap_depthwise_conv(x, kernel, strides, rate, padding)

    cotangent = _normal(rng, *ops.convert_to_numpy(reference(x, kernel)).shape)
    for actual, expected in zip(
        _value_and_grads(rewritten, x, kernel, cotangent), _value_and_grads(reference, x, kernel, cotangent)
    ):
        _assert_rounding_equal(actual, expected)


def test_taps_sum_half_precision_in_float32():
    rng = _rng(11)
    x, kernel = _normal(rng, 2, 17, 17, 4), _normal(rng, 3, 3, 4, 1)
    expected = ops.convert_to_numpy(ops.depthwise_conv(x, kernel, 1, "same", dilation_rate=2))
    actual = tap_depthwise_conv(ops.cast(x, "bfloat16"), ops.cast(kernel, "bfloat16"), (1, 1), (2, 2), "same")
    assert ops.dtype(actual) == "bfloat16"
    # inputs rounded to bf16 (8 bits), summed in float32, rounded once: within a few bf16 steps of fp32
    actual = ops.convert_to_numpy(ops.cast(actual, "float32"))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=0.03 * np.abs(expected).max())


def _pair(rate: int = 1, strides: int = 1, padding: str = "same", **kwargs):
    """A DepthwiseConv2D and an AtrousDepthwiseConv2D built on (None, 13, 20, 3) with the same weights."""
    args = dict(kernel_size=3, strides=strides, dilation_rate=rate, padding=padding, **kwargs)
    old, new = keras.layers.DepthwiseConv2D(**args), AtrousDepthwiseConv2D(**args)
    old.build((None, 13, 20, 3))
    new.build((None, 13, 20, 3))
    rng = _rng(rate, strides)
    new.set_weights([_normal(rng, *w.shape) for w in old.weights])
    old.set_weights(new.get_weights())
    return old, new


@pytest.mark.parametrize(
    "rate, strides, padding", [(6, 1, "same"), (2, 1, "valid"), (1, 2, "valid"), (1, 1, "same")]
)
def test_layer_matches_parent_with_bias_and_activation(rate, strides, padding):
    old, new = _pair(rate, strides, padding, depth_multiplier=2, use_bias=True, activation="relu")
    x = _normal(_rng(7), 2, 13, 20, 3)
    expected = ops.convert_to_numpy(old(x))
    actual = ops.convert_to_numpy(new(x))
    assert actual.shape == expected.shape
    mode = new._rewrite(keras.KerasTensor(x.shape))
    if mode is None:  # the parent's op; a rewrite (taps on JAX, atrous on torch) may sum in another order
        np.testing.assert_array_equal(actual, expected)
    else:
        _assert_rounding_equal(actual, expected)


def test_implementation_is_chosen_by_backend_and_configuration(monkeypatch):
    monkeypatch.delenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, raising=False)
    x = keras.KerasTensor((None, 13, 20, 3))
    backend = keras.config.backend()
    atrous, strided, plain = (
        AtrousDepthwiseConv2D(3, dilation_rate=2),
        AtrousDepthwiseConv2D(3, strides=2),
        AtrousDepthwiseConv2D(3),
    )
    layers = [atrous, strided, plain]
    # Keras' DepthwiseConv2D takes strides > 1 with dilation_rate > 1 since 3.15
    if keras_version() >= (3, 15):
        layers.append(AtrousDepthwiseConv2D(3, strides=2, dilation_rate=2))
    expected = {  # TF's native kernels are faster on CPU; JAX's convolutions are what the taps avoid
        "tensorflow": (None, None, None, None),
        "jax": ("taps", "taps", "taps", "taps"),
    }.get(backend, ("atrous", None, None, None))  # torch: its strided op beat the phases
    assert tuple(layer._rewrite(x) for layer in layers) == expected[: len(layers)]
    assert atrous._rewrite(keras.KerasTensor((None, None, 20, 3))) is None
    channels_first = AtrousDepthwiseConv2D(3, dilation_rate=2, data_format="channels_first")
    assert channels_first._rewrite(keras.KerasTensor((None, 3, 13, 20))) is None

    monkeypatch.setenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, "native")
    assert atrous._rewrite(x) is None and strided._rewrite(x) is None
    monkeypatch.setenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, "phases")
    assert (atrous._rewrite(x), strided._rewrite(x), plain._rewrite(x)) == ("atrous", "strided", None)
    monkeypatch.setenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, "taps")
    assert plain._rewrite(x) == "taps"
    reference = keras.layers.DepthwiseConv2D(3)
    plain.build((None, 13, 20, 3))
    reference.build((None, 13, 20, 3))
    reference.set_weights(plain.get_weights())
    image = _normal(_rng(4), 1, 13, 20, 3)
    _assert_rounding_equal(ops.convert_to_numpy(plain(image)), ops.convert_to_numpy(reference(image)))
    monkeypatch.setenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, "fast")
    with pytest.raises(ValueError, match=r"KERAS_ZOO_DEPTHWISE.*'fast'"):
        atrous._rewrite(x)


def test_mixed_precision_forward_matches_parent():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    old, new = _pair(rate=12)
    x = _normal(_rng(3), 2, 13, 20, 3)
    expected, actual = ops.convert_to_numpy(old(x)), ops.convert_to_numpy(new(x))
    assert ops.dtype(new(x)) == "bfloat16"
    if new._rewrite(keras.KerasTensor(x.shape)) == "taps":  # summed in float32, rounded to bf16 once
        np.testing.assert_allclose(
            actual.astype("float32"), expected.astype("float32"), rtol=2**-7, atol=1e-2
        )
    else:
        np.testing.assert_array_equal(actual.astype("float32"), expected.astype("float32"))


def _model(layer_cls, **kwargs) -> keras.Model:
    inputs = keras.Input((13, 20, 3))
    x = layer_cls(3, dilation_rate=2, padding="same", use_bias=True, name="dw1", **kwargs)(inputs)
    x = layer_cls(3, strides=2, padding="valid", use_bias=False, name="dw2")(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_weights_saved_from_depthwise_conv2d_load_into_the_new_layer(tmp_path, suffix):
    old = _model(keras.layers.DepthwiseConv2D, bias_initializer="random_normal")
    new = _model(AtrousDepthwiseConv2D)
    assert [w.path for w in new.weights] == [w.path for w in old.weights]
    path = str(tmp_path / f"old{suffix}")
    if suffix == ".h5":  # legacy Keras-2 layout, loaded by layer name
        save_h5_weights(old, path)
        report = load_weights(new, path)
        assert sorted(report.matched) == ["dw1", "dw2"] and not report.missing and not report.mismatched
    else:  # Keras 3, by layer order
        old.save_weights(path)
        new.load_weights(path)
    for w_old, w_new in zip(old.weights, new.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(w_new), ops.convert_to_numpy(w_old))
    x = _normal(_rng(5), 2, 13, 20, 3)
    _assert_rounding_equal(ops.convert_to_numpy(new(x)), ops.convert_to_numpy(old(x)))


def test_config_round_trip_and_keras_file(tmp_path):
    layer = AtrousDepthwiseConv2D(
        3, dilation_rate=6, padding="same", depth_multiplier=2, use_bias=False, name="aspp1_depthwise"
    )
    config = layer.get_config()
    assert config == keras.layers.DepthwiseConv2D.from_config(config).get_config()
    clone = AtrousDepthwiseConv2D.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "keras_zoo>DepthwiseConv2D"
    assert isinstance(keras.saving.deserialize_keras_object(serialized), AtrousDepthwiseConv2D)

    model = _model(AtrousDepthwiseConv2D)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert all(type(layer) is AtrousDepthwiseConv2D for layer in loaded.layers[1:])
    x = _normal(_rng(9), 1, 13, 20, 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)))


def test_bad_arguments_name_the_value():
    x = _normal(_rng(1), 1, 9, 9, 2)
    kernel = _normal(_rng(2), 3, 3, 2, 1)
    with pytest.raises(ValueError, match="'causal'"):
        atrous_depthwise_conv(x, kernel, (2, 2), "causal")
    with pytest.raises(ValueError, match="13x13"):
        atrous_depthwise_conv(x, kernel, (6, 6), "valid")  # 9x9 input, dilated kernel 13x13
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        atrous_depthwise_conv(x, kernel, (0, 2))
    with pytest.raises(ValueError, match="'full'"):
        strided_depthwise_conv(x, kernel, (2, 2), "full")
    with pytest.raises(ValueError, match=r"\(2, 0\)"):
        strided_depthwise_conv(x, kernel, (2, 0))

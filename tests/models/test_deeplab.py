"""DeepLabv3+ / aligned Xception: reference parameter counts, atrous schedule, decoder tap, shapes."""

import keras
import numpy as np
import pytest

from keras_zoo.flops import forward_flops
from keras_zoo.models.deeplab import deeplabv3plus, preprocess_input
from keras_zoo.models.xception import DECODER_TAPS, FEATURES_LAYER, unit_schedule
from keras_zoo.registry import get_entry
from tests.helpers import check_model, mixed_precision_forward

pytestmark = pytest.mark.backend_agnostic

TINY = {"backbone": "xception41", "width": 1 / 16, "middle_units": 1}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.structure
def test_reference_parameter_counts_at_os16_and_os8():
    for output_stride in (8, 16):
        keras.backend.clear_session()
        model = deeplabv3plus(output_stride=output_stride)
        assert model.count_params() == 41_258_213 == get_entry("deeplabv3plus").reference_params
        assert _trainable(model) == 41_055_413
    # reference sizes for a 513 crop at OS16: 257, 129, 65, 33 and the 129 decoder
    sizes = {
        "entry_flow_conv1_1_relu": 257,
        "entry_flow_block1_unit_1_add": 129,
        DECODER_TAPS["xception65"]: 129,
        "entry_flow_block2_unit_1_add": 65,
        "entry_flow_block3_unit_1_add": 33,
        FEATURES_LAYER: 33,
        "decoder_conv1_pointwise_relu": 129,
    }
    for name, size in sizes.items():
        assert model.get_layer(name).output.shape[1:3] == (size, size), name
    assert model.output.shape == (None, 513, 513, 21)
    # the DeepLab model zoo's cost of xception65 at OS16 on 513x513: 54.17 billion multiply-adds
    assert forward_flops(model) / 2 == pytest.approx(54.17e9, rel=5e-3)


def test_atrous_schedule_matches_reference():
    os16 = dict((scope, (stride, rate)) for scope, stride, rate in unit_schedule("xception65", 16))
    assert len(os16) == 3 + 16 + 2
    assert os16["entry_flow/block3/unit_1"] == (2, 1)
    assert os16["middle_flow/block1/unit_16"] == (1, 1)
    assert os16["exit_flow/block1/unit_1"] == (1, 1)
    assert os16["exit_flow/block2/unit_1"] == (1, 2)
    os8 = dict((scope, (stride, rate)) for scope, stride, rate in unit_schedule("xception65", 8))
    assert os8["entry_flow/block2/unit_1"] == (2, 1)
    assert os8["entry_flow/block3/unit_1"] == (1, 1)
    assert os8["middle_flow/block1/unit_1"] == (1, 2)
    assert os8["exit_flow/block1/unit_1"] == (1, 2)
    assert os8["exit_flow/block2/unit_1"] == (1, 4)
    assert [s for _, s, _ in unit_schedule("xception71", None)] == [2, 1, 2, 1, 2] + [1] * 16 + [2, 1]
    assert len(unit_schedule("xception41", 16)) == 3 + 8 + 2
    assert len(unit_schedule("xception65", 16, middle_units=1)) == 3 + 1 + 2
    with pytest.raises(ValueError, match="output_stride"):
        unit_schedule("xception65", 4)


@pytest.mark.structure
def test_built_layers_follow_the_schedule_and_aspp_rates():
    model = deeplabv3plus(input_shape=(33, 33, 3), output_stride=8, **TINY)
    dilation = {
        layer.name: layer.dilation_rate[0] for layer in model.layers if layer.name.endswith("depthwise")
    }
    strides = {layer.name: layer.strides[0] for layer in model.layers if layer.name.endswith("depthwise")}
    assert strides["entry_flow_block3_unit_1_separable_conv3_depthwise"] == 1
    assert dilation["middle_flow_block1_unit_1_separable_conv1_depthwise"] == 2
    assert dilation["exit_flow_block2_unit_1_separable_conv3_depthwise"] == 4
    assert [dilation[f"aspp{i}_depthwise"] for i in (1, 2, 3)] == [12, 24, 36]
    assert model.get_layer(FEATURES_LAYER).output.shape[1:3] == (5, 5)  # ceil(33 / 8)
    assert isinstance(model.get_layer("exit_flow_block1_unit_1_separable_conv1_preact"), keras.layers.ReLU)
    assert "exit_flow_block2_unit_1_separable_conv1_depthwise_relu" in [layer.name for layer in model.layers]


@pytest.mark.structure
def test_decoder_tap_is_the_stride4_pointwise_bn_before_relu():
    model = deeplabv3plus(input_shape=(45, 37, 3), **TINY)
    tap = model.get_layer(DECODER_TAPS["xception41"])
    assert isinstance(tap, keras.layers.BatchNormalization)
    assert tap.output.shape[1:] == (12, 10, 16)  # ceil(45 / 4), ceil(37 / 4), 256 / 16 channels
    projection = model.get_layer("decoder_feature_projection0")
    assert projection.input.shape == tap.output.shape  # read directly, no ReLU between
    assert model.get_layer("aspp1_depthwise_bn").epsilon == 1e-5
    assert model.get_layer("entry_flow_conv1_1_bn").epsilon == 1e-3
    assert model.get_layer("entry_flow_conv1_1_bn").momentum == 0.9997
    assert model.get_layer("logits_semantic").use_bias


@pytest.mark.structure
@pytest.mark.parametrize("shape, output_stride", [((33, 33, 3), 16), ((45, 37, 3), 8), ((40, 52, 3), 16)])
def test_output_shapes_for_odd_and_even_sizes(shape, output_stride):
    model = deeplabv3plus(input_shape=shape, classes=5, output_stride=output_stride, **TINY)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, *shape)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, *shape[:2], 5) and y.dtype == np.float32 and np.isfinite(y).all()


@pytest.mark.large  # ~40 s alone, over 2 min on the shared 2-core machine
def test_common_checks_and_mixed_precision(tmp_path):
    model = deeplabv3plus(input_shape=(33, 33, 3), classes=3, **TINY)
    x = np.random.default_rng(1).uniform(-1, 1, size=(2, 33, 33, 3)).astype("float32")
    check_model(model, x, tmp_path, expected_output_shapes=[(2, 33, 33, 3)])
    (y,) = mixed_precision_forward(deeplabv3plus, x, input_shape=(33, 33, 3), classes=3, **TINY)
    assert y.dtype == np.float32 and y.shape == (2, 33, 33, 3)


def test_config_round_trip_and_weights_file(tmp_path):
    model = deeplabv3plus(input_shape=(33, 33, 3), classes=3, **TINY)
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 33, 33, 3)).astype("float32")
    rebuilt = keras.Model.from_config(model.get_config())
    path = str(tmp_path / "deeplab.weights.h5")
    model.save_weights(path)
    rebuilt.load_weights(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(rebuilt(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        atol=1e-5,
    )


def test_weight_decay_is_half_the_reference_value_on_conv_kernels_only():
    model = deeplabv3plus(input_shape=(33, 33, 3), weight_decay=4e-5, **TINY)
    assert model.get_layer("aspp0").kernel_regularizer.l2 == pytest.approx(2e-5)
    assert model.get_layer("entry_flow_block1_unit_1_separable_conv1_pointwise").kernel_regularizer.l2 == 2e-5
    assert model.get_layer("entry_flow_block1_unit_1_separable_conv1_depthwise").depthwise_regularizer is None


def test_preprocess_input_maps_to_minus_one_one():
    x = np.array([[0, 127.5, 255]], dtype=np.float32)
    np.testing.assert_allclose(preprocess_input(x), [[-1.0, 0.0, 1.0]])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(preprocess_input(keras.ops.convert_to_tensor(x))), [[-1, 0, 1]]
    )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="output_stride"):
        deeplabv3plus(output_stride=4)
    with pytest.raises(ValueError, match="backbone"):
        deeplabv3plus(backbone="resnet")
    with pytest.raises(ValueError, match="static"):
        deeplabv3plus(input_shape=(None, None, 3))

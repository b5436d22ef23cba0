import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.models.unet import unet
from tests.helpers import check_model, mixed_precision_forward

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.structure
def test_reference_parameter_count():
    model = unet()
    assert model.count_params() == 31_031_685
    assert model.input_shape == (None, 256, 256, 1)
    assert model.output_shape == (None, 256, 256, 1)


@pytest.mark.structure
def test_reference_structure():
    model = unet()
    names = [layer.name for layer in model.layers]
    # dropout after the deepest encoder level and the bottleneck; the deepest level's dropped tensor is the skip
    assert "enc4_drop" in names and "bottleneck_drop" in names
    concat = model.get_layer("dec4_concat")
    assert concat.input[0].name == model.get_layer("enc4_drop").output.name
    assert model.get_layer("dec1_upconv").kernel.shape == (2, 2, 128, 64)
    assert model.get_layer("head_conv").kernel.shape == (3, 3, 64, 2)
    assert model.get_layer("head_logits").kernel.shape == (1, 1, 2, 1)


def test_common_checks_tiny(tmp_path):
    model = keras_zoo.get_model("unet", preset="tiny")
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    check_model(model, x, tmp_path, expected_output_shapes=[(2, 32, 32, 1)], loss="binary_crossentropy")


def test_softmax_head_and_batch_norm():
    model = unet(input_shape=(16, 16, 3), classes=4, filters=2, depth=2, batch_norm=True)
    y = keras.ops.convert_to_numpy(model(np.random.rand(1, 16, 16, 3).astype("float32")))
    assert y.shape == (1, 16, 16, 4)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def test_bn_momentum_reaches_every_batch_norm():
    model = unet(input_shape=(16, 16, 1), filters=2, depth=2, batch_norm=True, bn_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 2 * (2 * 2 + 1) and {layer.momentum for layer in norms} == {0.9}


def test_fully_convolutional_whole_slices():
    model = unet(input_shape=(None, None, 1), filters=2, depth=2)
    for size in (16, 48):
        assert model(np.zeros((1, size, size, 1), "float32")).shape == (1, size, size, 1)


def test_mixed_precision_outputs_float32():
    x = np.random.rand(1, 16, 16, 1).astype("float32")
    (y,) = mixed_precision_forward(unet, x, input_shape=(16, 16, 1), filters=2, depth=2)
    assert y.dtype == np.float32 and np.all((y >= 0) & (y <= 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (30, 32, 1)}, "divisible by 16"),
        ({"classes": 0}, "classes"),
        ({"filters": 0}, "filters"),
        ({"dropout": 1.0}, "dropout"),
        ({"bn_momentum": 1.0, "batch_norm": True}, "bn_momentum"),
        ({"input_shape": (0, 32, 1)}, "divisible by 16; got 0"),
        ({"input_shape": (8, 8, 1)}, "divisible by 16; got 8"),
        ({"input_shape": (32, 32)}, "input_shape"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        unet(**kwargs)


def test_registry():
    assert set(keras_zoo.list_models()) == {"amoebanet", "cascadenet", "deeplabv3plus", "genesis", "unet"}
    with pytest.raises(keras_zoo.KerasZooError, match="unknown model"):
        keras_zoo.get_model("resnet")

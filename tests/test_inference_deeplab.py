"""DeepLabv3+ inference: padded images predict as the model does, scales and flips average softmax
probabilities, masks are palette PNGs, and mIoU ignores void."""

import numpy as np
import pytest
from PIL import Image

from keras_zoo.datasets.voc import voc_palette
from keras_zoo.inference import deeplab as di
from keras_zoo.models.deeplab import deeplabv3plus, preprocess_input

TINY = {"backbone": "xception41", "width": 1 / 16, "middle_units": 1}


def build(size):
    return deeplabv3plus(input_shape=(*size, 3), **TINY)


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def model():
    return build((33, 33))


def test_eval_size_keeps_the_model_size_or_grows_to_stride_plus_one():
    assert di.eval_size((20, 33), (33, 33)) == (33, 33)
    assert di.eval_size((40, 30), (33, 33)) == (49, 33)
    assert di.eval_size((500, 375), (513, 513)) == (513, 513)
    assert di.eval_size((600, 375), (513, 513)) == (609, 513)


def test_small_image_is_mean_padded_and_cropped_back(model):
    image = np.random.default_rng(0).integers(0, 256, (20, 25, 3), dtype=np.uint8)
    probs = di.segment_image(model, image, build)
    padded = np.full((33, 33, 3), 128, np.uint8)
    padded[:20, :25] = image
    expected = softmax(
        model.predict(preprocess_input(padded[None]), verbose=0)[0, :20, :25].astype(np.float64)
    )
    assert probs.shape == (20, 25, 21) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_scales_and_flip_average_the_views(model):
    image = np.random.default_rng(1).integers(0, 256, (33, 33, 3), dtype=np.uint8)
    x = preprocess_input(image[None])
    plain = softmax(model.predict(x, verbose=0)[0].astype(np.float64))
    flipped = softmax(model.predict(x[:, :, ::-1], verbose=0)[0, :, ::-1].astype(np.float64))
    np.testing.assert_allclose(
        di.segment_image(model, image, build, flip=True), (plain + flipped) / 2, atol=1e-6
    )
    two_scales = di.segment_image(model, image, build, scales=(0.5, 1.0))
    half = di.predict_probabilities(model, image[None], (0.5,), False, 1, build)[0]
    np.testing.assert_allclose(two_scales, (half + plain) / 2, atol=1e-6)
    assert di.scale_size(33, 0.5) == 17


def test_palette_png_keeps_class_ids(tmp_path):
    labels = np.array([[0, 1, 2], [15, 20, 255]], np.uint8)
    di.write_palette_png(labels, str(tmp_path / "m.png"))
    image = Image.open(tmp_path / "m.png")
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), labels)
    np.testing.assert_array_equal(np.asarray(image.getpalette(), np.uint8).reshape(-1, 3), voc_palette())
    rgb = np.zeros((2, 3, 3), np.uint8)
    np.testing.assert_array_equal(di.overlay(rgb, labels, alpha=1.0), voc_palette()[labels])


def test_confusion_and_iou_ignore_void():
    labels = np.array([[0, 0, 1, 255]])
    predicted = np.array([[0, 1, 1, 2]])
    confusion = di.confusion_matrix(labels, predicted, 3)
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    report = di.iou_report(confusion, ["a", "b", "c"])
    assert report == pytest.approx({"mean_iou": 0.5, "pixel_accuracy": 2 / 3, "iou_a": 0.5, "iou_b": 0.5})

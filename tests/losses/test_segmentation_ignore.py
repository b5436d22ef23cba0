"""The void-ignoring cross-entropy against a NumPy computation."""

import keras
import numpy as np
import pytest

from keras_zoo.losses.segmentation_ignore import (
    IgnoreLabelCrossentropy,
    balanced_class_weights,
    ignore_label_crossentropy,
)

pytestmark = pytest.mark.backend_agnostic


def _numpy_loss(labels, logits, class_weights=None):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    picked = np.take_along_axis(log_probs, safe[..., None], -1)[..., 0]
    weights = valid * (1.0 if class_weights is None else np.asarray(class_weights)[safe])
    return -(picked * weights).sum() / valid.sum()


def test_mean_over_non_void_pixels_of_the_batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 4, 21)).astype("float32")
    labels = rng.integers(0, 21, size=(2, 5, 4)).astype("uint8")
    labels[0, :3] = 255  # the two images have different numbers of valid pixels
    expected = _numpy_loss(labels.astype(int), logits.astype(np.float64))
    got = float(ignore_label_crossentropy(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    loss = IgnoreLabelCrossentropy()
    assert float(loss(labels[..., None], logits)) == pytest.approx(expected, rel=1e-5)
    assert IgnoreLabelCrossentropy.from_config(loss.get_config()).ignore_label == 255


def test_void_pixels_do_not_change_the_loss_and_all_void_is_zero():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 3, 3, 4)).astype("float32")
    labels = np.full((1, 3, 3), 255, "int32")
    assert float(ignore_label_crossentropy(labels, logits)) == 0.0
    labels[0, 1, 1] = 2
    changed = logits.copy()
    changed[0, 0, 0] += 100.0  # a void pixel's logits
    assert float(ignore_label_crossentropy(labels, logits)) == pytest.approx(
        float(ignore_label_crossentropy(labels, changed))
    )


def test_probabilities_input():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(1, 4, 4))
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    assert float(ignore_label_crossentropy(labels, probs, from_logits=False)) == pytest.approx(
        float(ignore_label_crossentropy(labels, logits)), rel=1e-4
    )


def test_class_weights_scale_each_pixel_by_its_label_and_keep_the_valid_pixel_divisor():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 6, 5, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(2, 6, 5))
    labels[1, :2] = 255
    weights = [0.5, 2.0, 0.0, 3.0]
    expected = _numpy_loss(labels, logits.astype(np.float64), weights)
    assert float(ignore_label_crossentropy(labels, logits, class_weights=weights)) == pytest.approx(
        expected, rel=1e-5
    )
    loss = IgnoreLabelCrossentropy(class_weights=weights)
    restored = IgnoreLabelCrossentropy.from_config(loss.get_config())
    assert restored.class_weights == weights
    assert float(restored(labels, logits)) == pytest.approx(expected, rel=1e-5)
    ones = [1.0] * 4
    assert float(ignore_label_crossentropy(labels, logits, class_weights=ones)) == pytest.approx(
        float(ignore_label_crossentropy(labels, logits)), rel=1e-6
    )


def test_balanced_class_weights_give_each_present_class_an_equal_share():
    labels = [np.array([[0, 0, 0, 0, 0, 0], [1, 1, 255, 255, 255, 255]]), np.array([[0, 3, 3, 3]])]
    weights = balanced_class_weights(labels, classes=5)
    counts = np.array([7, 2, 0, 3, 0])
    n, present = counts.sum(), 3  # classes 0, 1 and 3
    np.testing.assert_allclose(weights, [n / (present * 7), n / (present * 2), 1.0, n / (present * 3), 1.0])
    shares = weights * counts
    np.testing.assert_allclose(shares[counts > 0], shares[0])  # every present class weighs the same in total
    assert shares.sum() == pytest.approx(n)  # so the mean weight per pixel stays 1


def test_class_weights_from_spec():
    from keras_zoo.losses.segmentation_ignore import class_weights_from

    labels = [np.array([[0, 0, 1, 255]], np.uint8)]
    np.testing.assert_allclose(class_weights_from(["balanced"], labels, 3), balanced_class_weights(labels, 3))
    assert class_weights_from(["1", "2.5", "0"], labels, 3) == [1.0, 2.5, 0.0]
    for bad in (["x", "1", "1"], ["1", "1"], ["1", "-1", "1"]):
        with pytest.raises(ValueError, match="balanced|3 weights"):
            class_weights_from(bad, labels, 3)

"""The void-ignoring cross-entropy against a NumPy computation."""

import keras
import numpy as np
import pytest

from keras_zoo.losses.segmentation_ignore import IgnoreLabelCrossentropy, ignore_label_crossentropy

pytestmark = pytest.mark.backend_agnostic


def _numpy_loss(labels, logits):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != 255
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return -(picked * valid).sum() / valid.sum()


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

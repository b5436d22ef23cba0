"""Mean IoU, per-class IoU and pixel accuracy with void label 255, against NumPy."""

import numpy as np
import pytest

from keras_zoo.metrics.miou import SegmentationMeanIoU, VoidIgnoringPixelAccuracy

pytestmark = pytest.mark.backend_agnostic


def _numpy_iou(labels, predicted, classes):
    valid = labels != 255
    ious = []
    for c in range(classes):
        inter = np.sum((labels == c) & (predicted == c) & valid)
        union = np.sum(((labels == c) | (predicted == c)) & valid)
        ious.append(inter / union if union else np.nan)
    return np.array(ious)


def _data(seed=0, classes=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes - 1, size=(3, 6, 7))  # the last class never appears in labels
    labels[rng.random(labels.shape) < 0.2] = 255
    scores = rng.normal(size=(3, 6, 7, classes)).astype("float32")
    return labels, scores


def test_mean_and_per_class_iou_match_numpy_across_batches():
    classes = 5
    labels, scores = _data()
    # the absent class is predicted only on void pixels, which must not count: its IoU is undefined
    scores[..., -1] = np.where(labels == 255, 10.0, -10.0)
    predicted = scores.argmax(-1)
    expected = _numpy_iou(labels, predicted, classes)
    metric = SegmentationMeanIoU(classes)
    for i in range(3):  # accumulated over batches
        metric.update_state(labels[i : i + 1, ..., None], scores[i : i + 1])
    np.testing.assert_allclose(metric.per_class_iou(), expected, rtol=1e-5)
    assert np.isnan(metric.per_class_iou()[-1])
    assert float(metric.result()) == pytest.approx(np.nanmean(expected), rel=1e-5)
    metric.reset_state()
    assert metric.confusion_matrix().sum() == 0
    rebuilt = SegmentationMeanIoU.from_config(metric.get_config())
    assert rebuilt.ignore_class == 255 and rebuilt.num_classes == classes


def test_pixel_accuracy_ignores_void():
    labels, scores = _data(seed=3)
    predicted = scores.argmax(-1)
    valid = labels != 255
    expected = np.sum((predicted == labels) & valid) / valid.sum()
    metric = VoidIgnoringPixelAccuracy(5)
    metric.update_state(labels, scores)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)

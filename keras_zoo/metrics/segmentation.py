"""Segmentation metrics accumulated over every pixel of an epoch: pixel accuracy, Dice and IoU per class.

Predictions with one channel are binary probabilities thresholded at ``threshold`` (class 1 = above);
predictions with several channels are class probabilities or logits reduced by argmax. Targets are
either binary masks (one channel), integer class maps or one-hot maps.
"""

from __future__ import annotations

import keras
from keras import ops


def _labels(y_true, y_pred, threshold: float):
    """Returns (true classes, predicted classes) as int32 tensors of the same shape."""
    if y_pred.shape[-1] == 1:
        pred = ops.cast(ops.squeeze(y_pred, -1) > threshold, "int32")
    else:
        pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    if (
        len(y_true.shape) == len(y_pred.shape)
        and y_true.shape[-1] == y_pred.shape[-1]
        and y_pred.shape[-1] > 1
    ):
        true = ops.cast(ops.argmax(y_true, axis=-1), "int32")
    elif len(y_true.shape) == len(y_pred.shape):
        true = ops.cast(ops.round(ops.squeeze(ops.cast(y_true, "float32"), -1)), "int32")
    else:
        true = ops.cast(y_true, "int32")
    return true, pred


class _ClassCounts(keras.metrics.Metric):
    """Accumulates true positives, false positives and false negatives of one class."""

    def __init__(self, class_id: int = 1, threshold: float = 0.5, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        if class_id < 0:
            raise ValueError(f"class_id must be >= 0, got {class_id}")
        self.class_id = class_id
        self.threshold = threshold
        self.tp = self.add_variable((), initializer="zeros", name="tp")
        self.fp = self.add_variable((), initializer="zeros", name="fp")
        self.fn = self.add_variable((), initializer="zeros", name="fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, pred = _labels(y_true, y_pred, self.threshold)
        is_true = ops.cast(ops.equal(true, self.class_id), "float32")
        is_pred = ops.cast(ops.equal(pred, self.class_id), "float32")
        self.tp.assign_add(ops.sum(is_true * is_pred))
        self.fp.assign_add(ops.sum((1.0 - is_true) * is_pred))
        self.fn.assign_add(ops.sum(is_true * (1.0 - is_pred)))

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="keras_zoo")
class DiceCoefficient(_ClassCounts):
    """Dice (F1) of class ``class_id`` over all pixels seen: 2TP / (2TP + FP + FN); 1 when the class is absent
    from both target and prediction."""

    def __init__(self, class_id: int = 1, threshold: float = 0.5, name: str | None = None, **kwargs):
        super().__init__(class_id, threshold, name=name or f"dice_{class_id}", **kwargs)

    def result(self):
        denom = 2.0 * self.tp + self.fp + self.fn
        return ops.where(denom > 0, 2.0 * self.tp / ops.maximum(denom, 1e-12), 1.0)


@keras.saving.register_keras_serializable(package="keras_zoo")
class ClassIoU(_ClassCounts):
    """Intersection over union of class ``class_id``: TP / (TP + FP + FN); 1 when absent from both."""

    def __init__(self, class_id: int = 1, threshold: float = 0.5, name: str | None = None, **kwargs):
        super().__init__(class_id, threshold, name=name or f"iou_{class_id}", **kwargs)

    def result(self):
        denom = self.tp + self.fp + self.fn
        return ops.where(denom > 0, self.tp / ops.maximum(denom, 1e-12), 1.0)


@keras.saving.register_keras_serializable(package="keras_zoo")
class ThresholdPixelAccuracy(keras.metrics.Metric):
    """Fraction of pixels whose predicted class equals the target class, every pixel counted.

    One-channel predictions are thresholded at ``threshold``, several channels reduced by argmax (the
    module's conventions). For labels with a void class to leave out, use
    :class:`keras_zoo.metrics.miou.VoidIgnoringPixelAccuracy`.
    """

    def __init__(self, threshold: float = 0.5, name: str = "pixel_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, pred = _labels(y_true, y_pred, self.threshold)
        self.correct.assign_add(ops.sum(ops.cast(ops.equal(true, pred), "float32")))
        self.total.assign_add(ops.cast(ops.size(true), "float32"))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}

"""Semantic-segmentation metrics that ignore a void label (VOC's 255), built on ``keras.metrics.MeanIoU``.

Keras' ``MeanIoU(ignore_class=255, sparse_y_pred=False)`` already matches the reference's evaluation
(``tf.metrics.mean_iou`` over non-void pixels, classes with an empty union left out of the mean); these
subclasses only add the per-class IoU report and pixel accuracy read from the same confusion matrix.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_zoo.datasets.voc import VOID_LABEL


@keras.saving.register_keras_serializable(package="keras_zoo")
class SegmentationMeanIoU(keras.metrics.MeanIoU):
    """Mean IoU over classes from logits or probabilities, ignoring void pixels.

    Args:
        num_classes: number of classes (21 for VOC).
        ignore_label: label value excluded from the confusion matrix (255).
        name: metric name.

    ``update_state(y_true, y_pred)`` takes labels (batch, H, W) or (batch, H, W, 1) and scores
    (batch, H, W, classes).
    """

    def __init__(self, num_classes: int, ignore_label: int = VOID_LABEL, name: str = "mean_iou", **kwargs):
        kwargs.pop("ignore_class", None)
        kwargs.pop("sparse_y_pred", None)
        super().__init__(
            num_classes=num_classes, ignore_class=ignore_label, sparse_y_pred=False, name=name, **kwargs
        )

    def confusion_matrix(self) -> np.ndarray:
        """The accumulated (classes, classes) matrix, rows = true class, columns = predicted class."""
        return np.asarray(ops.convert_to_numpy(self.total_cm), dtype=np.float64)

    def per_class_iou(self) -> np.ndarray:
        """IoU of each class (NaN for a class absent from both labels and predictions)."""
        return per_class_iou(self.confusion_matrix())

    def get_config(self):
        config = super().get_config()
        config["ignore_label"] = config.pop("ignore_class")
        config.pop("sparse_y_pred", None)
        config.pop("sparse_y_true", None)
        config.pop("axis", None)
        return config


@keras.saving.register_keras_serializable(package="keras_zoo")
class VoidIgnoringPixelAccuracy(SegmentationMeanIoU):
    """Fraction of non-void pixels whose arg-max class equals the label (trace / sum of the confusion matrix).

    Pixels labelled ``ignore_label`` (VOC's void, 255) are left out; for binary masks thresholded at a
    probability, use :class:`keras_zoo.metrics.segmentation.ThresholdPixelAccuracy`.
    """

    def __init__(
        self, num_classes: int, ignore_label: int = VOID_LABEL, name: str = "pixel_accuracy", **kwargs
    ):
        super().__init__(num_classes=num_classes, ignore_label=ignore_label, name=name, **kwargs)

    def result(self):
        total = ops.sum(self.total_cm)
        return ops.divide(ops.sum(ops.diag(self.total_cm)), ops.maximum(total, 1.0))


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class from a (classes, classes) confusion matrix; NaN where the union is empty."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positives = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positives / np.where(union > 0, union, 1), np.nan)

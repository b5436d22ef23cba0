"""Softmax cross-entropy that ignores a void label, as DeepLab's training loss.

The reference weights void pixels (255) by 0, sums the per-pixel cross-entropy over the batch and divides by
the number of non-void pixels: a mean over valid pixels of the whole batch, not a mean of per-image means.
Optional per-class weights scale each pixel's term by the weight of its label before that sum (the
reference's ``label_weights``); the divisor stays the number of non-void pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
from keras import ops

from keras_zoo.datasets.voc import VOID_LABEL


def ignore_label_crossentropy(
    y_true,
    y_pred,
    ignore_label: int = VOID_LABEL,
    from_logits: bool = True,
    class_weights: Sequence[float] | None = None,
):
    """Mean softmax cross-entropy over the pixels whose label is not ``ignore_label``.

    Args:
        y_true: integer labels (batch, H, W) or (batch, H, W, 1); values 0..classes-1 or ``ignore_label``.
        y_pred: logits (or probabilities with ``from_logits=False``) (batch, H, W, classes).
        ignore_label: void label (255).
        from_logits: whether ``y_pred`` holds logits.
        class_weights: optional weight per class (length ``classes``) multiplying each pixel's term.

    Returns:
        Scalar float32 loss: sum of (weighted) per-pixel terms / number of non-void pixels; 0 when all are void.
    """
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    valid = ops.not_equal(y_true, ignore_label)
    labels = ops.where(valid, y_true, 0)
    per_pixel = ops.sparse_categorical_crossentropy(
        labels, ops.cast(y_pred, "float32"), from_logits=from_logits
    )
    valid = ops.cast(valid, "float32")
    weights = valid
    if class_weights is not None:
        weights = valid * ops.take(ops.convert_to_tensor(class_weights, "float32"), labels)
    return ops.sum(per_pixel * weights) / ops.maximum(ops.sum(valid), 1.0)


def balanced_class_weights(
    labels: Iterable[np.ndarray], classes: int, ignore_label: int = VOID_LABEL
) -> np.ndarray:
    """Weights that give every class present the same share of the loss: ``n / (k * count_c)``.

    ``n`` is the number of non-void pixels, ``k`` the number of classes present and ``count_c`` the pixels of
    class c (scikit-learn's "balanced"), so the mean weight over the pixels stays 1. Classes absent from
    ``labels`` get weight 1.

    Args:
        labels: integer label maps of any shapes, values 0..classes-1 or ``ignore_label``.
        classes: number of classes.
        ignore_label: void label, not counted.

    Returns:
        float32 array (classes,).
    """
    counts = np.zeros(classes, np.int64)
    for label in labels:
        label = np.asarray(label)
        counts += np.bincount(label[label != ignore_label].ravel().astype(np.int64), minlength=classes)[
            :classes
        ]
    present = counts > 0
    weights = np.ones(classes, np.float32)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def class_weights_from(
    spec: Sequence[str], labels: Iterable[np.ndarray], classes: int, ignore_label: int = VOID_LABEL
) -> list[float]:
    """Per-class loss weights from a command-line style ``spec``.

    Args:
        spec: ``["balanced"]`` (:func:`balanced_class_weights` of ``labels``) or ``classes`` numbers >= 0.
        labels: integer label maps (H, W) of the training set, read only for "balanced".
        classes: number of classes.
        ignore_label: void label, not counted.

    Raises:
        ValueError: ``spec`` is neither "balanced" nor ``classes`` numbers >= 0.
    """
    if list(spec) == ["balanced"]:
        return balanced_class_weights(labels, classes, ignore_label).tolist()
    try:
        weights = [float(w) for w in spec]
    except ValueError:
        raise ValueError(f"takes 'balanced' or {classes} numbers, got {list(spec)}") from None
    if len(weights) != classes or min(weights) < 0:
        raise ValueError(f"needs {classes} weights >= 0 (one per class), got {len(weights)}: {list(spec)}")
    return weights


@keras.saving.register_keras_serializable(package="keras_zoo")
class IgnoreLabelCrossentropy(keras.losses.Loss):
    """:func:`ignore_label_crossentropy` as a Keras loss (the batch mean over non-void pixels).

    ``sample_weight`` is not supported: the loss is already a scalar over the batch.
    """

    def __init__(
        self,
        ignore_label: int = VOID_LABEL,
        from_logits: bool = True,
        class_weights: Sequence[float] | None = None,
        name: str = "ignore_label_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ignore_label = int(ignore_label)
        self.from_logits = bool(from_logits)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        return ignore_label_crossentropy(
            y_true, y_pred, self.ignore_label, self.from_logits, self.class_weights
        )

    def get_config(self):
        return {
            **super().get_config(),
            "ignore_label": self.ignore_label,
            "from_logits": self.from_logits,
            "class_weights": self.class_weights,
        }

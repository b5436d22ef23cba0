"""Softmax cross-entropy that ignores a void label, as DeepLab's training loss.

The reference weights void pixels (255) by 0, sums the per-pixel cross-entropy over the batch and divides by
the number of non-void pixels: a mean over valid pixels of the whole batch, not a mean of per-image means.
"""

from __future__ import annotations

import keras
from keras import ops

VOID_LABEL = 255


def ignore_label_crossentropy(y_true, y_pred, ignore_label: int = VOID_LABEL, from_logits: bool = True):
    """Mean softmax cross-entropy over the pixels whose label is not ``ignore_label``.

    Args:
        y_true: integer labels (batch, H, W) or (batch, H, W, 1); values 0..classes-1 or ``ignore_label``.
        y_pred: logits (or probabilities with ``from_logits=False``) (batch, H, W, classes).
        ignore_label: void label (255).
        from_logits: whether ``y_pred`` holds logits.

    Returns:
        Scalar float32 loss; 0 when every pixel is void.
    """
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    valid = ops.not_equal(y_true, ignore_label)
    labels = ops.where(valid, y_true, 0)
    per_pixel = ops.sparse_categorical_crossentropy(
        labels, ops.cast(y_pred, "float32"), from_logits=from_logits
    )
    weights = ops.cast(valid, "float32")
    return ops.sum(per_pixel * weights) / ops.maximum(ops.sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="keras_zoo")
class IgnoreLabelCrossentropy(keras.losses.Loss):
    """:func:`ignore_label_crossentropy` as a Keras loss (the batch mean over non-void pixels).

    ``sample_weight`` is not supported: the loss is already a scalar over the batch.
    """

    def __init__(
        self,
        ignore_label: int = VOID_LABEL,
        from_logits: bool = True,
        name: str = "ignore_label_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ignore_label = int(ignore_label)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return ignore_label_crossentropy(y_true, y_pred, self.ignore_label, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label, "from_logits": self.from_logits}

"""Softmax cross-entropy with label smoothing on integer labels (tf.losses.softmax_cross_entropy semantics)."""

from __future__ import annotations

import keras
from keras import ops


def smoothed_sparse_crossentropy(labels, logits, label_smoothing: float = 0.1):
    """Per-sample cross-entropy of ``logits`` against smoothed one-hot ``labels``.

    The target is ``one_hot * (1 - s) + s / classes``, as in TF-slim/TPU models.

    Args:
        labels: integer tensor (batch,) or (batch, 1) of class indices.
        logits: float tensor (batch, classes), unnormalised.
        label_smoothing: s in [0, 1).

    Returns:
        float32 tensor (batch,).
    """
    logits = ops.cast(logits, "float32")
    classes = logits.shape[-1]
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    target = ops.one_hot(labels, classes) * (1.0 - label_smoothing) + label_smoothing / classes
    return -ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)


@keras.saving.register_keras_serializable(package="keras_zoo")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Label-smoothed softmax cross-entropy from logits and integer labels, optionally scaled.

    Args:
        label_smoothing: s in [0, 1) (the AmoebaNet recipe uses 0.1).
        weight: factor on the loss (0.4 for the AmoebaNet auxiliary head).
    """

    def __init__(
        self, label_smoothing: float = 0.1, weight: float = 1.0, name="smoothed_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.weight = float(weight)

    def call(self, y_true, y_pred):
        return self.weight * smoothed_sparse_crossentropy(y_true, y_pred, self.label_smoothing)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "weight": self.weight})
        return config

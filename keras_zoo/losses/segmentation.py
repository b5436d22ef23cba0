"""Segmentation losses: soft Dice and binary cross-entropy + soft Dice."""

from __future__ import annotations

import keras
from keras import ops


def soft_dice_loss(y_true, y_pred, smooth: float = 1.0):
    """1 - soft Dice per sample, averaged over channels.

    Args:
        y_true: target probabilities (batch, ..., channels) in [0, 1].
        y_pred: predicted probabilities, same shape.
        smooth: added to numerator and denominator (keeps empty masks finite).

    Returns:
        Tensor (batch,) of losses.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - ops.mean(dice, axis=-1)


def bce_dice_loss(y_true, y_pred, dice_weight: float = 1.0, smooth: float = 1.0):
    """Binary cross-entropy (mean over pixels) plus ``dice_weight`` x soft Dice loss, per sample."""
    y_true = ops.cast(y_true, y_pred.dtype)
    bce = keras.losses.binary_crossentropy(y_true, y_pred)
    bce = ops.mean(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=-1)
    return bce + dice_weight * soft_dice_loss(y_true, y_pred, smooth)


@keras.saving.register_keras_serializable(package="keras_zoo")
class SoftDice(keras.losses.Loss):
    """Soft Dice loss on probabilities (see :func:`soft_dice_loss`)."""

    def __init__(self, smooth: float = 1.0, name: str = "soft_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = smooth

    def call(self, y_true, y_pred):
        return soft_dice_loss(y_true, y_pred, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="keras_zoo")
class BCEDice(keras.losses.Loss):
    """Binary cross-entropy plus soft Dice (see :func:`bce_dice_loss`)."""

    def __init__(self, dice_weight: float = 1.0, smooth: float = 1.0, name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight
        self.smooth = smooth

    def call(self, y_true, y_pred):
        return bce_dice_loss(y_true, y_pred, self.dice_weight, self.smooth)

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight, "smooth": self.smooth}

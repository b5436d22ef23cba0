"""Losses of the five networks (each a keras.ops function plus a serializable Loss class)."""

from keras_zoo.losses.classification import SmoothedSparseCrossentropy, smoothed_sparse_crossentropy
from keras_zoo.losses.segmentation import BCEDice, SoftDice, bce_dice_loss, soft_dice_loss
from keras_zoo.losses.segmentation_ignore import (
    IgnoreLabelCrossentropy,
    balanced_class_weights,
    ignore_label_crossentropy,
)

__all__ = [
    "BCEDice",
    "IgnoreLabelCrossentropy",
    "SmoothedSparseCrossentropy",
    "SoftDice",
    "balanced_class_weights",
    "bce_dice_loss",
    "ignore_label_crossentropy",
    "smoothed_sparse_crossentropy",
    "soft_dice_loss",
]

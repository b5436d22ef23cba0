"""Losses of the five networks (each a keras.ops function plus a serializable Loss class)."""

from keras_zoo.losses.segmentation import BCEDice, SoftDice, bce_dice_loss, soft_dice_loss

__all__ = ["BCEDice", "SoftDice", "bce_dice_loss", "soft_dice_loss"]

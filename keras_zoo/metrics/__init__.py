"""Metrics of the five networks (keras.metrics.Metric subclasses, checked against NumPy in tests)."""

from keras_zoo.metrics.segmentation import ClassIoU, DiceCoefficient, PixelAccuracy

__all__ = ["ClassIoU", "DiceCoefficient", "PixelAccuracy"]

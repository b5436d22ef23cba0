"""Metrics of the five networks (keras.metrics.Metric subclasses, checked against NumPy in tests)."""

from keras_zoo.metrics.miou import SegmentationMeanIoU, VoidIgnoringPixelAccuracy, per_class_iou
from keras_zoo.metrics.reconstruction import NMSE, PSNR, SSIM, complex_psnr, nmse, ssim
from keras_zoo.metrics.segmentation import ClassIoU, DiceCoefficient, ThresholdPixelAccuracy

__all__ = [
    "NMSE",
    "PSNR",
    "SSIM",
    "ClassIoU",
    "DiceCoefficient",
    "ThresholdPixelAccuracy",
    "SegmentationMeanIoU",
    "VoidIgnoringPixelAccuracy",
    "complex_psnr",
    "nmse",
    "per_class_iou",
    "ssim",
]

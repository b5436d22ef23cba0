"""Layers with new math: orthonormal 2-channel FFTs, data consistency, k-space averaging, drop-path, and a
depthwise convolution and max pooling in forms that XLA compiles and runs well, convolutions and pools
that run on channels-first views on torch, and batch normalization on TensorFlow's and torch's fused kernels."""

from keras_zoo.layers import atrous_depthwise, batch_norm, layout, max_pooling
from keras_zoo.layers.atrous_depthwise import DepthwiseConv2D
from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.data_consistency import DataConsistency
from keras_zoo.layers.drop_path import DropPath
from keras_zoo.layers.fft import fft2_channels, ifft2_channels, real_dft
from keras_zoo.layers.kspace_averaging import KSpaceAveraging
from keras_zoo.layers.layout import AveragePooling2D, Conv2D, Conv3D
from keras_zoo.layers.max_pooling import MaxPooling2D, MaxPooling3D


def implementations() -> dict[str, str]:
    """The form each rewritten layer takes on this backend, after ``$KERAS_ZOO_DEPTHWISE``,
    ``$KERAS_ZOO_MAX_POOLING``, ``$KERAS_ZOO_LAYOUT`` and ``$KERAS_ZOO_BATCH_NORM``: ``{"depthwise": ...,
    "max_pooling": ..., "layout": ..., "batch_norm": ...}`` (see each module's ``implementation``), for run
    records and ``keras-zoo info``.

    Raises:
        ValueError: a variable with a value its module does not know, naming it.
    """
    return {
        "depthwise": atrous_depthwise.implementation(),
        "max_pooling": max_pooling.implementation(),
        "layout": layout.implementation(),
        "batch_norm": batch_norm.implementation(),
    }


__all__ = [
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Conv3D",
    "DataConsistency",
    "DepthwiseConv2D",
    "DropPath",
    "KSpaceAveraging",
    "MaxPooling2D",
    "MaxPooling3D",
    "fft2_channels",
    "ifft2_channels",
    "implementations",
    "real_dft",
]

"""Layers with new math: orthonormal 2-channel FFTs, data consistency, k-space averaging, drop-path, and a
depthwise convolution and max pooling in forms that XLA compiles and runs well, and convolutions and pools
that run on channels-first views on torch."""

from keras_zoo.layers.atrous_depthwise import DepthwiseConv2D
from keras_zoo.layers.data_consistency import DataConsistency
from keras_zoo.layers.drop_path import DropPath
from keras_zoo.layers.fft import fft2_channels, ifft2_channels, real_dft
from keras_zoo.layers.kspace_averaging import KSpaceAveraging
from keras_zoo.layers.layout import AveragePooling2D, Conv2D, Conv3D
from keras_zoo.layers.max_pooling import MaxPooling2D, MaxPooling3D

__all__ = [
    "AveragePooling2D",
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
    "real_dft",
]

"""Layers with new math: orthonormal 2-channel FFTs, data consistency, k-space averaging."""

from keras_zoo.layers.data_consistency import DataConsistency
from keras_zoo.layers.fft import fft2_channels, ifft2_channels
from keras_zoo.layers.kspace_averaging import KSpaceAveraging

__all__ = ["DataConsistency", "KSpaceAveraging", "fft2_channels", "ifft2_channels"]

"""Orthonormal, uncentred 2D FFTs on real/imaginary channel pairs.

Complex images travel through the networks as two float channels, ``(..., height, width, 2)`` with
channel 0 the real part and channel 1 the imaginary part (CascadeNet's convention). The transforms run
over the two axes before the channel axis, with ``norm="ortho"`` scaling (``1/sqrt(height*width)`` both
ways, so Parseval holds) and without any ``fftshift``: the k-space centre (DC) sits at index ``[0, 0]``,
as in the CascadeNet reference where the masks are produced already ``ifftshift``-ed.
"""

from __future__ import annotations

from keras import ops


def _size_factor(x):
    """sqrt(height * width) of a (..., height, width, 2) tensor, in x's dtype (works with None sizes)."""
    shape = ops.shape(x)
    return ops.sqrt(ops.cast(shape[-3] * shape[-2], x.dtype))


def fft2_channels(x):
    """Orthonormal 2D FFT of a 2-channel image.

    Args:
        x: float tensor (..., height, width, 2), real and imaginary parts of an image.

    Returns:
        Float tensor (..., height, width, 2): real and imaginary parts of ``fft2(x, norm="ortho")``.
    """
    real, imag = ops.fft2((x[..., 0], x[..., 1]))
    return ops.stack([real, imag], axis=-1) / _size_factor(x)


def ifft2_channels(k):
    """Orthonormal inverse 2D FFT of 2-channel k-space (the inverse of :func:`fft2_channels`).

    Args:
        k: float tensor (..., height, width, 2), real and imaginary parts of uncentred k-space.

    Returns:
        Float tensor (..., height, width, 2): real and imaginary parts of ``ifft2(k, norm="ortho")``.
    """
    real, imag = ops.ifft2((k[..., 0], k[..., 1]))
    return ops.stack([real, imag], axis=-1) * _size_factor(k)

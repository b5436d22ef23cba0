"""Orthonormal, uncentred 2D FFTs on real/imaginary channel pairs.

Complex images travel through the networks as two float channels, ``(..., height, width, 2)`` with
channel 0 the real part and channel 1 the imaginary part (CascadeNet's convention). The transforms run
over the two axes before the channel axis, with ``norm="ortho"`` scaling (``1/sqrt(height*width)`` both
ways, so Parseval holds) and without any ``fftshift``: the k-space centre (DC) sits at index ``[0, 0]``,
as in the CascadeNet reference where the masks are produced already ``ifftshift``-ed.

By default the transforms call ``keras.ops.fft2`` / ``ifft2``, which build complex64 tensors on TensorFlow.
ONNX has no complex tensor type, so a graph traced inside :func:`real_dft` computes the same transforms as
real matrix products instead: ``X -> F_H X F_W`` with the DFT matrices ``F_N[j, k] = exp(-+2 pi i jk / N) /
sqrt(N)`` split into cosine and sine parts. That costs O(N^3) per transform instead of O(N^2 log N) and needs
static height and width; ``keras-zoo export --format onnx`` uses it, training keeps the FFT.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np
from keras import ops

_use_real_dft = False


@contextlib.contextmanager
def real_dft() -> Iterator[None]:
    """Makes :func:`fft2_channels` / :func:`ifft2_channels` traced or run inside it use real DFT matmuls.

    The choice is made when a graph is traced (or an eager call runs), so wrap ``model.export(...)`` or a
    ``model(...)`` call in it; a function traced earlier keeps the FFT. Nested uses restore the outer state.
    """
    global _use_real_dft
    previous = _use_real_dft
    _use_real_dft = True
    try:
        yield
    finally:
        _use_real_dft = previous


@functools.lru_cache(maxsize=32)
def _dft_blocks(n: int, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Real (2n, 2n) float32 blocks applying the orthonormal DFT matrix F_n = C + iS to stacked parts.

    Returns:
        ``(left, right)``: ``left @ [re; im]`` (parts stacked along rows) gives ``[re; im]`` of ``F_n @ z``,
        and ``[re, im] @ right`` (parts side by side) gives ``[re, im]`` of ``z @ F_n`` (F_n is symmetric).
    """
    index = np.arange(n, dtype=np.int64)
    # Reduce jk modulo n in integers first, so the angles stay exact for large n.
    angle = 2.0 * np.pi * (np.outer(index, index) % n) / n
    cos = np.cos(angle) / np.sqrt(n)
    sin = (1.0 if inverse else -1.0) * np.sin(angle) / np.sqrt(n)
    left = np.block([[cos, -sin], [sin, cos]]).astype(np.float32)
    right = np.block([[cos, sin], [-sin, cos]]).astype(np.float32)
    return left, right


def _dft2_matmul(x, inverse: bool):
    """Orthonormal 2D (inverse) DFT of a (..., height, width, 2) tensor by two real matrix products."""
    height, width = x.shape[-3], x.shape[-2]
    if height is None or width is None:
        raise ValueError(
            f"real_dft: needs static height and width, got a tensor of shape {tuple(x.shape)}; "
            "build the model with a fixed input_shape"
        )
    left, _ = _dft_blocks(height, inverse)
    _, right = _dft_blocks(width, inverse)
    # Along width: [re, im] (..., H, 2W) @ right -> [re, im] of z F_W.
    rows = ops.matmul(ops.concatenate([x[..., 0], x[..., 1]], axis=-1), ops.cast(right, x.dtype))
    # Along height: left @ [re; im] (..., 2H, W) -> [re; im] of F_H z F_W.
    stacked = ops.concatenate([rows[..., :width], rows[..., width:]], axis=-2)
    out = ops.matmul(ops.cast(left, x.dtype), stacked)
    return ops.stack([out[..., :height, :], out[..., height:, :]], axis=-1)


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
    if _use_real_dft:
        return _dft2_matmul(x, inverse=False)
    real, imag = ops.fft2((x[..., 0], x[..., 1]))
    return ops.stack([real, imag], axis=-1) / _size_factor(x)


def ifft2_channels(k):
    """Orthonormal inverse 2D FFT of 2-channel k-space (the inverse of :func:`fft2_channels`).

    Args:
        k: float tensor (..., height, width, 2), real and imaginary parts of uncentred k-space.

    Returns:
        Float tensor (..., height, width, 2): real and imaginary parts of ``ifft2(k, norm="ortho")``.
    """
    if _use_real_dft:
        return _dft2_matmul(k, inverse=True)
    real, imag = ops.ifft2((k[..., 0], k[..., 1]))
    return ops.stack([real, imag], axis=-1) * _size_factor(k)

"""Image-reconstruction metrics: PSNR (peak from the reference), SSIM and NMSE.

Two forms of each:
- NumPy functions on complex or real images (for evaluation scripts and reports): :func:`complex_psnr`
  is the CascadeNet paper's ``complex_psnr(ref, rec, peak='max')``,
  ``10 log10(max|ref|^2 / mean|ref - rec|^2)``; :func:`nmse` is ``sum|ref - rec|^2 / sum|ref|^2``;
  :func:`ssim` is scikit-image's SSIM of the magnitudes with ``data_range = max|ref|``.
- Keras metrics on 2-channel tensors (batch, [frames,] H, W, 2) (real, imag), averaged over the images
  of an epoch: :class:`PSNR`, :class:`SSIM`, :class:`NMSE`. SSIM uses scikit-image's defaults (7x7
  uniform window, K1 0.01, K2 0.03, sample covariance, border of 3 pixels left out), per 2D image/frame.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from skimage.metrics import structural_similarity

SSIM_WINDOW = 7


def complex_psnr(reference: np.ndarray, reconstruction: np.ndarray, peak: str = "max") -> float:
    """PSNR in dB with the peak taken from the reference, as the paper's ``complex_psnr``.

    Args:
        reference: complex or real array.
        reconstruction: array of the same shape.
        peak: "max" (``max|reference|^2``) or "normalized" (peak 1).
    """
    if peak not in ("max", "normalized"):
        raise ValueError(f"peak must be 'max' or 'normalized', got {peak!r}")
    reference = np.asarray(reference)
    mse = np.mean(np.abs(reference - np.asarray(reconstruction)) ** 2)
    top = np.max(np.abs(reference)) ** 2 if peak == "max" else 1.0
    return float(10 * np.log10(top / mse))


def nmse(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Normalised MSE ``sum|ref - rec|^2 / sum|ref|^2``."""
    reference = np.asarray(reference)
    return float(np.sum(np.abs(reference - np.asarray(reconstruction)) ** 2) / np.sum(np.abs(reference) ** 2))


def ssim(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """SSIM of the magnitudes of one 2D image (scikit-image, ``data_range = max|reference|``)."""
    reference = np.abs(np.asarray(reference)).astype(np.float64)
    reconstruction = np.abs(np.asarray(reconstruction)).astype(np.float64)
    return float(structural_similarity(reference, reconstruction, data_range=float(reference.max())))


def _squared_magnitude(x):
    return ops.sum(ops.square(x), axis=-1)


def psnr_per_image(y_true, y_pred):
    """PSNR (dB) per sample of 2-channel tensors (batch, ..., 2) with the peak from ``y_true``."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_true.shape) - 1))
    mse = ops.mean(_squared_magnitude(y_true - y_pred), axis=axes)
    peak = ops.max(_squared_magnitude(y_true), axis=axes)
    return 10.0 * ops.log10(peak / ops.maximum(mse, 1e-20))


def nmse_per_image(y_true, y_pred):
    """NMSE per sample of 2-channel tensors (batch, ..., 2)."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_true.shape) - 1))
    error = ops.sum(_squared_magnitude(y_true - y_pred), axis=axes)
    return error / ops.maximum(ops.sum(_squared_magnitude(y_true), axis=axes), 1e-20)


def ssim_per_image(y_true, y_pred):
    """SSIM of the magnitudes per sample of 2-channel tensors (batch, [frames,] H, W, 2).

    Dynamic samples get the mean SSIM of their frames. ``data_range`` is ``max|y_true|`` per frame.
    """
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    shape = ops.shape(y_true)
    frames = shape[1] if len(y_true.shape) == 5 else 1
    size = (-1, shape[-3], shape[-2], 1)
    x = ops.reshape(ops.sqrt(_squared_magnitude(y_true)), size)
    y = ops.reshape(ops.sqrt(_squared_magnitude(y_pred)), size)
    data_range = ops.max(x, axis=(1, 2, 3), keepdims=True)
    c1, c2 = ops.square(0.01 * data_range), ops.square(0.03 * data_range)

    def local_mean(t):
        return ops.average_pool(t, SSIM_WINDOW, strides=1, padding="valid")

    mu_x, mu_y = local_mean(x), local_mean(y)
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1.0)
    var_x = cov_norm * (local_mean(x * x) - mu_x * mu_x)
    var_y = cov_norm * (local_mean(y * y) - mu_y * mu_y)
    cov_xy = cov_norm * (local_mean(x * y) - mu_x * mu_y)
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    per_frame = ops.mean(ssim_map, axis=(1, 2, 3))
    return ops.mean(ops.reshape(per_frame, (-1, frames)), axis=1)


class _MeanPerImage(keras.metrics.MeanMetricWrapper):
    """Mean over images of a per-image function ``per_image(y_true, y_pred) -> (batch,)``, named ``default_name``
    unless a name is given."""

    default_name: str

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(fn=type(self).per_image, name=name or self.default_name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="keras_zoo")
class PSNR(_MeanPerImage):
    """Mean PSNR (dB) over images of 2-channel tensors, peak from the reference (the paper's convention)."""

    default_name = "psnr"
    per_image = staticmethod(psnr_per_image)


@keras.saving.register_keras_serializable(package="keras_zoo")
class SSIM(_MeanPerImage):
    """Mean SSIM of the magnitudes over images of 2-channel tensors (scikit-image defaults)."""

    default_name = "ssim"
    per_image = staticmethod(ssim_per_image)


@keras.saving.register_keras_serializable(package="keras_zoo")
class NMSE(_MeanPerImage):
    """Mean normalised MSE over images of 2-channel tensors."""

    default_name = "nmse"
    per_image = staticmethod(nmse_per_image)

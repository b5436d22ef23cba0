"""MR training images from a user's ``--data``: which files it names, and fitting them to one size."""

from __future__ import annotations

import os

import numpy as np

# Extensions :func:`keras_zoo.datasets.mri_readers.load_mr_images` reads when a folder is given.
READABLE = (".h5", ".hdf5", ".mat", ".npy", ".nii", ".nii.gz", ".dcm", ".hdr")


def fit_size(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crops or zero-pads the last two axes of ``images`` (..., H, W) to ``size`` (H', W')."""
    out = images
    for axis, target in zip((-2, -1), size):
        current = out.shape[axis]
        if current > target:
            start = (current - target) // 2
            out = np.take(out, np.arange(start, start + target), axis=axis)
        elif current < target:
            pad = [(0, 0)] * out.ndim
            pad[axis] = ((target - current) // 2, target - current - (target - current) // 2)
            out = np.pad(out, pad)
    return out


def fourier_resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resamples the last two axes of ``images`` (..., H, W) to ``size`` by cropping or zero-padding k-space.

    The field of view is kept and the resolution changes, as if the scan had been acquired with ``size``
    k-space samples: the centred orthonormal k-space is cut (or padded) symmetrically about its centre and
    transformed back, then multiplied by ``sqrt(H' W' / (H W))`` so that intensities keep their scale.
    Real-valued input (real dtype, or complex with zero imaginary part) gives real-valued output: the imaginary
    residue of an even-size cut is dropped, so magnitude images still count as magnitude-only afterwards.

    Args:
        images: real or complex array (..., H, W).
        size: (H', W').

    Returns:
        float32 (real input) or complex64 array (..., H', W').
    """
    images = np.asarray(images)
    axes = (-2, -1)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=axes), norm="ortho"), axes=axes)
    k = fit_size(k, size)
    out = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), norm="ortho"), axes=axes)
    out = out * np.sqrt(size[0] * size[1] / (images.shape[-2] * images.shape[-1]))
    if not np.iscomplexobj(images):
        return out.real.astype(np.float32)
    if not np.any(images.imag):  # a magnitude image held as complex stays real-valued (phase is added later)
        out = out.real
    return out.astype(np.complex64)


FITS = {"crop": fit_size, "resample": fourier_resize}


def data_files(spec: str) -> list[str]:
    """Expands comma-separated paths; a folder stands for the readable files in it.

    A folder whose readable files are all DICOM slices stays one path (one series).
    """
    files = []
    for path in (p.strip() for p in spec.split(",") if p.strip()):
        if os.path.isdir(path):
            inside = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(READABLE))
            non_dicom = [f for f in inside if not f.lower().endswith(".dcm")]
            files += non_dicom or [path]
        else:
            files.append(path)
    return files

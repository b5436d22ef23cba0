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

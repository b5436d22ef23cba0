"""Small valid files of every format the readers take, written by tests (bad-input catalogue, fuzzing)."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
from PIL import Image


def gray(height: int = 16, width: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 (H, W) random image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def write_png(path: pathlib.Path, array: np.ndarray | None = None) -> pathlib.Path:
    Image.fromarray(gray() if array is None else array).save(path)
    return path


def write_jpeg(path: pathlib.Path, size: int = 16) -> pathlib.Path:
    rgb = np.random.default_rng(1).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, format="JPEG")
    return path


def write_tiff(path: pathlib.Path, array: np.ndarray | None = None) -> pathlib.Path:
    import tifffile

    tifffile.imwrite(path, np.stack([gray(), gray(seed=1)]) if array is None else array)
    return path


def write_nifti(path: pathlib.Path, shape=(8, 8, 4)) -> pathlib.Path:
    import nibabel

    volume = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    nibabel.Nifti1Image(volume, np.eye(4)).to_filename(str(path))
    return path


def save_dicom(ds, path) -> None:
    """Writes the pydicom Dataset ``ds`` as a DICOM file with preamble and file meta: ``enforce_file_format``
    since pydicom 3, ``write_like_original=False`` before it (setup.cfg's floor is 2.4)."""
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, write_like_original=False)


def write_dicom(path: pathlib.Path, size: int = 8) -> pathlib.Path:
    """A minimal CT slice (16-bit, rescale slope/intercept) that pydicom reads back."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.InstanceNumber = "CT", 1
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = np.arange(size * size, dtype=np.uint16).reshape(size, size).tobytes()
    save_dicom(ds, path)
    return path


def write_port_h5(path: pathlib.Path, n: int = 2, size: int = 8) -> pathlib.Path:
    """The CascadeNet Ascend port's HDF5 layout: ``label`` (N, H, W) uint8 and ``mask``."""
    with h5py.File(path, "w") as f:
        f["label"] = np.random.default_rng(3).integers(0, 256, (n, size, size), dtype=np.uint8)
        f["mask"] = np.ones((n, size, size), np.float32)
    return path


def write_npy(path: pathlib.Path, shape=(2, 8, 8)) -> pathlib.Path:
    np.save(path, np.random.default_rng(4).random(shape).astype(np.float32))
    return path


def write_npz(path: pathlib.Path) -> pathlib.Path:
    np.savez(path, np.ones((3, 3, 2, 4), np.float32), np.zeros(4, np.float32))
    return path


def corrupt(
    path: pathlib.Path, keep: int = 0, junk: bytes = b"this is not the format you are looking for"
) -> pathlib.Path:
    """Overwrites ``path`` with its first ``keep`` bytes followed by ``junk``."""
    data = path.read_bytes()[:keep]
    path.write_bytes(data + junk)
    return path


def truncate(path: pathlib.Path, fraction: float = 0.5) -> pathlib.Path:
    """Cuts ``path`` to ``fraction`` of its length."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    return path

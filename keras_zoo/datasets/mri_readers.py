"""Readers of MR images for CascadeNet: the Ascend port's HDF5, MATLAB .mat, .npy, NIfTI, DICOM, BART .cfl.

Every reader returns NumPy arrays. :func:`load_mr_images` picks the reader by extension and returns
complex64 images scaled so that each image's (or sequence's) maximum magnitude is 1, ready for
:func:`keras_zoo.datasets.mri.cascadenet_example`:
- 2D: (n, Nx, Ny) slices; a 3D array (Nx, Ny, n) from .mat / .cfl, a NIfTI volume (x, y, z) or a DICOM
  series is cut into its last-axis slices; an .npy / HDF5 stack (n, Nx, Ny) is taken as it is.
- dynamic: (n, frames, Nx, Ny) sequences; a (Nx, Ny, frames) array (the reference's ``cardiac.mat``
  ``seq``) is one sequence, (Nx, Ny, frames, n) is n of them; an .npy may also hold (n, frames, Nx, Ny).

The values are checked for meaning, not only shape: NaN/Inf, all-zero images and constant data are refused,
and so is k-space given where images are expected, whether a BART file shows coils (dimension 3) or ESPIRiT
maps (dimension 4), or the energy sits in a small box at the array's centre or corners as k-space's does
(an image spreads it over the object).
"""

from __future__ import annotations

import math
import os

import h5py
import numpy as np

from keras_zoo.datasets.mri import scale_to_unit_max
from keras_zoo.datasets.volumes import read_dicom_series, read_volume
from keras_zoo.errors import DataError, data_error, require_file

BART_COIL_DIM, BART_MAPS_DIM = 3, 4  # BART's COIL_DIM and MAPS_DIM
KSPACE_BOX = 0.1  # side of the box tested for k-space, as a fraction of each image axis (1 % of the area)
KSPACE_ENERGY = 0.25  # k-space: 58-95 % of the energy in that box; MR, CT, EM images and phantoms: 0-3.3 %
KSPACE_MIN_SIZE = 16  # smaller images are not tested (the box would be a pixel or two)
IMAGES_INSTEAD = "give images instead (the coil-combined inverse FFT, e.g. a fully-sampled reference image)"


def _cfl_stem(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    return path[:-4] if path.endswith((".cfl", ".hdr")) else path


def read_cfl(path: str | os.PathLike) -> np.ndarray:
    """Reads a BART ``.cfl``/``.hdr`` pair (raw little-endian complex64, column-major).

    Args:
        path: the stem, or the ``.cfl`` or ``.hdr`` file.

    Returns:
        complex64 array with the dimensions of the header (trailing singleton dimensions dropped).
    """
    stem = _cfl_stem(path)
    header = require_file(stem + ".hdr", "BART header")
    data = require_file(stem + ".cfl", "BART data file")
    try:
        with open(header) as f:
            lines = f.read().splitlines()
        dims = [int(d) for d in lines[1].split()]
    except (IndexError, ValueError):
        raise data_error(header, "not a BART header (expected '# Dimensions' and a line of sizes)") from None
    if not dims or min(dims) < 1:
        raise data_error(header, f"dimensions must be positive, got {dims}")
    count = math.prod(dims)  # exact: np.prod wraps around for huge sizes
    if os.path.getsize(data) != count * 8:
        raise data_error(data, f"holds {os.path.getsize(data)} bytes; the header {dims} needs {count * 8}")
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return np.fromfile(data, dtype="<c8").reshape(dims, order="F")


def write_cfl(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes ``array`` as a BART ``.cfl``/``.hdr`` pair (``path`` is the stem or either file)."""
    stem = _cfl_stem(path)
    array = np.asarray(array, dtype=np.complex64)
    with open(stem + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in array.shape) + "\n")
    array.reshape(-1, order="F").astype("<c8").tofile(stem + ".cfl")


def read_port_h5(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads the Ascend port's HDF5 layout: ``label`` (N, 256, 256) uint8 images and ``mask``.

    Returns:
        (images float32 (N, H, W) in the file's 0..255 scale, mask float32 (N, H, W) or None if absent).
    """
    path = require_file(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            if "label" not in f:
                raise data_error(path, f"no 'label' dataset (found {sorted(f.keys())})")
            images = np.asarray(f["label"], dtype=np.float32)
            mask = np.asarray(f["mask"], dtype=np.float32) if "mask" in f else None
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... for corrupt files
        raise data_error(path, f"not a readable HDF5 file ({err})") from None
    if images.ndim != 3:
        raise data_error(path, f"'label' must be (N, H, W), got shape {images.shape}")
    return images, mask


def _pick_key(path: str, keys: list[str], key: str | None) -> str:
    if key is not None:
        if key not in keys:
            raise data_error(path, f"no variable {key!r} (found {keys})")
        return key
    if len(keys) != 1:
        raise data_error(path, f"holds variables {keys}; choose one with key=")
    return keys[0]


def read_mat(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Reads one variable of a MATLAB file: scipy for v5 files, h5py for v7.3 (HDF5) files.

    Args:
        path: the ``.mat`` file.
        key: variable name (e.g. ``"seq"``); may be omitted when the file holds a single variable.

    Returns:
        The array in MATLAB's index order (v7.3 data is transposed back from HDF5's row-major layout;
        complex compound data becomes complex).
    """
    import scipy.io

    path = require_file(path, "MATLAB file")
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                keys = [k for k in f.keys() if not k.startswith("#")]
                data = np.asarray(f[_pick_key(path, keys, key)])
            if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
                data = data["real"] + 1j * data["imag"]
            return data.T
        contents = scipy.io.loadmat(path)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - scipy.io and h5py raise many types (zlib.error, ...) for corrupt files
        raise data_error(path, f"not a readable MATLAB file ({type(err).__name__}: {err})") from None
    keys = [k for k in contents if not k.startswith("__")]
    return np.asarray(contents[_pick_key(path, keys, key)])


def read_dicom_image(path: str | os.PathLike) -> np.ndarray:
    """Reads one DICOM file's pixels (rescaled) as float32 (rows, cols)."""
    import pydicom

    path = require_file(path, "DICOM file")
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(np.float32)
        return pixels * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for bad files
        problem = " ".join(str(exc).split())  # pydicom quotes raw bytes, newlines too
        raise data_error(path, f"cannot read DICOM pixels ({type(exc).__name__}: {problem})") from None


def _as_stack(path: str, array: np.ndarray, dynamic: bool, last_axis_stack: bool) -> np.ndarray:
    """Arranges a 2D/3D/4D array into (n, Nx, Ny) slices or (n, frames, Nx, Ny) sequences."""
    array = np.squeeze(array) if array.ndim > 2 else array
    if dynamic:
        if array.ndim == 3:
            # (Nx, Ny, frames) from .mat/.cfl, (frames, Nx, Ny) from .npy: one sequence
            return np.moveaxis(array, -1, 0)[None] if last_axis_stack else array[None]
        if array.ndim == 4:
            return array if not last_axis_stack else np.transpose(array, (3, 2, 0, 1))
        raise data_error(path, f"expected (Nx, Ny, frames[, n]) for dynamic data, got shape {array.shape}")
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        return np.moveaxis(array, -1, 0) if last_axis_stack else array
    raise data_error(path, f"expected 2D images or a 3D stack, got shape {array.shape}")


def single_coil_bart(path: str, array: np.ndarray, remedy: str) -> np.ndarray:
    """Returns a BART array (dims as in the header) after checking it holds one coil and one map.

    Args:
        path: the file, for messages.
        array: as :func:`read_cfl` returns it (x, y, z, coils, maps, time, ...).
        remedy: what to give instead of multi-coil data, ending the message.

    Raises:
        DataError: naming the file when BART dimension 3 (coils) or 4 (ESPIRiT maps) is larger than 1.
    """
    dims = list(array.shape)
    if len(dims) > BART_COIL_DIM and dims[BART_COIL_DIM] > 1:
        raise data_error(
            path,
            f"BART dims {dims} hold {dims[BART_COIL_DIM]} coils (dimension 3): multi-coil k-space or coil "
            f"images are not supported; {remedy}",
        )
    if len(dims) > BART_MAPS_DIM and dims[BART_MAPS_DIM] > 1:
        raise data_error(
            path,
            f"BART dims {dims} hold {dims[BART_MAPS_DIM]} ESPIRiT maps (dimension 4); give one map "
            "(bart slice 4 0 <input> <output>)",
        )
    return array


def _check_image_values(path: str, stack: np.ndarray, image_axes: int) -> None:
    """Refuses NaN/Inf values, all-zero images (PSNR -inf) and constant data in ``stack`` (n, *image).

    Raises:
        DataError: naming the file with the count of bad values or of all-zero images.
    """
    bad = stack.size - int(np.count_nonzero(np.isfinite(stack)))
    if bad:
        raise data_error(path, f"holds {bad} NaN or Inf values (of {stack.size})")
    peaks = np.abs(stack).max(axis=tuple(range(stack.ndim - image_axes, stack.ndim)))
    zero = np.flatnonzero(peaks.reshape(-1) == 0)
    if len(zero) == len(peaks.reshape(-1)):
        raise data_error(path, "every value is zero: no image to reconstruct")
    if len(zero):
        raise data_error(
            path,
            f"{len(zero)} of {peaks.size} images are all zero (the first is number {zero[0]}): "
            "nothing to reconstruct there (PSNR -inf); leave them out",
        )
    if np.all(stack == stack.flat[0]):
        raise data_error(path, f"every value is {stack.flat[0]}: constant images, nothing to learn")


def kspace_energy(stack: np.ndarray) -> tuple[float, float]:
    """Fractions of the total energy in a small box at the centre and at the corners of the images.

    Args:
        stack: real or complex array (..., Nx, Ny); the energy is summed over the leading axes.

    Returns:
        (centre, corners): the energy fraction in the central box and in the box that wraps around the
        corners, each ``KSPACE_BOX`` of every image axis (1 % of the area). Centred k-space has its DC
        sample in the centre, uncentred k-space in the corner; both hold most of their energy there.
    """
    magnitude = np.abs(stack.reshape(-1, *stack.shape[-2:])).astype(np.float64)
    energy = ((magnitude / max(magnitude.max(), np.finfo(np.float64).tiny)) ** 2).sum(axis=0)
    sides = [max(1, round(KSPACE_BOX * n)) for n in energy.shape]
    total = energy.sum()
    corners = np.roll(energy, [s // 2 for s in sides], axis=(0, 1))[: sides[0], : sides[1]].sum()
    centred = np.roll(energy, [s // 2 - n // 2 for s, n in zip(sides, energy.shape)], axis=(0, 1))
    return float(centred[: sides[0], : sides[1]].sum() / total), float(corners / total)


def _check_not_kspace(path: str, stack: np.ndarray) -> None:
    """Refuses a stack (..., Nx, Ny) whose energy sits in the centre or corners as k-space's does.

    Raises:
        DataError: naming the file, where the energy is, and what to give instead.
    """
    if min(stack.shape[-2:]) < KSPACE_MIN_SIZE:
        return
    centre, corners = kspace_energy(stack)
    if max(centre, corners) > KSPACE_ENERGY:
        where = "centre (centred k-space)" if centre >= corners else "corners (uncentred k-space)"
        raise data_error(
            path,
            f"looks like k-space, not images: {100 * max(centre, corners):.0f}% of the energy lies in a box "
            f"a tenth of each side wide at the {where}; {IMAGES_INSTEAD}",
        )


def load_mr_images(path: str | os.PathLike, key: str | None = None, dynamic: bool = False) -> np.ndarray:
    """Reads MR images from any supported file and scales each image (or sequence) to max magnitude 1.

    Args:
        path: ``.h5``/``.hdf5`` (Ascend port), ``.mat``, ``.npy``, ``.nii``/``.nii.gz``, ``.dcm`` or a DICOM
            folder, or a BART ``.cfl``/``.hdr``.
        key: variable of a ``.mat`` file.
        dynamic: return sequences (n, frames, Nx, Ny) instead of slices (n, Nx, Ny).

    Returns:
        complex64 (n, Nx, Ny) or (n, frames, Nx, Ny).

    Raises:
        DataError: naming the path for missing, unreadable or unsupported input, NaN/Inf values, all-zero
            images or constant data, and k-space (:func:`kspace_energy`) where images are expected.
    """
    path = os.fspath(path)
    lower = path.lower()
    if os.path.isdir(path):
        array, stack_last = read_dicom_series(path), True
    elif lower.endswith((".h5", ".hdf5")):
        array, stack_last = read_port_h5(path)[0], False
    elif lower.endswith(".mat"):
        array, stack_last = read_mat(path, key), True
    elif lower.endswith(".npy"):
        require_file(path, "NumPy file")
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - a damaged header raises ValueError, TokenError, EOFError, ...
            raise data_error(path, f"not a readable .npy array ({err})") from None
        stack_last = False
    elif lower.endswith((".nii", ".nii.gz")):
        array, stack_last = read_volume(path), True
    elif lower.endswith(".dcm"):
        array, stack_last = read_dicom_image(path), False
    elif lower.endswith((".cfl", ".hdr")):
        array, stack_last = (
            single_coil_bart(path, read_cfl(path), f"{IMAGES_INSTEAD}: bart fft -i, then bart rss 8"),
            True,
        )
    else:
        raise data_error(
            path, "unknown MR image format (expected .h5, .mat, .npy, .nii(.gz), .dcm, .cfl or a folder)"
        )
    if not np.issubdtype(np.asarray(array).dtype, np.number):
        raise DataError(f"{path}: holds {np.asarray(array).dtype} data, not images")
    stack = _as_stack(path, np.asarray(array), dynamic, stack_last)
    if stack.size == 0:
        raise data_error(path, f"holds no image data (shape {np.shape(array)})")
    image_axes = 3 if dynamic else 2
    _check_image_values(path, stack, image_axes)
    _check_not_kspace(path, stack)
    images = scale_to_unit_max(stack, image_axes=image_axes)
    if not np.isfinite(images).all():  # NaN/Inf in the file, or values beyond the complex64 range
        raise data_error(path, "holds NaN or Inf values (or values too large for complex64)")
    return images

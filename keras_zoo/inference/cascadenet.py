"""CascadeNet inference: reconstruct MR images from undersampled single-coil k-space, or from fully sampled
images undersampled here (retrospective simulation, as in training), with PSNR/SSIM/NMSE against a
reference.

Conventions are the network's (see :mod:`keras_zoo.datasets.mri`): orthonormal FFT, uncentred k-space and
masks (``centred=True`` inputs, e.g. BART's, are converted), slices (n, Nx, Ny) complex64.
k-space is scaled so that each zero-filled image has maximum magnitude 1 (the training scale) and the
reconstruction is scaled back to the input's units.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_zoo.datasets.mri import (
    MASKS,
    channels_to_complex,
    check_simulation,
    complex_to_channels,
    fft2,
    ifft2,
    undersample,
    zero_filled_peak,
)
from keras_zoo.datasets.mri_readers import read_cfl, single_coil_bart, write_cfl
from keras_zoo.errors import DataError, data_error, require_file
from keras_zoo.inference.common import with_input_size
from keras_zoo.io import atomic_path
from keras_zoo.metrics.reconstruction import complex_psnr, nmse, ssim

KSPACE_SUFFIXES = (".npy", ".cfl", ".hdr")
IMAGE_SUFFIXES = (".h5", ".hdf5", ".mat", ".npy", ".nii", ".nii.gz", ".dcm", ".cfl", ".hdr")


# what to give instead of multi-coil k-space
ONE_COIL = (
    "CascadeNet reconstructs single-coil data: combine the coils first (an image: bart fft -i 7, then bart rss 8; "
    "or k-space of one virtual coil: bart cc -p 1)"
)


def read_complex_stack(path: str | os.PathLike, what: str, allow_bool: bool = False) -> np.ndarray:
    """A complex array of slices (n, Nx, Ny) complex64 from ``.npy`` ((Nx, Ny) or (n, Nx, Ny)) or BART ``.cfl``
    ((Nx, Ny) or (Nx, Ny, n), BART's singleton dimensions dropped), in the file's own units.

    Args:
        path: the ``.npy`` file, or the BART ``.cfl``/``.hdr`` (dims x, y, z, coils, maps, time, ...).
        what: what the file is, for messages ("k-space file", "mask file", "reference").
        allow_bool: also accept a bool array (a sampling mask), read as 0 and 1.

    Raises:
        DataError: naming the file: unreadable, not numeric (nor bool where allowed), not 2D/3D (e.g.
            multi-coil k-space with a coil axis), a BART file with several coils (dimension 3) or ESPIRiT
            maps (dimension 4), or NaN/Inf values.
    """
    path = os.fspath(path)
    if path.lower().endswith((".cfl", ".hdr")):
        array, last_axis_stack = np.squeeze(single_coil_bart(path, read_cfl(path), ONE_COIL)), True
    elif path.lower().endswith(".npy"):
        require_file(path, what)
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - a damaged header raises ValueError, EOFError, ...
            raise data_error(path, f"not a readable .npy array ({err})") from None
        last_axis_stack = False
    else:
        raise data_error(path, f"unsupported {what} format (expected .npy or .cfl)")
    if not (np.issubdtype(array.dtype, np.number) or (allow_bool and array.dtype == np.bool_)):
        raise data_error(path, f"holds {array.dtype} data, not a {what}")
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and last_axis_stack:
        array = np.moveaxis(array, -1, 0)
    elif array.ndim != 3:
        raise data_error(path, f"expected single-coil (Nx, Ny) or (n, Nx, Ny) data, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise data_error(path, "holds NaN or Inf values")
    return array.astype(np.complex64)


def read_reference(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """The fully sampled reference images (n, Nx, Ny) complex64 of k-space slices of ``shape`` (n, Nx, Ny),
    read (:func:`read_complex_stack`) and checked before anything is reconstructed or written.

    Raises:
        DataError: naming the file when it is unreadable or its slices differ from the k-space's.
    """
    reference = read_complex_stack(path, "reference")
    if reference.shape != tuple(shape):
        raise data_error(
            path,
            f"reference {reference.shape} does not match the k-space's slices {tuple(shape)} (n, Nx, Ny); "
            "give one fully sampled image per slice",
        )
    return reference


def read_kspace(
    path: str | os.PathLike, mask_path: str | os.PathLike | None = None, centred: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Undersampled k-space and its sampling mask, both (n, Nx, Ny), uncentred.

    Args:
        path: ``.npy`` / ``.cfl`` complex k-space (zeros where not sampled).
        mask_path: ``.npy`` / ``.cfl`` mask of 0/1 numbers or bools, broadcastable to the k-space
            (n, Nx, Ny); default: the non-zero samples.
        centred: the files have the k-space centre in the middle (BART's centred FFT of an image that is
            not shifted); they become the uncentred k-space of the same image.

    Returns:
        (kspace complex64, mask float32).
    """
    kspace = read_complex_stack(path, "k-space file")
    if mask_path is None:
        mask = (np.abs(kspace) > 0).astype(np.float32)
    else:
        mask = np.abs(read_complex_stack(mask_path, "mask file", allow_bool=True)).astype(np.float32)
        try:
            mask = np.broadcast_to(mask, kspace.shape).astype(np.float32)
        except ValueError:
            raise data_error(
                mask_path, f"mask {mask.shape} does not fit the k-space {kspace.shape}"
            ) from None
        if not np.isin(mask, (0.0, 1.0)).all():
            raise data_error(mask_path, "a sampling mask must hold only 0 and 1")
    kspace = kspace * mask
    if centred:  # the same image's uncentred k-space: a phase ramp on the ifftshift-ed samples
        kspace = fft2(ifft2(kspace, centred=True)).astype(np.complex64)
        mask = np.fft.ifftshift(mask, axes=(-2, -1))
    return kspace, mask


def kspace_inputs(
    kspace: np.ndarray, mask: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Network inputs of uncentred k-space and mask (n, Nx, Ny), scaled to zero-filled max magnitude 1.

    Returns:
        ((image, kspace, mask) each float32 (n, Nx, Ny, 2), scale (n,) float32 to multiply outputs by).
    """
    scale = zero_filled_peak(ifft2(kspace))
    kspace = kspace / scale[:, None, None]
    mask2 = np.repeat(mask[..., None], 2, axis=-1).astype(np.float32)
    return (complex_to_channels(ifft2(kspace)), complex_to_channels(kspace), mask2), scale


def image_inputs(
    images: np.ndarray,
    mask: np.ndarray | None = None,
    acceleration: float = 4.0,
    centre_lines: int = 8,
    seed: int = 0,
    normalise: str = "none",
    mask_kind: str = "cartesian",
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Network inputs of images (n, Nx, Ny) undersampled with ``mask`` (uncentred, broadcastable), or with
    seeded Cartesian masks of ``mask_kind`` density at ``acceleration`` with ``centre_lines`` (as training
    simulates).

    Args:
        normalise: the scale the model was trained with (the ``--normalise`` of its run): "none" keeps the
            images as given (scaled to max magnitude 1), "zero_filled" scales every slice to zero-filled max
            magnitude 1, as :func:`kspace_inputs` does.
        mask_kind: the line density of simulated masks (the ``--mask`` of its run): "cartesian" (variable
            density) or "uniform".

    Returns:
        ((image, kspace, mask) each float32 (n, Nx, Ny, 2), scale (n,) float32 to multiply outputs by).
    """
    check_simulation(mask_kind, normalise)
    images = np.asarray(images, np.complex64)
    if mask is None:
        mask = MASKS[mask_kind](
            images.shape, acceleration, centre_lines, centred=False, rng=np.random.default_rng(seed)
        )
    mask = np.broadcast_to(mask, images.shape).astype(np.float32)
    zero_filled, kspace = undersample(images, mask)
    if normalise == "zero_filled":
        return kspace_inputs(kspace, mask)
    mask2 = np.repeat(mask[..., None], 2, axis=-1).astype(np.float32)
    inputs = complex_to_channels(zero_filled), complex_to_channels(kspace), mask2
    return inputs, np.ones(len(images), np.float32)


def reconstruct(model: keras.Model, inputs, batch_size: int = 1) -> np.ndarray:
    """Reconstructions (n, Nx, Ny) complex64 of 2D inputs (image, kspace, mask) each (n, Nx, Ny, 2).

    The network is rebuilt at the slices' size when its input size differs (it is fully convolutional).
    """
    net = with_input_size(model, inputs[0].shape[1:3])
    output = net.predict(list(inputs), batch_size=batch_size, verbose=0)
    return channels_to_complex(output)


def slice_metrics(reference: np.ndarray, reconstruction: np.ndarray, zero_filled: np.ndarray) -> list[dict]:
    """Per slice: ``psnr``, ``ssim``, ``nmse`` of the reconstruction and ``*_zero_filled`` of the input,
    against the reference (all (n, Nx, Ny); PSNR with the peak from the reference, as the paper)."""
    if reference.shape != reconstruction.shape:
        raise DataError(
            f"reference {reference.shape} does not match the reconstruction {reconstruction.shape}"
        )
    rows = []
    for ref, rec, zf in zip(reference, reconstruction, zero_filled):
        rows.append(
            {
                "psnr": complex_psnr(ref, rec),
                "ssim": ssim(ref, rec),
                "nmse": nmse(ref, rec),
                "psnr_zero_filled": complex_psnr(ref, zf),
                "ssim_zero_filled": ssim(ref, zf),
                "nmse_zero_filled": nmse(ref, zf),
            }
        )
    return rows


def output_paths(stem: str, n: int, cfl: bool) -> list[str]:
    """``<stem>.npy``, ``<stem>.cfl``/``.hdr`` when ``cfl``, and one magnitude PNG per slice
    (``<stem>.png``, or ``<stem>_<i>.png`` for several)."""
    paths = [f"{stem}.npy"] + ([f"{stem}.cfl", f"{stem}.hdr"] if cfl else [])
    return paths + ([f"{stem}.png"] if n == 1 else [f"{stem}_{i}.png" for i in range(n)])


def write_reconstruction(reconstruction: np.ndarray, stem: str, cfl: bool) -> list[str]:
    """Writes :func:`output_paths`: the complex64 slices (n, Nx, Ny) as ``.npy``, as BART ``.cfl`` (Nx, Ny, n),
    and 8-bit magnitude PNGs scaled to each slice's maximum."""
    from PIL import Image

    paths = output_paths(stem, len(reconstruction), cfl)
    with atomic_path(paths[0]) as tmp, open(tmp, "wb") as f:
        np.save(f, reconstruction.astype(np.complex64))
    if cfl:
        write_cfl(stem, np.moveaxis(reconstruction, 0, -1))
    for path, image in zip(paths[3 if cfl else 1 :], reconstruction):
        magnitude = np.abs(image)
        peak = magnitude.max() or 1.0
        with atomic_path(path) as tmp:
            Image.fromarray(np.round(magnitude / peak * 255).astype(np.uint8)).save(tmp, format="PNG")
    return paths


def evaluate_images(
    model: keras.Model,
    images: np.ndarray,
    acceleration: float = 4.0,
    centre_lines: int = 8,
    seed: int = 0,
    batch_size: int = 1,
    normalise: str = "none",
    mask_kind: str = "cartesian",
) -> tuple[dict[str, float], list[dict]]:
    """PSNR/SSIM/NMSE per slice of images (n, Nx, Ny) scaled to max 1, undersampled with seeded masks; the
    masks and the scale are those of a run made with ``normalise`` and ``mask_kind`` (:func:`image_inputs`).

    Returns:
        (the mean of every column of the rows plus ``psnr_gain`` and ``slices``, one row per slice as
        :func:`slice_metrics` with its ``slice`` index).
    """
    inputs, scale = image_inputs(images, None, acceleration, centre_lines, seed, normalise, mask_kind)
    reconstruction = reconstruct(model, inputs, batch_size) * scale[:, None, None]
    rows = slice_metrics(images, reconstruction, channels_to_complex(inputs[0]) * scale[:, None, None])
    summary = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    summary["psnr_gain"] = summary["psnr"] - summary["psnr_zero_filled"]
    return {**summary, "slices": len(rows)}, [{"slice": i, **row} for i, row in enumerate(rows)]

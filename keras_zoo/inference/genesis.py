"""Models Genesis inference on whole CT/MR volumes: the reference HU window, overlapping windows of the
training cube size blended with a Gaussian, and NIfTI output on the input's grid.

What a checkpoint writes depends on its head (:func:`genesis_kind`): a pretraining network restores the
volume (float32 in [0, 1]), a segmenter labels it (uint8 class ids), a classifier gives one probability
vector per volume (the mean over its windows).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np

from keras_zoo.datasets.volumes import hu_window, read_volume
from keras_zoo.errors import data_error
from keras_zoo.inference.sliding import sliding_window_predict, window_corners
from keras_zoo.io import atomic_path

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mhd", ".mha")
ANY_SIZE_MULTIPLE = 16  # a window for a model without a fixed size: the volume rounded up to this


def genesis_kind(model: keras.Model) -> str:
    """``"classify"`` (output (batch, classes)), ``"segment"`` (a genesis_segmenter) or ``"restore"``."""
    if len(model.outputs[0].shape) == 2:
        return "classify"
    return "segment" if model.name.startswith("genesis_segmenter") else "restore"


def read_volume_with_affine(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A volume as :func:`keras_zoo.datasets.volumes.read_volume` returns it, with its file's grid.

    Returns:
        (volume (x, y, z) float32, NIfTI in RAS orientation; the file's 4x4 affine (NIfTI: its own; MetaImage:
        from spacing, origin and direction, LPS to RAS; a DICOM folder: identity); the orientation transform
        from the RAS array back to the file's axes (NIfTI only, else None), for :func:`to_file_axes`).
    """
    path = os.fspath(path)
    volume = read_volume(path)
    lower = path.lower()
    back = None
    if lower.endswith((".nii", ".nii.gz")):
        import nibabel
        from nibabel import orientations

        affine = nibabel.load(path).affine
        back = orientations.ornt_transform(
            orientations.axcodes2ornt("RAS"), orientations.io_orientation(affine)
        )
    elif lower.endswith((".mhd", ".mha")):
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        direction = np.asarray(reader.GetDirection(), np.float64).reshape(3, 3)
        affine = np.eye(4)
        affine[:3, :3] = direction * np.asarray(reader.GetSpacing())[None, :]
        affine[:3, 3] = reader.GetOrigin()
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    else:
        affine = np.eye(4)
    return volume, np.asarray(affine, np.float64), back


def to_file_axes(array: np.ndarray, back: np.ndarray | None) -> np.ndarray:
    """An array (x, y, z, ...) on the RAS grid of :func:`read_volume_with_affine` put back on the file's axes."""
    if back is None:
        return array
    from nibabel import orientations

    return np.ascontiguousarray(orientations.apply_orientation(array, back))


def window_of(model: keras.Model, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The sliding window: the model's fixed input size, or for a model of any size the whole volume
    rounded up to a multiple of 16 (one window)."""
    spatial = tuple(model.inputs[0].shape[1:4])
    if None not in spatial:
        return spatial
    return tuple(-(-int(s) // ANY_SIZE_MULTIPLE) * ANY_SIZE_MULTIPLE for s in shape)


def predict_volume(
    model: keras.Model, volume: np.ndarray, overlap: float = 0.5, batch_size: int = 4
) -> np.ndarray:
    """Per-voxel outputs (x, y, z, classes) float32 of a windowed volume (x, y, z) in [0, 1].

    Windows of the model's input size overlap by ``overlap`` and are blended with a Gaussian (see
    :func:`keras_zoo.inference.sliding.sliding_window_predict`); a volume of exactly one window is a single
    call of the model.
    """
    window = window_of(model, volume.shape[:3])
    return sliding_window_predict(model, volume, window, overlap, "gaussian", batch_size)


def classify_volume(
    model: keras.Model, volume: np.ndarray, overlap: float = 0.5, batch_size: int = 4
) -> np.ndarray:
    """Class probabilities (classes,) of a volume (x, y, z) in [0, 1]: the mean over its windows.

    The volume is zero-padded up to the window where smaller.
    """
    window = window_of(model, volume.shape[:3])
    padded = np.pad(volume, [(0, max(0, w - s)) for s, w in zip(volume.shape, window)])
    corners = window_corners(padded.shape, window, overlap)
    outputs = []
    for first in range(0, len(corners), batch_size):
        patches = np.stack(
            [
                padded[a : a + window[0], b : b + window[1], c : c + window[2]]
                for a, b, c in corners[first : first + batch_size]
            ]
        )[..., None]
        outputs.append(keras.ops.convert_to_numpy(model(patches, training=False)))
    return np.concatenate(outputs).mean(axis=0).astype(np.float32)


def to_labels(probabilities: np.ndarray) -> np.ndarray:
    """uint8 class ids (x, y, z) of (x, y, z, classes) probabilities: > 0.5 for one sigmoid class, else argmax."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.uint8)
    return probabilities.argmax(-1).astype(np.uint8)


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str) -> None:
    """Writes ``array`` (x, y, z) as NIfTI with ``affine`` (qform and sform)."""
    import nibabel

    image = nibabel.Nifti1Image(np.asarray(array), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    suffix = ".nii.gz" if path.endswith(".gz") else ".nii"
    with atomic_path(path) as tmp:
        nibabel.save(image, tmp + suffix)
        os.replace(tmp + suffix, tmp)


def window_volume(path: str, modality: str = "ct") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`read_volume_with_affine` with the volume mapped to [0, 1] by the reference's intensity window
    (CT: HU [-1000, 1000]; MR: [0, 4000])."""
    volume, affine, back = read_volume_with_affine(path)
    if min(volume.shape) < 1:
        raise data_error(path, f"empty volume {volume.shape}")
    return hu_window(volume, modality), affine, back


def evaluate_cubes(
    model: keras.Model,
    cubes: np.ndarray,
    seed: int = 0,
    batch_size: int = 4,
    names: Sequence[str] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Restoration MSE of a pretraining network on cubes (n, rows, cols, depth) in [0, 1].

    Each cube is transformed as in pretraining (deterministic for ``seed``, as training's validation pairs)
    and restored by the model.

    Returns:
        (``mse`` restored vs original and ``corrupted_mse`` transformed vs original over all cubes, plus
        ``cubes``; one row per cube with its ``cube`` (its name in ``names``, else its index) and both errors).
    """
    from keras_zoo.datasets.genesis import fixed_pairs
    from keras_zoo.inference.common import with_input_size

    transformed, original = fixed_pairs(cubes, seed)
    net = with_input_size(model, cubes.shape[1:4])
    restored = net.predict(transformed, batch_size=batch_size, verbose=0)
    axes = tuple(range(1, restored.ndim))
    mse = np.mean((restored - original) ** 2, axis=axes)
    corrupted = np.mean((transformed - original) ** 2, axis=axes)
    rows = [
        {"cube": names[i] if names is not None else i, "mse": float(m), "corrupted_mse": float(c)}
        for i, (m, c) in enumerate(zip(mse, corrupted))
    ]
    summary = {"mse": float(mse.mean()), "corrupted_mse": float(corrupted.mean()), "cubes": len(rows)}
    return summary, rows

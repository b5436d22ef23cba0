"""3D volumes for Models Genesis: readers (NIfTI, DICOM series, MetaImage), HU windows, cube extraction,
the reference cube files ``bat_<N>_s_64x64x32_<fold>.npy`` and a seeded synthetic CT generator.

Volumes are float32 arrays indexed (x, y, z) = (rows, cols, depth), as the reference's generator
transposes them; intensities are HU for CT. Cubes are (n, rows, cols, depth) float32 in [0, 1].
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from keras_zoo.errors import ConfigError, DataError, data_error, require_dir, require_file
from keras_zoo.io import atomic_path

log = logging.getLogger(__name__)

WINDOWS = {"ct": (-1000.0, 1000.0), "mr": (0.0, 4000.0)}
CUBE_FILE = re.compile(r"^bat_(\d+)(_s)?_(\d+)x(\d+)x(\d+)_(\d+)\.npy$")


# ----------------------------------------------------------------------------------------------- readers
def check_volume(volume: np.ndarray, path: str | os.PathLike, allow_constant: bool = False) -> np.ndarray:
    """Returns ``volume`` (any shape) after checking that its voxels are finite and not all the same.

    Args:
        volume: the voxels read from ``path``.
        path: the file or folder, for messages.
        allow_constant: accept a constant volume (an empty label map is one).

    Raises:
        DataError: naming ``path`` and the count of NaN/Inf voxels, or saying the volume is all zero or
            constant (nothing to learn; its PSNR is -inf).
    """
    bad = volume.size - int(np.count_nonzero(np.isfinite(volume)))
    if bad:
        raise data_error(path, f"holds {bad} NaN or Inf voxels (of {volume.size})")
    if allow_constant or volume.size == 0:
        return volume
    low, high = volume.min(), volume.max()
    if low == high:
        what = "all zero" if low == 0 else f"constant (every voxel {float(low):g})"
        raise data_error(path, f"the volume is {what}: nothing to learn")
    return volume


def read_volume(path: str | os.PathLike, allow_constant: bool = False) -> np.ndarray:
    """Reads a 3D volume as float32 (x, y, z): NIfTI, MetaImage (``.mhd``/``.mha``), ``.npy`` or a DICOM
    folder.

    NIfTI is reoriented to RAS (closest canonical) with its scaling applied; DICOM slices are sorted along
    the slice normal and mapped to HU with RescaleSlope/RescaleIntercept; a ``.npy`` holds (x, y, z).

    Args:
        path: the file, or a DICOM folder (see :func:`read_dicom_series`).
        allow_constant: accept a constant volume (an empty label map); see :func:`check_volume`.

    Raises:
        DataError: missing, unreadable or non-3D input, NaN/Inf voxels, or (unless ``allow_constant``) a
            constant or all-zero volume, naming the path.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return read_dicom_series(path, allow_constant)
    require_file(path, "volume")
    lower = path.lower()
    try:
        if lower.endswith((".nii", ".nii.gz")):
            import nibabel

            image = nibabel.as_closest_canonical(nibabel.load(path))
            volume = np.asarray(image.get_fdata(dtype=np.float32))
        elif lower.endswith((".mhd", ".mha")):
            import SimpleITK as sitk

            volume = sitk.GetArrayFromImage(sitk.ReadImage(path)).astype(np.float32).transpose(2, 1, 0)
        elif lower.endswith(".npy"):
            volume = _read_npy_volume(path)
        else:
            raise data_error(
                path, "unknown volume format (expected .nii, .nii.gz, .mhd, .mha, .npy or a DICOM folder)"
            )
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel/SimpleITK raise many types for corrupt files
        problem = " ".join(str(exc).split())  # nibabel's messages span lines
        raise data_error(path, f"cannot read volume ({type(exc).__name__}: {problem})") from None
    if volume.ndim == 4 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise data_error(path, f"expected a 3D volume, got shape {volume.shape}")
    return check_volume(volume, path, allow_constant)


def _read_npy_volume(path: str) -> np.ndarray:
    """A numeric ``.npy`` array as float32 (no pickles)."""
    array = np.load(path, allow_pickle=False)
    if array.dtype.kind not in "biuf":
        raise data_error(path, f"holds {array.dtype} data, not voxel values")
    return array.astype(np.float32)


def _describe_series(uid: str, slices: list) -> str:
    """``<uid> (<n> slices, #<SeriesNumber> '<SeriesDescription>')`` for messages."""
    first = slices[0]
    number = getattr(first, "SeriesNumber", None)
    description = str(getattr(first, "SeriesDescription", "")).strip()
    details = [f"{len(slices)} slices"]
    if number is not None:
        details.append(f"#{number}")
    if description:
        details.append(repr(description))
    return f"{uid or 'no SeriesInstanceUID'} ({', '.join(details)})"


def _one_series(folder: str, slices: list) -> list:
    """The slices of the series with the most slices (logged with the others); slices without a
    SeriesInstanceUID form one series.

    Raises:
        DataError: naming the folder and listing the series when two or more share the largest count.
    """
    series: dict[str, list] = {}
    for ds in slices:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append(ds)
    if len(series) == 1:
        return slices
    ranked = sorted(series.items(), key=lambda item: -len(item[1]))
    listed = "; ".join(_describe_series(uid, members) for uid, members in ranked)
    if len(ranked[1][1]) == len(ranked[0][1]):
        raise data_error(
            folder,
            f"holds {len(series)} DICOM series and no largest one: {listed}; put one series per folder",
        )
    log.warning(
        "%s: holds %d DICOM series; reading the largest, %s, and ignoring %s",
        folder,
        len(series),
        _describe_series(*ranked[0]),
        "; ".join(_describe_series(uid, members) for uid, members in ranked[1:]),
    )
    return ranked[0][1]


def read_dicom_series(folder: str | os.PathLike, allow_constant: bool = False) -> np.ndarray:
    """Reads the DICOM files of one series in ``folder`` into HU (x, y, z), slices sorted by position.

    A folder holding several series (different SeriesInstanceUID) is never merged: the series with the
    most slices is read and the choice logged, or, when two or more series tie, a DataError lists them.

    Args:
        folder: the DICOM folder (files that are not DICOM, such as a README, are skipped).
        allow_constant: accept a constant volume; see :func:`check_volume`.

    Raises:
        DataError: naming the folder or file for unreadable slices, no pixel data, tied series, slices
            that do not stack, NaN/Inf voxels or (unless ``allow_constant``) a constant volume.
    """
    import pydicom

    folder = require_dir(folder, "DICOM folder")
    slices = []
    for name in sorted(os.listdir(folder)):
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            continue
        try:
            ds = pydicom.dcmread(file)
        except pydicom.errors.InvalidDicomError:
            continue  # not DICOM (e.g. a README beside the slices)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for a damaged slice
            problem = " ".join(str(exc).split())  # pydicom quotes raw bytes, newlines too
            raise data_error(file, f"cannot read DICOM ({type(exc).__name__}: {problem})") from None
        if "PixelData" in ds:
            slices.append(ds)
    if not slices:
        raise data_error(folder, "no DICOM slices with pixel data")
    slices = _one_series(folder, slices)

    def position(ds) -> float:
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
            normal = np.cross(orientation[:3], orientation[3:])
            return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)))
        return float(getattr(ds, "InstanceNumber", 0))

    try:
        slices.sort(key=position)
    except Exception as exc:  # noqa: BLE001 - damaged position or instance number values
        problem = " ".join(str(exc).split())  # pydicom quotes raw bytes, newlines too
        raise data_error(folder, f"cannot order DICOM slices ({type(exc).__name__}: {problem})") from None
    try:
        planes = [
            ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1.0))
            + float(getattr(ds, "RescaleIntercept", 0.0))
            for ds in slices
        ]
        volume = np.stack(planes, axis=-1)  # (rows=y, cols=x, z)
    except Exception as exc:  # noqa: BLE001 - pixel decoding errors come in many types
        problem = " ".join(str(exc).split())  # pydicom quotes raw bytes, newlines too
        raise data_error(folder, f"cannot decode DICOM pixels ({type(exc).__name__}: {problem})") from None
    return check_volume(np.ascontiguousarray(volume.transpose(1, 0, 2)), folder, allow_constant)


def hu_window(
    volume: np.ndarray, modality: str = "ct", window: tuple[float, float] | None = None
) -> np.ndarray:
    """Clips to a window and maps it linearly to [0, 1] (CT [-1000, 1000] HU, MR [0, 4000] by default)."""
    if window is None:
        if modality not in WINDOWS:
            raise ValueError(f"modality must be one of {sorted(WINDOWS)}, got {modality!r}")
        window = WINDOWS[modality]
    low, high = float(window[0]), float(window[1])
    if high <= low:
        raise ValueError(f"window must be (low, high) with low < high, got {window}")
    return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)


# ------------------------------------------------------------------------------------------ cube extraction
def lung_score(crop: np.ndarray, depth: int, threshold: float, look_ahead: int = 3) -> float:
    """The reference's "lung_max" statistic of a crop (rows, cols, depth + look_ahead) in [0, 1] units.

    For each voxel of the first ``depth`` slices, k is the first of the next ``look_ahead`` slices whose value
    reaches ``threshold``; the voxel scores 1 - k / (look_ahead - 1), 0 when none does. Returns the mean score.
    """
    stack = np.stack([crop[:, :, k : k + depth] >= threshold for k in range(look_ahead)])
    reached = stack.any(axis=0)
    first = np.argmax(stack, axis=0)
    score = np.where(reached, 1.0 - first / max(look_ahead - 1, 1), 0.0)
    return float(score.mean())


def extract_cubes(
    volume: np.ndarray,
    count: int,
    rng: np.random.Generator,
    cube_shape: Sequence[int] = (64, 64, 32),
    border: Sequence[int] = (0, 0, 0),
    lung_max: float | None = None,
    hu_threshold: float = -150.0,
    window: tuple[float, float] = WINDOWS["ct"],
    max_tries_per_cube: int = 50,
) -> np.ndarray:
    """Random cubes from a volume already windowed to [0, 1] (:func:`hu_window`).

    Args:
        volume: (x, y, z) in [0, 1].
        count: cubes wanted (the reference's "scale", 32).
        rng: random generator for the corners.
        cube_shape: (rows, cols, depth) of a cube.
        border: voxels kept clear of each side per axis (reference: 100, 100, 30 for LUNA16 scans).
        lung_max: reject crops whose :func:`lung_score` exceeds this (reference 0.15); None keeps all.
        hu_threshold: HU of the lung rule (-150), converted with ``window``.
        window: the HU window the volume was normalised with.
        max_tries_per_cube: give up after ``count * max_tries_per_cube`` draws (fewer cubes are returned).

    Returns:
        (n, rows, cols, depth) float32 with n <= count (n == count unless the lung rule rejected too many).

    Raises:
        ValueError: the volume is too small for a cube within the border.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be (x, y, z), got shape {volume.shape}")
    look_ahead = 3 if lung_max is not None else 0
    crop = np.array(cube_shape) + np.array([0, 0, look_ahead])
    room = np.array(volume.shape) - crop - 2 * np.array(border)
    if np.any(room < 0):
        raise ValueError(
            f"volume {volume.shape} too small for cubes {tuple(cube_shape)} (+{look_ahead} slices) "
            f"with border {tuple(border)}"
        )
    threshold = (hu_threshold - window[0]) / (window[1] - window[0])
    cubes = []
    for _ in range(count * max_tries_per_cube):
        corner = np.array(border) + (rng.random(3) * (room + 1)).astype(int)
        window_slices = tuple(slice(c, c + s) for c, s in zip(corner, crop))
        piece = volume[window_slices]
        if lung_max is not None and lung_score(piece, cube_shape[2], threshold, look_ahead) > lung_max:
            continue
        cubes.append(piece[:, :, : cube_shape[2]])
        if len(cubes) == count:
            break
    if len(cubes) < count:
        log.warning("only %d of %d cubes passed the lung rule (lung_max=%s)", len(cubes), count, lung_max)
    return np.asarray(cubes, dtype=np.float32).reshape(-1, *cube_shape)


def extract_paired_cubes(
    volume: np.ndarray,
    label: np.ndarray,
    count: int,
    rng: np.random.Generator,
    cube_shape: Sequence[int] = (64, 64, 32),
) -> tuple[np.ndarray, np.ndarray]:
    """Random cubes at the same corners of a volume and its label map (both (x, y, z)).

    Returns:
        (images, labels): (count, rows, cols, depth) float32 each.
    """
    if volume.shape != label.shape:
        raise ValueError(f"volume {volume.shape} and label {label.shape} differ in shape")
    room = np.array(volume.shape) - np.array(cube_shape)
    if np.any(room < 0):
        raise ValueError(f"volume {volume.shape} too small for cubes {tuple(cube_shape)}")
    corners = (rng.random((count, 3)) * (room + 1)).astype(int)
    boxes = [tuple(slice(c, c + s) for c, s in zip(corner, cube_shape)) for corner in corners]
    images = np.stack([volume[box] for box in boxes]).astype(np.float32)
    return images, np.stack([label[box] for box in boxes]).astype(np.float32)


# ------------------------------------------------------------------------------------------ cube files
def cube_file_name(
    scale: int, fold: int, cube_shape: Sequence[int] = (64, 64, 32), trainer_naming: bool = True
) -> str:
    """``bat_<scale>_s_64x64x32_<fold>.npy`` (the trainer's name) or without ``_s`` (the generator's)."""
    dims = "x".join(str(int(d)) for d in cube_shape)
    return f"bat_{scale}{'_s' if trainer_naming else ''}_{dims}_{fold}.npy"


def write_cube_file(
    cubes: np.ndarray, output_dir: str | os.PathLike, scale: int, fold: int, trainer_naming: bool = True
) -> str:
    """Writes cubes (n, rows, cols, depth) in [0, 1] as the reference's ``.npy`` fold file; returns its path.

    Raises:
        ValueError: the cubes are not 4D or hold NaN/Inf (nothing is written).
    """
    cubes = _finite_cubes(cubes)
    path = os.path.join(os.fspath(output_dir), cube_file_name(scale, fold, cubes.shape[1:], trainer_naming))
    with atomic_path(path) as tmp:
        _save_cubes(cubes, tmp)
    return path


def _finite_cubes(cubes: np.ndarray) -> np.ndarray:
    """Returns ``cubes`` after checking they are (n, rows, cols, depth) and finite (raises ValueError)."""
    if cubes.ndim != 4:
        raise ValueError(f"cubes must be (n, rows, cols, depth), got shape {cubes.shape}")
    if not np.isfinite(cubes).all():
        raise ValueError(f"cubes hold {int(np.count_nonzero(~np.isfinite(cubes)))} NaN or Inf values")
    return cubes


def _save_cubes(cubes: np.ndarray, path: str) -> None:
    """Saves cubes (n, rows, cols, depth) as float32 ``.npy`` at ``path``."""
    with open(path, "wb") as f:
        np.save(f, cubes.astype(np.float32), allow_pickle=False)


def find_cube_files(data_dir: str | os.PathLike) -> dict[int, list[pathlib.Path]]:
    """Fold number -> cube files in ``data_dir`` and its ``bat_*`` subfolders, both naming styles."""
    root = pathlib.Path(require_dir(data_dir, "cube folder"))
    files: dict[int, list[pathlib.Path]] = {}
    for path in sorted([*root.glob("bat_*.npy"), *root.glob("bat_*/bat_*.npy")]):
        match = CUBE_FILE.match(path.name)
        if match:
            files.setdefault(int(match.group(6)), []).append(path)
    return files


def read_cube_file(path: str | os.PathLike) -> np.ndarray:
    """Loads one fold file (n, rows, cols, depth) as float32, checking its shape and [0, 1] range."""
    path = require_file(path, "cube file")
    try:
        cubes = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a damaged header raises ValueError, TokenError, EOFError, ...
        raise data_error(path, f"not a readable .npy array ({exc})") from None
    if cubes.ndim != 4 or 0 in cubes.shape[1:]:
        raise data_error(path, f"expected cubes (n, rows, cols, depth), got shape {cubes.shape}")
    return check_unit_range(cubes.astype(np.float32, copy=False), path)


def check_unit_range(values: np.ndarray, path: str | os.PathLike, hint: str = "") -> np.ndarray:
    """Returns ``values`` after checking that they are finite and in [0, 1] (windowed intensities, as the
    network expects; 1e-6 of rounding allowed).

    Raises:
        DataError: naming ``path`` and the range found, followed by ``hint``.
    """
    if values.size and not (np.isfinite(values).all() and values.min() >= -1e-6 and values.max() <= 1 + 1e-6):
        raise data_error(
            path, f"values must be in [0, 1], got [{values.min():.3g}, {values.max():.3g}]{hint}"
        )
    return values


def read_cube_folds(data_dir: str | os.PathLike, folds: Iterable[int]) -> np.ndarray:
    """Concatenates the cube files of ``folds`` found in ``data_dir`` (n, rows, cols, depth)."""
    return read_named_cube_folds(data_dir, folds)[0]


def read_named_cube_folds(data_dir: str | os.PathLike, folds: Iterable[int]) -> tuple[np.ndarray, list[str]]:
    """:func:`read_cube_folds` and a name per cube, ``FILE[i]``: its cube file and its place there."""
    available = find_cube_files(data_dir)
    folds = list(folds)
    missing = [f for f in folds if f not in available]
    if missing:
        raise data_error(
            data_dir, f"no bat_<N>_[s_]RxCxD_<fold>.npy file for folds {missing} (found {sorted(available)})"
        )
    paths = [p for f in folds for p in available[f]]
    arrays = [read_cube_file(p) for p in paths]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise data_error(data_dir, f"cube files of folds {folds} have different cube shapes {sorted(shapes)}")
    names = [f"{p.name}[{i}]" for p, a in zip(paths, arrays) for i in range(len(a))]
    return np.concatenate(arrays), names


def prepare_genesis(
    volumes: Sequence[str | os.PathLike] | Mapping[int, Sequence[str | os.PathLike]],
    output_dir: str | os.PathLike,
    scale: int = 32,
    folds: Sequence[int] = tuple(range(10)),
    modality: str = "ct",
    cube_shape: Sequence[int] = (64, 64, 32),
    border: Sequence[int] = (0, 0, 0),
    lung_max: float | None = None,
    seed: int = 1,
    trainer_naming: bool = True,
    overwrite: bool = False,
) -> list[str]:
    """Cuts cubes from volumes into the reference's fold files (the ``keras-zoo prepare genesis`` step).

    Args:
        volumes: volume paths (NIfTI, ``.mhd``/``.mha``, ``.npy``, DICOM folders) dealt to ``folds`` in turn (volume i goes to
            ``folds[i % len(folds)]``, like one LUNA16 subset per fold), or an explicit {fold: [paths]}.
        output_dir: folder receiving ``bat_<scale>_s_<R>x<C>x<D>_<fold>.npy``.
        scale: cubes per volume (32 in the reference).
        folds: fold numbers used for a sequence of volumes.
        modality: ``"ct"`` (HU window [-1000, 1000]) or ``"mr"`` ([0, 4000]).
        cube_shape, border, lung_max: see :func:`extract_cubes` (reference: border (100, 100, 30), lung_max
            0.15 on LUNA16; off by default so that small volumes work).
        seed: random seed (1 in the reference).
        trainer_naming: write ``bat_N_s_...`` (True) or the generator's ``bat_N_...``.
        overwrite: replace cube files of the same names already in ``output_dir``; without it an existing
            file of a name this run would write is refused before anything is cut. Other files are never
            touched.

    Returns:
        Paths of the files written, one per fold that received cubes.

    Raises:
        DataError: naming the volume that is missing, unreadable, holds NaN/Inf voxels, is constant or is
            too small for a cube; then no file is written (a folder created for ``output_dir`` is removed).
        ConfigError: ``scale`` < 1, a negative fold, ``lung_max`` outside (0, 1], ``output_dir`` is a file,
            or a cube file of a name this run writes exists and not ``overwrite``.
    """
    if scale < 1:
        raise ConfigError(f"--scale must be >= 1 (cubes per volume), got {scale}")
    if lung_max is not None and not 0 < lung_max <= 1:
        raise ConfigError(f"--lung-max must be a fraction in (0, 1] (reference 0.15), got {lung_max}")
    if any(int(b) < 0 for b in border):
        raise ConfigError(f"--border must be >= 0 voxels, got {' '.join(str(b) for b in border)}")
    output_dir = os.fspath(output_dir)
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"{output_dir}: is a file, not a folder; choose another --output")
    if isinstance(volumes, Mapping):
        assignment = {int(f): list(paths) for f, paths in volumes.items()}
    else:
        if not volumes:
            raise DataError("prepare_genesis: no volumes given")
        if not folds:
            raise ConfigError("--folds: give at least one fold")
        assignment = {}
        for i, path in enumerate(volumes):
            assignment.setdefault(folds[i % len(folds)], []).append(path)
    negative = sorted(f for f in assignment if f < 0)
    if negative:
        raise ConfigError(f"--folds must be >= 0 (training reads folds 0, 1, ...), got {negative[0]}")
    if not overwrite:
        for fold in sorted(assignment):
            path = os.path.join(output_dir, cube_file_name(scale, fold, cube_shape, trainer_naming))
            if os.path.lexists(path):
                raise ConfigError(
                    f"{path}: exists (an earlier prepare?); pass --overwrite to replace the cube files of the "
                    "same names, or choose another --output"
                )
    rng = np.random.default_rng(seed)
    created = _missing_folders(output_dir)
    written = []
    try:
        # Every fold file waits in its temporary file until all volumes are cut, so that a bad volume
        # (unreadable, NaN, constant, too small) leaves nothing written.
        with contextlib.ExitStack() as pending:
            for fold, paths in sorted(assignment.items()):
                cubes = np.concatenate(
                    [_volume_cubes(p, scale, rng, modality, cube_shape, border, lung_max) for p in paths]
                )
                if len(cubes):
                    path = os.path.join(
                        os.fspath(output_dir), cube_file_name(scale, fold, cube_shape, trainer_naming)
                    )
                    _save_cubes(_finite_cubes(cubes), pending.enter_context(atomic_path(path)))
                    written.append(path)
                    log.info("fold %d: %d cubes from %d volumes", fold, len(cubes), len(paths))
    except BaseException:
        _remove_empty(created)
        raise
    return written


def _volume_cubes(
    path: str | os.PathLike,
    scale: int,
    rng: np.random.Generator,
    modality: str,
    cube_shape: Sequence[int],
    border: Sequence[int],
    lung_max: float | None,
) -> np.ndarray:
    """Cubes (n, rows, cols, depth) cut from one windowed volume; a volume too small is a DataError."""
    volume = hu_window(read_volume(path), modality)
    try:
        return extract_cubes(volume, scale, rng, cube_shape, border, lung_max, window=WINDOWS[modality])
    except ValueError as exc:
        raise data_error(path, str(exc)) from None


def _missing_folders(folder: str | os.PathLike) -> list[str]:
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    missing = []
    folder = os.path.abspath(os.fspath(folder))
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def _remove_empty(folders: list[str]) -> None:
    """Removes the given folders (deepest first) while they are empty; never anything else."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


# ------------------------------------------------------------------------------------------ synthetic CT
def synthetic_ct_volume(shape: Sequence[int] = (96, 96, 64), seed: int = 0) -> np.ndarray:
    """A seeded CT-like volume in HU (x, y, z): air, an elliptic body (fat rim, soft tissue), two lungs with
    branching vessels, a spine, and Gaussian noise. Its fine structure differs between seeds.

    Returns:
        float32 (x, y, z) in HU, about [-1000, 1000].
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    hu = np.full(shape, -1000.0, np.float32)
    a, b = rng.uniform(0.8, 0.92), rng.uniform(0.6, 0.75)
    body = (x / a) ** 2 + (y / b) ** 2
    hu[body < 1.0] = -100.0  # fat rim
    hu[body < 0.8] = 40.0  # soft tissue
    for side in (-1, 1):
        cx, ry = side * rng.uniform(0.35, 0.45), rng.uniform(0.35, 0.45)
        lung = ((x - cx) / 0.28) ** 2 + (y / ry) ** 2 + (z / 1.2) ** 2 < 1.0
        hu[lung] = -850.0
        for _ in range(6):  # vessels: random straight tubes through the lung
            p = np.array([cx, 0.0, 0.0]) + rng.uniform(-0.15, 0.15, 3)
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            rel = np.stack([x - p[0], y - p[1], z - p[2]], -1)
            dist = np.linalg.norm(rel - (rel @ d)[..., None] * d, axis=-1)
            hu[lung & (dist < rng.uniform(0.015, 0.04))] = 50.0
    spine = (x / 0.12) ** 2 + ((y - 0.75 * b) / 0.12) ** 2 < 1.0
    hu[spine] = 700.0
    hu += rng.normal(0.0, 20.0, shape).astype(np.float32)
    return hu


def synthetic_cubes(
    count: int, seed: int = 0, cube_shape: Sequence[int] = (64, 64, 32), per_volume: int = 16
) -> np.ndarray:
    """``count`` cubes in [0, 1] cut from seeded synthetic CT volumes (the default data without ``--data``)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s * 1.5) for s in cube_shape)
    cubes = []
    volume_seed = seed
    while sum(len(c) for c in cubes) < count:
        volume = hu_window(synthetic_ct_volume(shape, seed=volume_seed))
        cubes.append(
            extract_cubes(volume, min(per_volume, count - sum(len(c) for c in cubes)), rng, cube_shape)
        )
        volume_seed += 1
    return np.concatenate(cubes)

"""ISBI 2012 EM membrane segmentation: readers, a synthetic stand-in, and U-Net training / validation sets.

On disk the data comes either as PNG folders (``train/image/N.png`` with ``train/label/N.png``, matched by
file name, as in zhixuhao/unet) or as the challenge's multi-page TIFF stacks (``train-volume.tif`` with
``train-labels.tif``). Any image file of a folder may itself be a multi-page TIFF: each page is a slice.
Readers return float32 arrays (slices, H, W): images scaled to [0, 1] and labels decoded to 1 = cell
interior (white) and 0 = membrane (black). A label file must hold two levels, 0 for membrane and one
other value for cell interior, whatever its encoding (0/1, 0/255, 0/65535, a bilevel or a two-colour
palette PNG); a constant label or one with grey levels (resized, smoothed, saved as JPEG) is refused.

Images are fitted to the model input either by random crops at native resolution (``fit="crop"``: thin
membranes stay sharp) or by resizing every slice to the input size as the reference does
(``fit="resize"``), then augmented with one transform shared by image and mask.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageSequence
from scipy import ndimage, spatial
from skimage import segmentation, transform

from keras_zoo.datasets.augment import AugmentConfig, center_crop, random_patch
from keras_zoo.datasets.base import ArrayBatches, SeededSamples, split_indices, worker_options
from keras_zoo.errors import DataError, data_error, require_dir, require_file

logger = logging.getLogger(__name__)

FITS = ("crop", "resize")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
GREY_MODES = ("L", "I;16", "I;16B", "I", "F", "1")  # Pillow modes read as stored
PLANAR_CONFIGURATION = 284  # TIFF tag: 2 = each colour in its own plane
SAMPLES_PER_PIXEL = 277  # TIFF tag


@dataclasses.dataclass
class Slices:
    """A set of 2D slices with binary labels.

    Attributes:
        images: float32 (n, H, W) in [0, 1].
        labels: float32 (n, H, W) in {0, 1}; 1 = cell interior, 0 = membrane.
        names: one name per slice (file stem or ``"page N"``).
        source: where the slices came from, for logs.
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    source: str

    def subset(self, indices: Sequence[int]) -> Slices:
        """The slices at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=int)
        return Slices(
            self.images[indices], self.labels[indices], [self.names[i] for i in indices], self.source
        )


def scale_to_unit_range(array: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Scales integer data by its dtype's maximum (uint8 / 255) and checks float data lies in [0, 1].

    Raises:
        DataError: naming ``path`` for float data outside [0, 1] or a non-numeric dtype.
    """
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float64) / np.iinfo(array.dtype).max).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1 or np.isnan(array).any()):
            raise data_error(
                path, f"float pixel values must lie in [0, 1], found [{array.min()}, {array.max()}]"
            )
        return array.astype(np.float32)
    raise data_error(path, f"unsupported pixel type {array.dtype}")


def binarize(labels: np.ndarray) -> np.ndarray:
    """Labels in [0, 1] thresholded at 0.5 (1 = cell interior) as float32."""
    return (labels > 0.5).astype(np.float32)


def decode_labels(raw: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Decodes raw label values (any shape) to float32 {0, 1}: 0 stays membrane, the other level is cell.

    Args:
        raw: label values as stored (bool, integer or float), e.g. (H, W) or (pages, H, W).
        path: the file, for messages.

    Raises:
        DataError: naming ``path`` when the values are not exactly two levels with 0 the lower one
            (a constant label, grey levels, NaN/Inf or a label without 0).
    """
    values = np.unique(raw)
    expected = "expected 0 = membrane and one other value (1 or 255) = cell interior"
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(raw)))
        raise data_error(path, f"label holds {bad} NaN or Inf values; {expected}")
    if len(values) == 2 and values[0] == 0:
        return (raw == values[1]).astype(np.float32)
    if len(values) == 1:
        raise data_error(path, f"constant label (every pixel {values[0]}): no membrane to learn; {expected}")
    if len(values) > 2:
        shown = ", ".join(f"{v:g}" for v in values[:4].astype(np.float64))
        raise data_error(
            path,
            f"label holds {len(values)} levels ({shown}, ...); {expected} "
            "(was it resized, smoothed or saved as JPEG?)",
        )
    raise data_error(path, f"label levels {values[0]:g} and {values[1]:g}; {expected}")


def _read_frames(path: str | os.PathLike) -> np.ndarray:
    """Reads every page of an image file as stored (pages, H, W): grey modes kept, others (RGB, palette
    colours) converted to 8-bit luminance, bilevel images as bool.

    Raises:
        DataError: naming the file when it is missing, empty, unreadable or its pages differ in size.
    """
    path = require_file(path, "image")
    try:
        with Image.open(path) as image:
            frames = []
            for frame in ImageSequence.Iterator(image):
                if frame.mode not in GREY_MODES and _stack_as_planes(image, frame):
                    return _read_tiff_pages(path)  # a grey stack tagged as colour planes
                if frame.mode not in GREY_MODES:
                    frame = frame.convert("L")
                frames.append(np.asarray(frame))
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow's plugins raise many types for corrupt files
        raise data_error(path, f"cannot read image ({type(error).__name__}: {error})") from error
    shapes = sorted({frame.shape for frame in frames})
    if len(shapes) != 1:
        raise data_error(path, f"pages differ in shape {shapes}")
    return np.stack(frames)


def _stack_as_planes(image: Image.Image, frame: Image.Image) -> bool:
    """Whether a Pillow TIFF is one page of 3 or 4 colours stored as separate planes: how tifffile.imwrite
    stores a grey stack of 3 or 4 slices unless given ``photometric='minisblack'`` (read as colour, they
    would be mixed into one luminance slice). Other colour TIFFs are read as colour."""
    tags = getattr(frame, "tag_v2", None)
    return (
        tags is not None
        and tags.get(PLANAR_CONFIGURATION) == 2
        and tags.get(SAMPLES_PER_PIXEL) in (3, 4)
        and getattr(image, "n_frames", 1) == 1
    )


def read_pages(path: str | os.PathLike) -> np.ndarray:
    """Reads every page of an image file (a multi-page TIFF, or any single image) as float32 (pages, H, W)
    in [0, 1], grayscale.

    Raises:
        DataError: naming the file when it is missing, empty or not a readable image.
    """
    return scale_to_unit_range(_read_frames(path), path)


def read_gray_slice(path: str | os.PathLike) -> np.ndarray:
    """Reads one 2D image file as grayscale float32 (H, W) in [0, 1].

    Raises:
        DataError: naming the file when it is missing, empty or not a readable image, or when it is a
            multi-page stack (read those with :func:`read_pages`, one slice a page).
    """
    frames = _read_frames(path)
    if len(frames) > 1:
        raise data_error(path, f"a stack of {len(frames)} pages, not one image (read_pages reads every page)")
    return scale_to_unit_range(frames[0], path)


def _image_files(folder: str) -> dict[str, str]:
    files = {}
    for entry in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(entry)
        if suffix.lower() in IMAGE_SUFFIXES and not entry.startswith("."):
            files[stem] = os.path.join(folder, entry)
    return files


def _natural_key(name: str):
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _read_pair(image_path: str, label_path: str) -> tuple[np.ndarray, np.ndarray]:
    """One image file and its label file: float32 (pages, H, W) images in [0, 1] and labels in {0, 1}.

    Raises:
        DataError: naming the label file when its pages or their shape differ from the image's.
    """
    image, label = _read_frames(image_path), _read_frames(label_path)
    if len(label) != len(image):
        raise data_error(label_path, f"{len(label)} label pages for {len(image)} pages in {image_path}")
    if label.shape != image.shape:
        raise data_error(
            label_path, f"label shape {label.shape[1:]} differs from image shape {image.shape[1:]}"
        )
    return scale_to_unit_range(image, image_path), decode_labels(label, label_path)


def read_png_folders(image_dir: str | os.PathLike, label_dir: str | os.PathLike) -> Slices:
    """Reads image/label pairs from two folders, matched by file name (``image/3.png`` with ``label/3.png``).

    A multi-page TIFF pair gives one slice a page, named ``"<name> page <i>"``.

    Raises:
        DataError: naming the folder or file for a missing or empty folder, different counts, an image
            without a label of the same name, an unreadable file, a label that is not two-level
            (:func:`decode_labels`), or shapes or page counts that differ.
    """
    image_dir, label_dir = require_dir(image_dir, "image folder"), require_dir(label_dir, "label folder")
    images, labels = _image_files(image_dir), _image_files(label_dir)
    if not images:
        raise data_error(image_dir, "no .png/.tif images in the image folder")
    if len(images) != len(labels):
        raise data_error(label_dir, f"{len(labels)} labels for {len(images)} images in {image_dir}")
    unmatched = sorted(set(images) - set(labels), key=_natural_key)
    if unmatched:
        raise data_error(images[unmatched[0]], f"no label named {unmatched[0]!r} in {label_dir}")
    image_arrays, label_arrays, names = [], [], []
    for name in sorted(images, key=_natural_key):
        image, label = _read_pair(images[name], labels[name])
        if image_arrays and image.shape[1:] != image_arrays[0].shape[1:]:
            raise data_error(
                images[name],
                f"shape {image.shape[1:]} differs from {image_arrays[0].shape[1:]} of the first image",
            )
        image_arrays.append(image)
        label_arrays.append(label)
        names.extend([name] if len(image) == 1 else [f"{name} page {i}" for i in range(len(image))])
    return Slices(
        np.concatenate(image_arrays),
        np.concatenate(label_arrays),
        names,
        f"PNG folders {image_dir}, {label_dir}",
    )


def _read_tiff_pages(path: str | os.PathLike) -> np.ndarray:
    """Reads a multi-page grayscale TIFF as stored (pages, H, W) with tifffile (separate colour planes as
    pages).

    Raises:
        DataError: naming the file when it is missing, unreadable, a colour image or not 2D pages.
    """
    import tifffile

    path = require_file(path, "TIFF stack")
    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0] if tiff.series else None  # none in a file cut after its header
            axes, array = (series.axes, series.asarray()) if series else ("", np.empty((0, 0, 0)))
    except Exception as error:  # noqa: BLE001 - tifffile raises many types (struct.error, ...) for corrupt files
        raise data_error(path, f"cannot read TIFF stack ({type(error).__name__}: {error})") from error
    if axes == "SYX" and len(array) in (3, 4):
        logger.warning(
            "%s: tagged as one colour image with %d separate planes, as tifffile.imwrite stores a stack of 3 "
            "or 4 slices unless given photometric='minisblack'; read as %d grey slices",
            path,
            len(array),
            len(array),
        )
    elif "S" in axes:  # interleaved colours: (H, W, 3) would pass for H pages of W x 3
        raise data_error(
            path,
            f"expected grayscale pages (pages, H, W), got colour samples (axes {axes}, shape {array.shape})",
        )
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise data_error(path, f"expected grayscale pages (pages, H, W), got shape {array.shape}")
    return array


def read_tiff_stack(path: str | os.PathLike) -> np.ndarray:
    """Reads a multi-page grayscale TIFF as float32 (pages, H, W) in [0, 1].

    Raises:
        DataError: naming the file when it is missing, unreadable or not a stack of 2D grayscale pages.
    """
    return scale_to_unit_range(_read_tiff_pages(path), path)


def read_tiff_stacks(volume_path: str | os.PathLike, labels_path: str | os.PathLike) -> Slices:
    """Reads the challenge's ``train-volume.tif`` / ``train-labels.tif`` pair, page by page.

    The labels are decoded over the whole stack (:func:`decode_labels`), so single pages may be constant.
    """
    images, labels = read_tiff_stack(volume_path), _read_tiff_pages(labels_path)
    if labels.shape != images.shape:
        raise data_error(
            labels_path, f"label stack shape {labels.shape} differs from {images.shape} of {volume_path}"
        )
    names = [f"page {i}" for i in range(len(images))]
    return Slices(
        images, decode_labels(labels, labels_path), names, f"TIFF stacks {volume_path}, {labels_path}"
    )


def read_isbi(path: str | os.PathLike) -> Slices:
    """Reads ISBI 2012 training slices from a folder in any of the supported layouts.

    Looked for, in order: ``image/`` + ``label/`` in ``path``, in ``path/train`` or in
    ``path/data/membrane/train`` (the zhixuhao and Ascend layouts); then ``train-volume.tif`` +
    ``train-labels.tif`` in ``path`` or ``path/data/membrane``.

    Raises:
        DataError: naming the path when it is missing or holds none of the layouts, or the problem file.
    """
    root = require_dir(path, "ISBI data folder")
    for folder in (root, os.path.join(root, "train"), os.path.join(root, "data", "membrane", "train")):
        image_dir, label_dir = os.path.join(folder, "image"), os.path.join(folder, "label")
        if os.path.isdir(image_dir) or os.path.isdir(label_dir):
            return read_png_folders(image_dir, label_dir)
    for folder in (root, os.path.join(root, "data", "membrane")):
        volume = os.path.join(folder, "train-volume.tif")
        if os.path.exists(volume):
            return read_tiff_stacks(volume, os.path.join(folder, "train-labels.tif"))
    raise data_error(
        root,
        "no ISBI data: expected train/image + train/label folders or train-volume.tif + train-labels.tif",
    )


def synthetic_membranes(
    count: int = 30, shape: Sequence[int] = (256, 256), cell_size: float = 24.0, seed: int = 0
) -> Slices:
    """Membrane-like EM stand-in: Voronoi cells with dark boundaries, texture, blur and noise.

    Args:
        count: number of slices.
        shape: (height, width) of each slice.
        cell_size: mean distance between cell centres in pixels.
        seed: random seed; the same seed gives the same slices.

    Returns:
        :class:`Slices` with labels 1 inside cells and 0 on the 2-4 pixel wide boundaries.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    height, width = (int(s) for s in shape[:2])
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), axis=-1).reshape(-1, 2)
    images, labels = [], []
    for _ in range(count):
        n_cells = max(2, int(height * width / cell_size**2))
        centres = rng.uniform((0, 0), (height, width), size=(n_cells, 2))
        cells = spatial.cKDTree(centres).query(grid)[1].reshape(height, width)
        membrane = segmentation.find_boundaries(cells, mode="thick")
        membrane |= ndimage.binary_dilation(membrane) & (rng.random((height, width)) < 0.3)
        brightness = rng.uniform(0.55, 0.85, size=n_cells)[cells]
        texture = ndimage.gaussian_filter(rng.normal(size=(height, width)), 2.0) * 0.6
        image = np.where(membrane, rng.uniform(0.1, 0.25), brightness + texture)
        image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0.0, 0.05, size=(height, width))
        images.append(np.clip(image, 0.0, 1.0).astype(np.float32))
        labels.append((~membrane).astype(np.float32))
    names = [f"synthetic {i}" for i in range(count)]
    return Slices(np.stack(images), np.stack(labels), names, f"synthetic membranes (seed {seed})")


def hold_out(slices: Slices, val_fraction: float, seed: int = 0) -> tuple[Slices, Slices]:
    """``(train, validation)``: a seeded ``val_fraction`` of the slices held out (at least one).

    Raises:
        DataError: fewer than 2 slices (none would be left to train on or to hold out).
        ValueError: ``val_fraction`` outside (0, 1).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(slices.images) < 2:
        raise data_error(
            slices.source, f"need at least 2 slices to hold some out, found {len(slices.images)}"
        )
    train_ids, val_ids = split_indices(len(slices.images), val_fraction, seed)
    return slices.subset(train_ids), slices.subset(val_ids)


def resize_slices(slices: Slices, size: Sequence[int]) -> Slices:
    """Resizes every slice to (height, width): bilinear with anti-aliasing for images, nearest for labels."""
    size = tuple(int(s) for s in size[:2])
    if slices.images.shape[1:3] == size:
        return slices
    images = np.stack([transform.resize(im, size, order=1, anti_aliasing=True) for im in slices.images])
    labels = np.stack(
        [
            transform.resize(lab, size, order=0, anti_aliasing=False, preserve_range=True)
            for lab in slices.labels
        ]
    )
    return Slices(images.astype(np.float32), binarize(labels), slices.names, slices.source)


def training_batches(
    slices: Slices,
    batch_size: int,
    input_size: Sequence[int],
    steps: int,
    fit: str = "crop",
    augment: AugmentConfig | None = None,
    seed: int = 0,
    workers: int | None = 0,
) -> SeededSamples:
    """Seeded, resumable training batches of (image, label) patches.

    Each patch is one sample of :class:`SeededSamples`: its slice (drawn with replacement) and its crop and
    transform come from the sample's own generator, so batches do not depend on ``workers``.

    Args:
        slices: training slices (n, H, W).
        batch_size: patches per batch.
        input_size: (height, width) of the model input.
        steps: batches per epoch.
        fit: ``"crop"`` cuts random patches at native resolution; ``"resize"`` resizes each slice to
            ``input_size`` first (the reference) and augments the whole resized slice.
        augment: transform ranges, or None for none.
        seed: base seed.
        workers: parallel worker threads (see :func:`keras_zoo.datasets.base.worker_options`; None: every
            core but one).

    Returns:
        :class:`SeededSamples` yielding float32 ``(batch, h, w, 1)`` images and labels.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    size = tuple(int(s) for s in input_size[:2])
    if fit == "resize":
        slices = resize_slices(slices, size)
    elif size[0] > slices.images.shape[1] or size[1] > slices.images.shape[2]:
        raise ValueError(
            f"crop size {size} is larger than the slices {slices.images.shape[1:3]}; use fit='resize'"
        )
    centre = None if fit == "crop" else ((size[0] - 1) / 2.0, (size[1] - 1) / 2.0)
    images, labels = slices.images, slices.labels

    def make_sample(rng: np.random.Generator, item: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = random_patch(images[item], labels[item], size, rng, augment, centre)
        return image[..., None].astype(np.float32), label[..., None].astype(np.float32)

    return SeededSamples(make_sample, len(images), batch_size, steps, seed, **worker_options(workers))


def validation_slices(slices: Slices, fit: str, input_size: Sequence[int], stride: int) -> Slices:
    """Validation slices the model can take whole.

    With ``fit="crop"`` slices keep their native resolution, centre-cropped to the largest size divisible
    by ``stride`` (no crop for 512x512 and a stride of 16); with ``fit="resize"`` they are resized to
    ``input_size``, as the model saw them in training.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if fit == "resize":
        return resize_slices(slices, input_size)
    height, width = (s - s % stride for s in slices.images.shape[1:3])
    if height < stride or width < stride:
        raise ValueError(f"slices {slices.images.shape[1:3]} are smaller than the model stride {stride}")
    if (height, width) == slices.images.shape[1:3]:
        return slices
    crop = [
        center_crop(a.transpose(1, 2, 0), (height, width)).transpose(2, 0, 1)
        for a in (slices.images, slices.labels)
    ]
    return Slices(np.ascontiguousarray(crop[0]), np.ascontiguousarray(crop[1]), slices.names, slices.source)


def validation_batches(slices: Slices, batch_size: int = 1) -> ArrayBatches:
    """Whole validation slices as ``(batch, H, W, 1)`` image and label batches."""
    return ArrayBatches(slices.images[..., None], slices.labels[..., None], batch_size)

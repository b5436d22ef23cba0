"""PASCAL VOC 2012 segmentation data: VOCdevkit folders, the VOC palette, DeepLab's augmentation, synthetic scenes.

Readers return NumPy arrays: images ``uint8 (H, W, 3)`` and labels ``uint8 (H, W)`` with classes 0..20 and
void 255. Labels come from ``SegmentationClassRaw`` (greyscale indices, DeepLab's ``remove_gt_colormap``
output), ``SegmentationClassAug`` (SBD train_aug) or ``SegmentationClass`` (palette PNGs, read as indices by
Pillow's mode "P", so no colour lookup is involved). The DeepLab tfrecord format is in
:mod:`keras_zoo.datasets.voc_tfrecord`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from keras_zoo.errors import DataError, data_error, require_dir, require_file

if TYPE_CHECKING:
    from keras_zoo.datasets.base import SeededSamples

NUM_CLASSES = 21
VOID_LABEL = 255
MEAN_PIXEL = 127.5  # the reference pads images with the mean pixel (0 after preprocessing)
SCALES = tuple(np.arange(0.5, 2.0 + 1e-9, 0.25))  # reference min/max scale 0.5..2.0, step 0.25
LABEL_FOLDERS = ("SegmentationClassRaw", "SegmentationClassAug", "SegmentationClass")
CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def class_names(classes: int) -> list[str]:
    """VOC's class names for a 21-class model, ``class0, class1, ...`` for another number of classes."""
    return list(CLASS_NAMES) if classes == NUM_CLASSES else [f"class{i}" for i in range(classes)]


def voc_palette() -> np.ndarray:
    """The standard VOC colour map, (256, 3) uint8: bits of the index spread over R, G, B (255 -> 224,224,192)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    return palette


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Colours class indices (H, W) with the VOC palette; returns (H, W, 3) uint8."""
    return voc_palette()[np.asarray(labels, dtype=np.uint8)]


def rgb_to_labels(rgb: np.ndarray, path: str | os.PathLike = "<array>") -> np.ndarray:
    """Inverse of :func:`labels_to_rgb` for the 21 class colours and void; other colours raise DataError."""
    palette = voc_palette()
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    known = [*range(NUM_CLASSES), VOID_LABEL]
    table = {int(p[0]) << 16 | int(p[1]) << 8 | int(p[2]): i for i, p in ((i, palette[i]) for i in known)}
    labels = np.full(codes.shape, -1, dtype=np.int32)
    for code, index in table.items():
        labels[codes == code] = index
    if (labels < 0).any():
        raise data_error(path, f"{int((labels < 0).sum())} pixels have colours outside the VOC palette")
    return labels.astype(np.uint8)


def save_label_png(labels: np.ndarray, path: str | os.PathLike, palette: bool = True) -> None:
    """Writes class indices as a palette PNG (``SegmentationClass`` style) or greyscale (``...Raw``)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    if palette:
        image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
        image.putpalette(voc_palette().ravel().tolist())
    else:
        image = Image.fromarray(labels)  # mode "L"
    image.save(path)


def check_labels(labels: np.ndarray, path: str | os.PathLike, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Returns ``labels`` after checking that every value is a class id or void.

    Raises:
        DataError: naming ``path`` and the offending values.
    """
    values = np.unique(labels)
    bad = values[(values >= num_classes) & (values != VOID_LABEL)]
    if bad.size:
        raise data_error(
            path, f"label values {bad.tolist()[:8]} are not classes 0..{num_classes - 1} or void 255"
        )
    return labels


def read_label(path: str | os.PathLike, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Reads a VOC label PNG (palette "P" or greyscale "L") as class indices (H, W) uint8, checked."""
    path = require_file(path, "label image")
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise data_error(
                    path, f"label PNG must be palette (P) or greyscale (L), found mode {image.mode}"
                )
            labels = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow's plugins raise many types for corrupt files
        raise data_error(path, f"unreadable label image ({error})") from error
    return check_labels(labels, path, num_classes)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Reads an RGB image (H, W, 3) uint8."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as error:  # noqa: BLE001 - Pillow's plugins raise many types for corrupt files
        raise data_error(path, f"unreadable image ({error})") from error


def find_voc_root(root: str | os.PathLike) -> str:
    """Accepts ``VOCdevkit``, ``VOCdevkit/VOC2012`` or any folder holding ``JPEGImages``."""
    root = require_dir(root, "VOC folder")
    for candidate in (root, os.path.join(root, "VOC2012")):
        if os.path.isdir(os.path.join(candidate, "JPEGImages")):
            return candidate
    raise data_error(root, "no JPEGImages folder (expected a VOCdevkit/VOC2012 layout)")


def read_split_ids(root: str | os.PathLike, split: str) -> list[str]:
    """Image ids of ``ImageSets/Segmentation/{split}.txt`` (train, val, trainval, or SBD's train_aug)."""
    path = require_file(
        os.path.join(find_voc_root(root), "ImageSets", "Segmentation", f"{split}.txt"), "split list"
    )
    with open(path, encoding="utf-8") as handle:
        ids = [line.split()[0] for line in handle if line.strip()]
    if not ids:
        raise data_error(path, "split list has no ids")
    return ids


def label_path(root: str, image_id: str) -> str:
    """The first existing label file of ``image_id`` among :data:`LABEL_FOLDERS`."""
    for folder in LABEL_FOLDERS:
        path = os.path.join(root, folder, f"{image_id}.png")
        if os.path.isfile(path):
            return path
    raise data_error(
        os.path.join(root, LABEL_FOLDERS[-1], f"{image_id}.png"),
        "label not found in any of " + ", ".join(LABEL_FOLDERS),
    )


def load_voc_split(root: str | os.PathLike, split: str, limit: int | None = None):
    """Loads a split of a VOCdevkit folder into memory.

    Args:
        root: VOCdevkit folder (or its VOC2012 subfolder).
        split: list name in ``ImageSets/Segmentation``.
        limit: read only the first ``limit`` ids.

    Returns:
        ``(ids, images, labels)``: lists of ids, uint8 (H, W, 3) images and uint8 (H, W) labels.
    """
    root = find_voc_root(root)
    ids = read_split_ids(root, split)[:limit]
    images, labels = [], []
    for image_id in ids:
        image = read_rgb(os.path.join(root, "JPEGImages", f"{image_id}.jpg"))
        path = label_path(root, image_id)
        label = read_label(path)
        if label.shape != image.shape[:2]:
            raise data_error(path, f"label size {label.shape} differs from its image {image.shape[:2]}")
        images.append(image)
        labels.append(label)
    return ids, images, labels


def load_split(data: str | os.PathLike, split: str) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """``(names, images, labels)`` of ``split`` from a VOCdevkit folder or a folder of DeepLab tfrecords.

    Images are uint8 (H, W, 3) and labels uint8 (H, W) class ids with 255 for void, each at its own size.
    """
    import glob

    if glob.glob(os.path.join(os.fspath(data), f"{split}-*.tfrecord")):
        from keras_zoo.datasets.voc_tfrecord import load_tfrecord_split

        return load_tfrecord_split(data, split)
    return load_voc_split(data, split)


def check_label_classes(
    names: Sequence[str], labels: Sequence[np.ndarray], classes: int, limit: str | None = None
) -> None:
    """Raises DataError naming the first label map (H, W) holding a class id >= ``classes`` (void aside).

    ``limit`` says what bounds the ids in the message (default ``"{classes} classes"``).
    """
    for name, label in zip(names, labels):
        valid = label[label != VOID_LABEL]
        if valid.size and valid.max() >= classes:
            raise DataError(f"{name}: label class {int(valid.max())} >= {limit or f'{classes} classes'}")


def _resize(array: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample=resample))


def pad_to(image: np.ndarray, label: np.ndarray | None, height: int, width: int):
    """Pads at the bottom/right to at least (height, width): image with the mean pixel, label with void."""
    pad_h, pad_w = max(height - image.shape[0], 0), max(width - image.shape[1], 0)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=int(round(MEAN_PIXEL)))
        if label is not None:
            label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=VOID_LABEL)
    return image, label


def augment(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    crop_size: Sequence[int] = (513, 513),
    scales: Sequence[float] = SCALES,
    flip: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """DeepLab's training augmentation: random scale, pad to the crop, random crop, left-right flip.

    Args:
        image: uint8 (H, W, 3).
        label: uint8 (H, W).
        rng: NumPy generator.
        crop_size: (height, width) of the crop (513, 513).
        scales: scale factors drawn uniformly (0.5 to 2.0 in steps of 0.25).
        flip: flip left-right with probability 0.5.

    Returns:
        ``(image, label)`` of size ``crop_size``; image uint8 (bilinear resize, mean-pixel padding), label
        uint8 (nearest resize, void padding).
    """
    scale = float(rng.choice(np.asarray(scales)))
    if scale != 1.0:
        size = (max(1, int(round(image.shape[0] * scale))), max(1, int(round(image.shape[1] * scale))))
        image = _resize(image, size, Image.BILINEAR)
        label = _resize(label, size, Image.NEAREST)
    height, width = crop_size
    image, label = pad_to(image, label, height, width)
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    if flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def scales_between(min_scale: float, max_scale: float) -> tuple[float, ...]:
    """The reference's augmentation scales (:data:`SCALES`) within [min_scale, max_scale]; ``(1.0,)`` if none."""
    return tuple(s for s in SCALES if min_scale - 1e-9 <= s <= max_scale + 1e-9) or (1.0,)


def training_samples(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    crop: tuple[int, int],
    scales: Sequence[float],
    batch_size: int,
    steps: int,
    seed: int,
    preprocess: Callable[[np.ndarray], np.ndarray],
    workers: int | None = None,
) -> SeededSamples:
    """Seeded training batches of in-memory images: :func:`augment` then ``preprocess`` per sample.

    Args:
        images: uint8 (H, W, 3) each, of any size.
        labels: uint8 (H, W) each, void 255.
        crop: (height, width) of the samples.
        scales: scale factors drawn by :func:`augment`.
        batch_size: samples per batch.
        steps: batches per epoch.
        seed: base seed (a sample depends only on the seed, its epoch and its index).
        preprocess: maps a uint8 crop (h, w, 3) to the network's input (the model's ``preprocess_input``).
        workers: input worker threads (None: the default).

    Returns:
        A ``PyDataset`` of ``(images (batch, h, w, 3) float, labels (batch, h, w) uint8)``.
    """
    from keras_zoo.datasets.base import SeededSamples, worker_options

    def make_sample(rng: np.random.Generator, item: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = augment(images[item], labels[item], rng, crop, scales)
        return preprocess(image), label

    # Pillow's resize releases the GIL and a batch of 513x513 crops is large to send between processes:
    # threads.
    return SeededSamples(make_sample, len(images), batch_size, steps, seed, **worker_options(workers))


def synthetic_scene(
    rng: np.random.Generator,
    size: Sequence[int] = (129, 129),
    num_classes: int = NUM_CLASSES,
    shapes: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded scene of textured shapes on a textured background, with void boundaries like VOC.

    Each class has a fixed colour and stripe texture (the same for every seed), so the task is learnable:
    class 0 is the background, each shape (rectangle or ellipse) gets a class in 1..num_classes-1, and a
    2-pixel ring around each shape is void (255).

    Returns:
        ``(image, label)``: uint8 (H, W, 3) and uint8 (H, W).
    """
    height, width = size
    colours = np.random.default_rng(12345).integers(20, 236, size=(num_classes, 3))
    periods = 3 + np.arange(num_classes) % 7
    yy, xx = np.mgrid[0:height, 0:width]

    def texture(cls: int) -> np.ndarray:
        stripes = ((xx + (cls % 2) * yy) // periods[cls]) % 2
        return np.clip(colours[cls] + (stripes[..., None] * 40 - 20), 0, 255)

    image = texture(0) + rng.normal(0, 8, size=(height, width, 1))
    label = np.zeros((height, width), dtype=np.uint8)
    for _ in range(shapes):
        cls = int(rng.integers(1, num_classes))
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        if rng.random() < 0.5:
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
            ring = (np.abs(yy - cy) <= ry + 2) & (np.abs(xx - cx) <= rx + 2) & ~inside
        else:
            distance = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            inside = distance <= 1
            ring = (distance <= (1 + 2 / min(ry, rx)) ** 2) & ~inside
        label[ring] = VOID_LABEL
        label[inside] = cls
        image[inside] = texture(cls)[inside] + rng.normal(0, 8, size=(int(inside.sum()), 1))
    return np.clip(image, 0, 255).astype(np.uint8), label


def synthetic_dataset(count: int, size: Sequence[int], seed: int = 0, num_classes: int = NUM_CLASSES):
    """``count`` synthetic scenes as lists ``(images, labels)``; the same seed gives the same scenes."""
    if count < 1:
        raise DataError(f"synthetic dataset needs count >= 1, got {count}")
    scenes = [synthetic_scene(np.random.default_rng([seed, i]), size, num_classes) for i in range(count)]
    return [s[0] for s in scenes], [s[1] for s in scenes]


Split = tuple[list[str], list[np.ndarray], list[np.ndarray]]  # (names, images, labels)


def synthetic_splits(
    samples: int, size: Sequence[int], seed: int = 0, num_classes: int = NUM_CLASSES
) -> tuple[Split, Split]:
    """``samples`` synthetic scenes split into training and validation ``(names, images, labels)``: images
    uint8 (H, W, 3) and labels uint8 (H, W) of ``size``.

    One scene in eight (at least one) is held out; the held-out scenes have their own seed, so the
    training scenes do not change with the split.

    Raises:
        DataError: fewer than 2 samples.
    """
    if samples < 2:
        raise DataError(f"synthetic scenes need at least 2 samples (1 held out), got {samples}")
    n_val = max(1, samples // 8)
    images, labels = synthetic_dataset(samples - n_val, size, seed=seed, num_classes=num_classes)
    val_images, val_labels = synthetic_dataset(n_val, size, seed=seed + 1_000_003, num_classes=num_classes)
    train = ([f"synthetic_train_{i}" for i in range(len(images))], images, labels)
    return train, ([f"synthetic_{i}" for i in range(n_val)], val_images, val_labels)

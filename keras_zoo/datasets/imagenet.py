"""ImageNet (ILSVRC-2012) class-folder reader, Inception preprocessing in NumPy/Pillow, synthetic default set.

Labels: the standard index is the position of the wnid in the sorted list of the 1000 ILSVRC-2012 wnids
(shipped in ``imagenet_synsets.txt``). With ``classes=1001`` (the TF-slim/TPU convention, class 0 =
background) a class's label is that index + 1; with ``classes=1000`` it is the index itself.

The tfrecord format (TF-slim/TPU shards) lives in :mod:`keras_zoo.datasets.imagenet_tfrecord`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

import keras
import numpy as np
from PIL import Image

from keras_zoo.datasets.base import ArrayBatches, SeededBatches, SeededSamples, worker_options
from keras_zoo.errors import ConfigError, data_error, require_dir

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
EVAL_CENTRAL_FRACTION = 0.875
AREA_RANGE = (0.1, 1.0)
ASPECT_RANGE = (3 / 4, 4 / 3)
BRIGHTNESS_DELTA = 32 / 255
SATURATION_RANGE = (0.5, 1.5)


@functools.lru_cache(maxsize=1)
def synsets() -> tuple[tuple[str, str], ...]:
    """The 1000 ILSVRC-2012 classes as (wnid, short name), in standard index order (sorted wnids)."""
    text = resources.files("keras_zoo.datasets").joinpath("imagenet_synsets.txt").read_text()
    return tuple(tuple(line.split("\t", 1)) for line in text.splitlines() if line)


def check_classes(classes: int) -> int:
    """Returns the label offset of ``classes`` (1 for 1001 with background, 0 for 1000)."""
    if classes not in (1000, 1001):
        raise ConfigError(f"ImageNet labels need classes 1000 or 1001 (with background), got {classes}")
    return classes - 1000


def wnid_to_label(classes: int = 1001) -> dict[str, int]:
    """Maps each wnid to its label: standard index + 1 when ``classes`` is 1001, the index when 1000."""
    offset = check_classes(classes)
    return {wnid: index + offset for index, (wnid, _) in enumerate(synsets())}


def class_name(label: int, classes: int = 1001) -> str:
    """Short class name of ``label`` ("background" for 0 with 1001 classes)."""
    index = label - check_classes(classes)
    return "background" if index < 0 else synsets()[index][1]


def list_image_folder(
    root: str | os.PathLike, classes: int = 1001, skip: Sequence[str | os.PathLike] = ()
) -> tuple[list[str], np.ndarray]:
    """Lists ``<root>/<wnid>/*.JPEG`` (also .jpg/.png) with their labels.

    Args:
        root: folder of wnid-named class folders (an ImageNet ``train/`` or sorted ``val/`` tree).
        classes: 1001 (labels 1..1000) or 1000 (labels 0..999).
        skip: folders that are not class folders (e.g. ``prepare imagenet``'s own output inside ``root``).

    Returns:
        (paths sorted by class then file name, int32 labels).

    Raises:
        DataError: the folder is missing, has a subfolder that is not an ImageNet wnid, or holds no images.
    """
    root = require_dir(root, "ImageNet image folder")
    labels_of = wnid_to_label(classes)
    paths, labels = [], []
    skipped = {os.path.realpath(os.fspath(s)) for s in skip}
    for wnid in sorted(os.listdir(root)):
        folder = os.path.join(root, wnid)
        if not os.path.isdir(folder) or os.path.realpath(folder) in skipped:
            continue
        if wnid not in labels_of:
            raise data_error(folder, "is not a class folder named by an ILSVRC-2012 wnid (e.g. n01440764)")
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, name))
                labels.append(labels_of[wnid])
    if not paths:
        raise data_error(root, "no <wnid>/*.JPEG images found")
    return paths, np.asarray(labels, dtype="int32")


def open_rgb_image(path: str | os.PathLike) -> Image.Image:
    """Opens an image file as an RGB Pillow image; raises DataError naming the file if it is unreadable."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types for corrupt files
        raise data_error(path, f"cannot read image ({exc})") from None


def sample_distorted_box(height: int, width: int, rng: np.random.Generator, max_attempts: int = 100):
    """A random crop box (top, left, h, w) covering 10-100% of the image with aspect ratio 3/4-4/3.

    Mirrors ``tf.image.sample_distorted_bounding_box`` over the whole image (no object boxes): when no
    attempt fits, the whole image is used.
    """
    area = height * width
    for _ in range(max_attempts):
        target = rng.uniform(*AREA_RANGE) * area
        aspect = rng.uniform(*ASPECT_RANGE)  # width / height
        h = int(round(math.sqrt(target / aspect)))
        w = int(round(h * aspect))
        if 0 < h <= height and 0 < w <= width and h * w >= AREA_RANGE[0] * area:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    return 0, 0, height, width


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiplies the HSV saturation of an RGB image in [0, 1] by ``factor`` (up to 1), keeping hue and value.

    Equal to converting to HSV, scaling S and converting back, without the round trip: a channel ``c`` of a
    pixel with maximum ``v`` and chroma ``v - min`` (saturation ``chroma / v``) becomes
    ``v - (v - c) * s`` with ``s = min(factor, v / chroma)``; grey pixels (chroma 0) stay as they are.

    Args:
        image: float array (..., 3) in [0, 1].
        factor: saturation multiplier (>= 0).

    Returns:
        Float array of the image's shape and dtype in [0, 1].
    """
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    value = np.maximum(np.maximum(red, green), blue)
    chroma = value - np.minimum(np.minimum(red, green), blue)
    # Where chroma is (nearly) 0, v - c is too: any finite scale leaves the pixel as it is.
    scale = np.minimum(value / np.maximum(chroma, image.dtype.type(1e-12)), image.dtype.type(factor))
    out = value[..., None] - (value[..., None] - image) * scale[..., None]
    return np.clip(out, 0.0, 1.0, out=out)


def distort_color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fast-mode Inception colour distortion of a float image in [0, 1]: brightness, then saturation."""
    image = np.clip(image + image.dtype.type(rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA)), 0.0, 1.0)
    return adjust_saturation(image, rng.uniform(*SATURATION_RANGE))


def to_inception_range(image: np.ndarray) -> np.ndarray:
    """Maps [0, 1] to [-1, 1] (the Inception input range)."""
    return ((image - 0.5) * 2.0).astype("float32")


def preprocess_train(
    image: Image.Image, size: int, rng: np.random.Generator, color_distort: bool = True
) -> np.ndarray:
    """Inception training preprocessing: distorted box crop, bilinear resize, random flip, colour, [-1, 1].

    Args:
        image: RGB Pillow image of any size.
        size: output height and width.
        rng: random generator (all randomness comes from it).
        color_distort: apply the brightness/saturation distortion.

    Returns:
        float32 array (size, size, 3) in [-1, 1].
    """
    top, left, h, w = sample_distorted_box(image.height, image.width, rng)
    crop = image.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
    out = np.asarray(crop, dtype="float32") / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if color_distort:
        out = distort_color(out, rng)
    return to_inception_range(out)


def preprocess_eval(image: Image.Image, size: int) -> np.ndarray:
    """Inception evaluation preprocessing: central 87.5% crop, bilinear resize, [-1, 1].

    Pillow's bilinear filter widens with the downscale factor (antialiased), where ``tf.image.resize`` is
    not antialiased; both are bilinear and agree for moderate scale factors.

    Returns:
        float32 array (size, size, 3) in [-1, 1].
    """
    h = int(image.height * EVAL_CENTRAL_FRACTION)
    w = int(image.width * EVAL_CENTRAL_FRACTION)
    top, left = (image.height - h) // 2, (image.width - w) // 2
    crop = image.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
    return to_inception_range(np.asarray(crop, dtype="float32") / 255.0)


class ImageFolderBatches(SeededSamples):
    """Training batches from image files: a seeded permutation per epoch, Inception preprocessing.

    Image ``s`` of an epoch is file ``permutation[s % n]`` of the epoch's permutation, cropped, flipped and
    distorted with the generator of sample ``s`` (:class:`keras_zoo.datasets.base.SeededSamples`).

    Args:
        paths: image files.
        labels: int labels, one per file.
        batch_size: images per batch.
        image_size: output height and width.
        seed: base seed; a batch depends only on (seed, epoch, index).
        steps: batches per epoch (default: one pass, at least 1); the permutation wraps around.
        color_distort: apply the colour distortion.
        workers: decoding workers (see :func:`keras_zoo.datasets.base.worker_options`; None: every core but
            one); threads, as Pillow decodes and resizes without the GIL and a batch is large to send
            between processes.
    """

    def __init__(
        self,
        paths,
        labels,
        batch_size: int,
        image_size: int,
        seed: int = 0,
        steps: int | None = None,
        color_distort: bool = True,
        workers: int | None = 0,
    ):
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype="int32")
        self.image_size = int(image_size)
        self.color_distort = color_distort
        steps = steps or max(1, len(self.paths) // max(1, batch_size))
        super().__init__(
            self._sample_of,
            len(self.paths),
            batch_size,
            steps,
            seed,
            order="permutation",
            **worker_options(workers),
        )

    def _sample_of(self, rng: np.random.Generator, item: int) -> tuple[np.ndarray, np.int32]:
        image = preprocess_train(open_rgb_image(self.paths[item]), self.image_size, rng, self.color_distort)
        return image, self.labels[item]


class ImageFolderEvalBatches(keras.utils.PyDataset):
    """Evaluation batches from image files, in order, with Inception evaluation preprocessing.

    Args:
        paths: image files.
        labels: int labels, one per file.
        batch_size: images per batch; the last batch may be smaller.
        image_size: output height and width.
        workers: decoding worker threads (see :func:`keras_zoo.datasets.base.worker_options`).
    """

    def __init__(self, paths, labels, batch_size: int, image_size: int, workers: int | None = 0):
        super().__init__(**worker_options(workers))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype="int32")
        self.batch_size = int(batch_size)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return -(-len(self.paths) // self.batch_size)

    def __getitem__(self, index: int):
        if index >= len(self):
            raise IndexError(index)
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        x = np.stack([preprocess_eval(open_rgb_image(p), self.image_size) for p in self.paths[s]])
        return x, self.labels[s]


def synthetic_classification(
    num_samples: int, image_size: int, classes: int, rng: np.random.Generator, prototypes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Images of a seeded synthetic classification task: each class is a coarse 4x4 colour layout plus noise.

    Args:
        num_samples: images to draw.
        image_size: height and width (a multiple of 4 is not required).
        classes: number of labels; labels are drawn uniformly from [0, classes).
        rng: generator for labels and noise.
        prototypes: float array (classes, 4, 4, 3) in [-1, 1] from :func:`synthetic_prototypes`.

    Returns:
        (float32 images (n, size, size, 3) in [-1, 1], int32 labels (n,)).
    """
    labels = rng.integers(0, classes, num_samples).astype("int32")
    cells = -(-image_size // 4)
    coarse = np.repeat(np.repeat(prototypes[labels], cells, axis=1), cells, axis=2)[
        :, :image_size, :image_size
    ]
    noise = rng.normal(0.0, 0.3, coarse.shape)
    return np.clip(coarse + noise, -1.0, 1.0).astype("float32"), labels


def synthetic_prototypes(classes: int, seed: int) -> np.ndarray:
    """The class layouts of the synthetic set: float (classes, 4, 4, 3) in [-1, 1], fixed by ``seed``."""
    return np.random.default_rng([seed, 1001]).uniform(-1.0, 1.0, (classes, 4, 4, 3))


def synthetic_batches(
    classes: int,
    image_size: int,
    batch_size: int,
    steps: int,
    seed: int = 0,
    workers: int | None = None,
) -> tuple[SeededBatches, ArrayBatches]:
    """``(train, validation)`` batches of the seeded synthetic task (:func:`synthetic_classification`).

    Training batches are drawn afresh per step (``steps`` a epoch) from generators seeded by ``seed``;
    the validation set is ``max(batch_size, 64)`` fixed images of the same classes. Batches are
    ``(float32 images (batch, size, size, 3) in [-1, 1], int32 labels (batch,))``.
    """
    prototypes = synthetic_prototypes(classes, seed)

    def make_batch(rng: np.random.Generator, index: int):
        return synthetic_classification(batch_size, image_size, classes, rng, prototypes)

    val_rng = np.random.default_rng([seed, 7])
    val_x, val_y = synthetic_classification(max(batch_size, 64), image_size, classes, val_rng, prototypes)
    train = SeededBatches(make_batch, steps, seed=seed, **worker_options(workers))
    return train, ArrayBatches(val_x, val_y, batch_size)


def folder_splits(root: str | os.PathLike) -> tuple[str, str | None]:
    """``(train folder, validation folder or None)`` of an image tree: ``root/train`` and ``root/val`` (or
    ``root/validation``), or ``root`` itself for both when it has neither (a single ``<wnid>/*.JPEG`` tree).

    Raises:
        DataError: a validation folder without a ``train/`` folder beside it.
    """
    root = os.fspath(root)
    train_dir = os.path.join(root, "train")
    val_dir = next(
        (os.path.join(root, n) for n in ("val", "validation") if os.path.isdir(os.path.join(root, n))), None
    )
    if os.path.isdir(train_dir):
        return train_dir, val_dir
    if val_dir is not None:
        raise data_error(root, "has a validation folder but no train/ folder")
    return root, root


def with_aux_targets(batches: keras.utils.PyDataset | Any) -> keras.utils.PyDataset | Any:
    """Batches ``(x (batch, size, size, 3), y (batch,))`` as ``(x, {"logits": y, "aux_logits": y})`` for a
    model with an auxiliary head: a :class:`PairedTargets` of a ``PyDataset``, or the mapped
    ``tf.data.Dataset``."""
    if isinstance(batches, keras.utils.PyDataset):
        return PairedTargets(batches)
    return batches.map(lambda x, y: (x, {"logits": y, "aux_logits": y}))


class PairedTargets(keras.utils.PyDataset):
    """Repeats the labels of a batch stream for a model's main and auxiliary outputs, with its workers.

    Batches ``(x, y)`` of ``batches`` become ``(x, {"logits": y, "aux_logits": y})``.
    """

    def __init__(self, batches: keras.utils.PyDataset):
        super().__init__(
            workers=batches.workers,
            use_multiprocessing=batches.use_multiprocessing,
            max_queue_size=batches.max_queue_size,
        )
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        x, y = self.batches[index]
        return x, {"logits": y, "aux_logits": y}

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

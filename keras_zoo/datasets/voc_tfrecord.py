"""DeepLab's VOC tfrecords (``build_voc2012_data.py`` format): writing from a VOCdevkit folder and reading.

Each record is a ``tf.train.Example`` with ``image/encoded`` (the JPEG file's bytes), ``image/filename``,
``image/format`` ("jpeg"), ``image/height``, ``image/width``, ``image/channels`` (3),
``image/segmentation/class/encoded`` (single-channel PNG of class indices) and
``image/segmentation/class/format`` ("png"). Each split is written as 4 shards named
``{split}-{shard:05d}-of-00004.tfrecord``. TensorFlow is imported lazily, only by these functions.

Training reads the shards as a stream (:func:`training_dataset`): records are shuffled, decoded and augmented
in parallel ``tf.data`` maps with DeepLab's augmentation written in ``tf.image`` (:func:`augment_tf`), every
random choice stateless and seeded by (seed, record index), so the stream does not depend on the number of
workers. Evaluation splits are small enough to load whole (:func:`load_tfrecord_split`).
"""

from __future__ import annotations

import glob
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from keras_zoo.datasets import tfdata
from keras_zoo.datasets.shards import check_shard_set, shard_output
from keras_zoo.datasets.voc import (
    MEAN_PIXEL,
    SCALES,
    VOID_LABEL,
    check_labels,
    find_voc_root,
    label_path,
    read_label,
    read_split_ids,
)
from keras_zoo.errors import ConfigError, data_error, require_file

logger = logging.getLogger(__name__)


def shard_name(split: str, shard: int, num_shards: int) -> str:
    """``train-00001-of-00004.tfrecord``."""
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def _png_bytes(labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def prepare_voc(
    voc_root: str | os.PathLike,
    output_dir: str | os.PathLike,
    splits: Sequence[str] = ("train", "val"),
    num_shards: int = 4,
    overwrite: bool = False,
) -> dict[str, list[str]]:
    """Writes DeepLab tfrecords for ``splits`` of a VOCdevkit folder (``keras-zoo prepare voc``).

    Labels are read as class indices (palette PNGs through Pillow mode "P", or ``SegmentationClassRaw``)
    and stored as greyscale PNGs, as the reference's ``remove_gt_colormap`` output; images keep their JPEG
    bytes.

    Args:
        voc_root: VOCdevkit folder (or its VOC2012 subfolder).
        output_dir: folder for the shards (created).
        splits: list names in ``ImageSets/Segmentation`` (train, val, trainval, train_aug).
        num_shards: shards per split (4 in the reference).
        overwrite: replace the shards of ``splits`` already in ``output_dir`` (and remove their old shards
            that the new set does not replace); without it such shards are refused.

    Returns:
        ``{split: [shard paths]}``.

    Every image is decoded whole, so a truncated or corrupt JPEG is named here. The shards are written to
    temporary files and renamed into place when all are complete (:func:`keras_zoo.datasets.shards.shard_output`):
    a failure leaves nothing of this run behind.

    Raises:
        DataError: a missing folder, list, image or label, an undecodable image, or a label value outside
            0..20 / 255.
        ConfigError: ``num_shards`` < 1, ``output_dir`` is a file, or it holds shards of ``splits`` and not
            ``overwrite``.
    """
    tf = tfdata.tensorflow()

    if num_shards < 1:
        raise ConfigError(f"--num-shards must be >= 1, got {num_shards}")
    root = find_voc_root(voc_root)
    splits = list(dict.fromkeys(splits))

    def feature(value):
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    written: dict[str, list[str]] = {}
    with shard_output(output_dir, splits, ".tfrecord", overwrite) as stage:
        for split in splits:
            written[split] = _write_split(tf, feature, root, output_dir, split, num_shards, stage)
    return written


def _decoded_size(image_path: str, encoded: bytes) -> tuple[int, int]:
    """(width, height) of the JPEG bytes, decoded whole; DataError naming the file when that fails."""
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            image.load()  # decodes every byte: a truncated or corrupt file fails here, not in training
            return image.size
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise many types for corrupt files
        raise data_error(image_path, f"unreadable JPEG ({error})") from None


def _write_split(tf, feature, root: str, output_dir, split: str, num_shards: int, stage) -> list[str]:
    ids = read_split_ids(root, split)
    per_shard = math.ceil(len(ids) / num_shards)
    paths = []
    for shard in range(num_shards):
        path = os.path.join(os.fspath(output_dir), shard_name(split, shard, num_shards))
        with tf.io.TFRecordWriter(stage(path)) as writer:
            for image_id in ids[shard * per_shard : (shard + 1) * per_shard]:
                image_path = require_file(os.path.join(root, "JPEGImages", f"{image_id}.jpg"), "image")
                with open(image_path, "rb") as handle:
                    encoded = handle.read()
                width, height = _decoded_size(image_path, encoded)
                labels = read_label(label_path(root, image_id))
                if labels.shape != (height, width):
                    raise data_error(
                        label_path(root, image_id),
                        f"label size {labels.shape} != image ({height}, {width})",
                    )
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "image/encoded": feature(encoded),
                            "image/filename": feature(f"{image_id}.jpg".encode()),
                            "image/format": feature(b"jpeg"),
                            "image/height": feature(height),
                            "image/width": feature(width),
                            "image/channels": feature(3),
                            "image/segmentation/class/encoded": feature(_png_bytes(labels)),
                            "image/segmentation/class/format": feature(b"png"),
                        }
                    )
                )
                writer.write(example.SerializeToString())
        paths.append(path)
    logger.info("wrote %d %s examples to %d shards in %s", len(ids), split, num_shards, output_dir)
    return paths


def tfrecord_files(data_dir: str | os.PathLike, split: str) -> list[str]:
    """The shards of ``split`` in ``data_dir`` (``{split}-*.tfrecord``), sorted; DataError when none, or when
    the ``{split}-NNNNN-of-NNNNN.tfrecord`` shards disagree on the shard count or miss one."""
    files = sorted(glob.glob(os.path.join(os.fspath(data_dir), f"{split}-*.tfrecord")))
    if not files:
        raise data_error(data_dir, f"no {split}-*.tfrecord shards")
    check_shard_set(data_dir, split, files, ".tfrecord")
    return files


def decode_record(record):
    """Parses and decodes one serialized example into ``(filename, image (H, W, 3), label (H, W))``, uint8."""
    tf = tfdata.tensorflow()

    spec = {
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/height": tf.io.FixedLenFeature((), tf.int64),
        "image/width": tf.io.FixedLenFeature((), tf.int64),
        "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    }
    parsed = tf.io.parse_single_example(record, spec)
    image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)[..., 0]
    return parsed["image/filename"], image, label


def tfrecord_dataset(files: Sequence[str]):
    """A ``tf.data.Dataset`` of :func:`decode_record` outputs, decoded in parallel."""
    tf = tfdata.tensorflow()

    return tf.data.TFRecordDataset(list(files)).map(decode_record, num_parallel_calls=tf.data.AUTOTUNE)


def augment_tf(image, label, seed, crop_size: Sequence[int] = (513, 513), scales: Sequence[float] = SCALES):
    """DeepLab's training augmentation in ``tf.image``, the steps of :func:`keras_zoo.datasets.voc.augment`.

    A scale drawn from ``scales`` (bilinear resize with antialiasing for the image, rounded to whole grey
    levels, nearest for the label, sizes rounded as ``round(size * scale)``), padding at the bottom/right to the crop with the mean pixel and
    void, a uniform crop position and a left-right flip with probability 1/2; then the image is mapped to
    [-1, 1] as ``preprocess_input`` does. Pillow's and TensorFlow's bilinear filters differ slightly.

    Args:
        image: uint8 tensor (H, W, 3).
        label: uint8 tensor (H, W).
        seed: int pair; every random choice is stateless and derived from it.
        crop_size: (height, width) of the output.
        scales: scale factors drawn uniformly.

    Returns:
        ``(image, label)``: float32 (height, width, 3) in [-1, 1] and uint8 (height, width).
    """
    tf = tfdata.tensorflow()

    scale_seed, top_seed, left_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(tf.stack(seed), tf.int64), num=4)
    )
    height, width = (int(s) for s in crop_size[:2])
    choice = tf.random.stateless_uniform([], scale_seed, 0, len(scales), dtype=tf.int32)
    scale = tf.gather(tf.constant(scales, tf.float64), choice)
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float64) * scale), tf.int32))
    # rounded to whole grey levels, as Pillow's uint8 resize: the filter may overshoot 255 by a little
    image = tf.clip_by_value(
        tf.round(tf.image.resize(image, size, method="bilinear", antialias=True)), 0, 255
    )
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    pad_h, pad_w = tf.maximum(height - size[0], 0), tf.maximum(width - size[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=float(round(MEAN_PIXEL)))
    label = tf.pad(label, [[0, pad_h], [0, pad_w]], constant_values=VOID_LABEL)
    top = tf.random.stateless_uniform([], top_seed, 0, size[0] + pad_h - height + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, size[1] + pad_w - width + 1, dtype=tf.int32)
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    if_flip = tf.random.stateless_uniform([], flip_seed) < 0.5
    image = tf.cond(if_flip, lambda: image[:, ::-1], lambda: image)
    label = tf.cond(if_flip, lambda: label[:, ::-1], lambda: label)
    image.set_shape((height, width, 3))
    label.set_shape((height, width))
    return image / 127.5 - 1.0, label


def training_dataset(
    data_dir: str | os.PathLike,
    split: str,
    batch_size: int,
    steps: int,
    crop_size: Sequence[int] = (513, 513),
    scales: Sequence[float] = SCALES,
    seed: int = 0,
    workers: int | None = None,
    shuffle_buffer: int = 2_000,
):
    """The training stream of ``split``'s shards: shuffled, decoded and augmented in parallel, batched.

    Shards are interleaved in a seeded order, records shuffled through a seeded buffer and repeated; record
    ``i`` of the stream is augmented by :func:`augment_tf` with the seed ``(seed, i)``. Every parallel step
    keeps its order, so the batches do not depend on ``workers``.

    Args:
        data_dir: folder of ``{split}-*.tfrecord`` shards.
        split: split name.
        batch_size: crops per batch.
        steps: batches per epoch (the stream is cut to ``steps`` batches).
        crop_size: (height, width) of the crops.
        scales: augmentation scales.
        seed: seed of the shard order, the shuffle buffer and the augmentation.
        workers: decode and augmentation threads (None: every core but one; 0: one element at a time).
        shuffle_buffer: records in the shuffle buffer.

    Returns:
        ``tf.data.Dataset`` of (float32 images (batch, height, width, 3) in [-1, 1], uint8 labels
        (batch, height, width)).

    Raises:
        DataError: no shards of ``split``.
    """
    tf = tfdata.tensorflow()

    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be >= 1, got {batch_size} and {steps}")
    files = tfrecord_files(data_dir, split)
    calls = tfdata.parallel_calls(workers)
    dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    dataset = tfdata.read_records(dataset, min(4, len(files)), workers)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat().enumerate()

    def decode_and_augment(index, record):
        _, image, label = decode_record(record)
        return augment_tf(image, label, (seed, index), crop_size, scales)

    dataset = dataset.map(decode_and_augment, num_parallel_calls=calls)
    return tfdata.finish(dataset.batch(batch_size, drop_remainder=True).take(steps), workers)


def load_tfrecord_labels(data_dir: str | os.PathLike, split: str) -> list[np.ndarray]:
    """The labels of ``split`` only (uint8 (H, W) each, checked), decoded in parallel without the images."""
    tf = tfdata.tensorflow()

    files = tfrecord_files(data_dir, split)
    spec = {"image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string)}

    def decode(record):
        parsed = tf.io.parse_single_example(record, spec)
        return tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)[..., 0]

    dataset = tf.data.TFRecordDataset(files).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    try:
        return [check_labels(label, f"{data_dir}/{split}") for label in dataset.as_numpy_iterator()]
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise data_error(files[0], f"corrupt {split} tfrecords ({error.message.splitlines()[0]})") from error


def read_tfrecords(data_dir: str | os.PathLike, split: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ``(filename, image, label)`` NumPy arrays from the shards of ``split``, labels checked.

    Raises:
        DataError: no shards, a corrupt record, or label values outside 0..20 / 255 (naming the file).
    """
    tf = tfdata.tensorflow()

    files = tfrecord_files(data_dir, split)
    try:
        for filename, image, label in tfrecord_dataset(files).as_numpy_iterator():
            name = filename.decode()
            yield name, image, check_labels(label, f"{data_dir}/{split} record {name}")
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise data_error(files[0], f"corrupt {split} tfrecords ({error.message.splitlines()[0]})") from error


def load_tfrecord_split(data_dir: str | os.PathLike, split: str) -> tuple[list[str], list, list]:
    """All records of ``split`` in memory: ``(filenames, images, labels)``."""
    names, images, labels = [], [], []
    for name, image, label in read_tfrecords(data_dir, split):
        names.append(name)
        images.append(image)
        labels.append(label)
    return names, images, labels

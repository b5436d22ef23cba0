"""DeepLab's VOC tfrecords (``build_voc2012_data.py`` format): writing from a VOCdevkit folder and reading.

Each record is a ``tf.train.Example`` with ``image/encoded`` (the JPEG file's bytes), ``image/filename``,
``image/format`` ("jpeg"), ``image/height``, ``image/width``, ``image/channels`` (3),
``image/segmentation/class/encoded`` (single-channel PNG of class indices) and
``image/segmentation/class/format`` ("png"). Each split is written as 4 shards named
``{split}-{shard:05d}-of-00004.tfrecord``. TensorFlow is imported lazily, only by these functions.
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

from keras_zoo.datasets.voc import check_labels, find_voc_root, label_path, read_label, read_split_ids
from keras_zoo.errors import DataError, data_error, require_file

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

    Returns:
        ``{split: [shard paths]}``.

    Raises:
        DataError: a missing folder, list, image or label, or a label value outside 0..20 / 255.
    """
    import tensorflow as tf

    if num_shards < 1:
        raise DataError(f"num_shards must be >= 1, got {num_shards}")
    root = find_voc_root(voc_root)
    os.makedirs(output_dir, exist_ok=True)

    def feature(value):
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    written: dict[str, list[str]] = {}
    for split in splits:
        ids = read_split_ids(root, split)
        per_shard = math.ceil(len(ids) / num_shards)
        paths = []
        for shard in range(num_shards):
            path = os.path.join(output_dir, shard_name(split, shard, num_shards))
            with tf.io.TFRecordWriter(path) as writer:
                for image_id in ids[shard * per_shard : (shard + 1) * per_shard]:
                    image_path = require_file(os.path.join(root, "JPEGImages", f"{image_id}.jpg"), "image")
                    with open(image_path, "rb") as handle:
                        encoded = handle.read()
                    try:
                        with Image.open(io.BytesIO(encoded)) as image:
                            width, height = image.size
                    except OSError as error:
                        raise data_error(image_path, f"unreadable JPEG ({error})") from error
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
        written[split] = paths
    return written


def tfrecord_files(data_dir: str | os.PathLike, split: str) -> list[str]:
    """The shards of ``split`` in ``data_dir`` (``{split}-*.tfrecord``), sorted; DataError when none."""
    files = sorted(glob.glob(os.path.join(os.fspath(data_dir), f"{split}-*.tfrecord")))
    if not files:
        raise data_error(data_dir, f"no {split}-*.tfrecord shards")
    return files


def tfrecord_dataset(files: Sequence[str]):
    """A ``tf.data.Dataset`` of ``(filename, image uint8 (H, W, 3), label uint8 (H, W))`` decoded in parallel."""
    import tensorflow as tf

    spec = {
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/height": tf.io.FixedLenFeature((), tf.int64),
        "image/width": tf.io.FixedLenFeature((), tf.int64),
        "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    }

    def decode(record):
        parsed = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
        label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)[..., 0]
        return parsed["image/filename"], image, label

    return tf.data.TFRecordDataset(list(files)).map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def read_tfrecords(data_dir: str | os.PathLike, split: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ``(filename, image, label)`` NumPy arrays from the shards of ``split``, labels checked.

    Raises:
        DataError: no shards, a corrupt record, or label values outside 0..20 / 255 (naming the file).
    """
    import tensorflow as tf

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

"""ImageNet in the TF-slim / TPU tfrecord format: writer (``prepare_imagenet``) and tf.data reader.

Shards are named ``train-00000-of-00008`` / ``validation-00000-of-00002``. Each ``tf.train.Example`` holds
``image/encoded`` (JPEG bytes), ``image/format``, ``image/class/label`` (1..1000; 0 is the background
class of the 1001-way models), ``image/class/synset``, ``image/class/text``, ``image/height``,
``image/width``, ``image/filename`` and empty ``image/object/bbox/{xmin,ymin,xmax,ymax}`` lists.
TensorFlow is imported lazily, so the rest of keras_zoo works without it.
"""

from __future__ import annotations

import glob
import io
import logging
import os
from collections.abc import Sequence

import numpy as np

from keras_zoo.datasets import tfdata
from keras_zoo.datasets.imagenet import (
    AREA_RANGE,
    ASPECT_RANGE,
    BRIGHTNESS_DELTA,
    EVAL_CENTRAL_FRACTION,
    SATURATION_RANGE,
    check_classes,
    list_image_folder,
    open_rgb_image,
    synsets,
)
from keras_zoo.datasets.shards import check_shard_set, record_count, shard_output
from keras_zoo.errors import ConfigError, data_error, require_dir

log = logging.getLogger(__name__)
SPLITS = {"train": ("train",), "validation": ("validation", "val")}
NUM_TRAIN_IMAGES = 1_281_167  # ImageNet 2012 training images
COUNT_LIMIT_BYTES = 2 << 30  # training shards up to this size are counted record by record


def _jpeg_bytes(path: str) -> tuple[bytes, int, int]:
    """The file's bytes if it is a JPEG, else the image re-encoded as JPEG; with its height and width."""
    image = open_rgb_image(path)
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"\xff\xd8"):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        data = buffer.getvalue()
    return data, image.height, image.width


def _example(path: str, label: int):
    tf = tfdata.tensorflow()
    data, height, width = _jpeg_bytes(path)
    wnid, name = synsets()[label - 1]

    def feature(values, kind):
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if kind == "int":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    features = {
        "image/encoded": feature([data], "bytes"),
        "image/format": feature([b"JPEG"], "bytes"),
        "image/colorspace": feature([b"RGB"], "bytes"),
        "image/channels": feature([3], "int"),
        "image/height": feature([height], "int"),
        "image/width": feature([width], "int"),
        "image/filename": feature([os.path.basename(path).encode()], "bytes"),
        "image/class/label": feature([label], "int"),
        "image/class/synset": feature([wnid.encode()], "bytes"),
        "image/class/text": feature([name.encode()], "bytes"),
    }
    for key in ("xmin", "ymin", "xmax", "ymax"):
        features[f"image/object/bbox/{key}"] = feature([], "float")
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_shards(
    paths,
    labels,
    output_dir: str,
    split: str,
    num_shards: int,
    seed: int = 0,
    stage=None,
    overwrite: bool = False,
) -> list[str]:
    """Writes (path, 1..1000 label) pairs as ``<split>-XXXXX-of-NNNNN`` shards, in a seeded random order.

    ``stage`` (from :func:`keras_zoo.datasets.shards.shard_output`) gives the temporary file of each shard;
    without it the split is written through its own ``shard_output`` (refusing existing shards of ``split``
    unless ``overwrite``), so a failure leaves none of its shards or temporary files behind.
    """
    tf = tfdata.tensorflow()
    if num_shards < 1:
        raise ConfigError(f"--num-shards must be >= 1, got {num_shards}")
    if stage is None:
        with shard_output(output_dir, [split], "", overwrite) as own_stage:
            return write_shards(paths, labels, output_dir, split, num_shards, seed, own_stage)
    num_shards = min(num_shards, len(paths))
    order = np.random.default_rng(seed).permutation(len(paths))
    files = []
    for shard in range(num_shards):
        name = os.path.join(output_dir, f"{split}-{shard:05d}-of-{num_shards:05d}")
        with tf.io.TFRecordWriter(stage(name)) as writer:
            for i in order[shard::num_shards]:
                writer.write(_example(paths[i], int(labels[i])).SerializeToString())
        files.append(name)
    log.info("wrote %d %s images to %d shards in %s", len(paths), split, num_shards, output_dir)
    return files


def prepare_imagenet(
    folder: str | os.PathLike, output_dir: str | os.PathLike, num_shards: int = 8, overwrite: bool = False
) -> dict:
    """Writes TF-slim/TPU tfrecords from an ImageNet class-folder tree.

    ``folder/train`` becomes ``train-*`` and ``folder/val`` (or ``folder/validation``) ``validation-*``
    (validation gets ``max(1, num_shards // 8)`` shards). A folder that is itself a ``<wnid>/*.JPEG`` tree
    is written as both splits (useful for small sample sets and pipeline checks).

    Args:
        folder: the image tree.
        output_dir: created if needed; it may lie inside ``folder`` (it is not taken for a class folder).
        num_shards: shards of the train split (at most one per image).
        overwrite: replace the ``train-*`` / ``validation-*`` shards already in ``output_dir`` (and remove
            their old shards that the new set does not replace); without it such shards are refused.

    Shards are written to temporary files and renamed into place when all are complete, so a failure leaves
    nothing of this run behind (:func:`keras_zoo.datasets.shards.shard_output`).

    Returns:
        ``{"train": [files], "validation": [files]}`` for the splits written.

    Raises:
        DataError: a missing folder, a non-wnid class folder, no images, or an unreadable image.
        ConfigError: ``num_shards`` < 1, ``output_dir`` is a file, or it holds shards of a split written and
            not ``overwrite``.
    """
    if num_shards < 1:
        raise ConfigError(f"--num-shards must be >= 1, got {num_shards}")
    folder = require_dir(folder, "ImageNet image folder")
    output_dir = os.fspath(output_dir)
    sources = {}
    for split, names in SPLITS.items():
        for name in names:
            if os.path.isdir(os.path.join(folder, name)):
                sources[split] = os.path.join(folder, name)
                break
    if not sources:
        sources = {"train": folder, "validation": folder}
    written = {}
    with shard_output(output_dir, list(sources), "", overwrite) as stage:
        for split, source in sources.items():
            paths, labels = list_image_folder(source, classes=1001, skip=(output_dir,))
            shards = num_shards if split == "train" else max(1, num_shards // 8)
            written[split] = write_shards(paths, labels, output_dir, split, shards, stage=stage)
    return written


def tfrecord_files(data_dir: str | os.PathLike, split: str) -> list[str]:
    """The sorted ``<split>-*`` shard files of ``data_dir``; raises DataError when there are none, or when the
    ``<split>-NNNNN-of-NNNNN`` shards disagree on the shard count or miss one."""
    data_dir = require_dir(data_dir, "tfrecord folder")
    files = sorted(f for f in glob.glob(os.path.join(data_dir, f"{split}-*")) if not f.endswith(".tmp"))
    if not files:
        raise data_error(data_dir, f"no {split}-* tfrecord shards found")
    check_shard_set(data_dir, split, files, "")
    return files


def train_epoch_steps(data_dir: str | os.PathLike, batch_size: int) -> int | None:
    """Batches of one pass over the ``train-*`` shards: ImageNet's training set size / ``batch_size`` for
    shards over 2 GiB (the full set's 1.28 M records would cost a disk seek each to count), None (count the
    records) otherwise."""
    files = tfrecord_files(data_dir, "train")
    if sum(os.path.getsize(f) for f in files) > COUNT_LIMIT_BYTES:
        return NUM_TRAIN_IMAGES // batch_size
    return None


def _record_count(files: Sequence[str]) -> int:
    """Records in the tfrecord ``files``, from their length fields (:func:`shards.record_count`)."""
    return sum(record_count(f) for f in files)


def parse_example(serialized):
    """Parses one serialized Example into (JPEG bytes, int32 label 0..1000)."""
    tf = tfdata.tensorflow()
    features = tf.io.parse_single_example(
        serialized,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    return features["image/encoded"], tf.cast(features["image/class/label"], tf.int32)


def preprocess_train_tf(jpeg, size: int, color_distort: bool = True, seed=(0, 0)):
    """Inception training preprocessing in tf.image (same steps as the NumPy version).

    Every random choice is stateless and derived from ``seed`` (an int pair, e.g. ``(run_seed, record_index)``),
    so the pipeline gives the same crops on every run and also works with op determinism enabled.
    """
    tf = tfdata.tensorflow()
    crop_seed, flip_seed, brightness_seed, saturation_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.stack([tf.cast(part, tf.int64) for part in seed]), num=4)
    )
    image = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=crop_seed,
        min_object_covered=AREA_RANGE[0],
        aspect_ratio_range=ASPECT_RANGE,
        area_range=AREA_RANGE,
        max_attempts=100,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    image = tf.image.resize(image, (size, size), method="bilinear")
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if color_distort:
        image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA, brightness_seed)
        image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE, seed=saturation_seed)
        image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape((size, size, 3))
    return (image - 0.5) * 2.0


def preprocess_eval_tf(jpeg, size: int):
    """Inception evaluation preprocessing in tf.image: central 87.5% crop, bilinear resize, [-1, 1]."""
    tf = tfdata.tensorflow()
    image = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)
    image = tf.image.central_crop(image, EVAL_CENTRAL_FRACTION)
    image = tf.image.resize(image, (size, size), method="bilinear")
    image.set_shape((size, size, 3))
    return (image - 0.5) * 2.0


def imagenet_tfrecord_dataset(
    data_dir: str | os.PathLike,
    split: str,
    batch_size: int,
    image_size: int,
    training: bool,
    classes: int = 1001,
    seed: int = 0,
    steps: int | None = None,
    color_distort: bool = True,
    shuffle_buffer: int = 10_000,
    workers: int | None = None,
):
    """A ``tf.data.Dataset`` of (float32 images (batch, size, size, 3) in [-1, 1], int32 labels).

    Training data is shuffled (files and records), repeated and cut to ``steps`` batches per epoch (default:
    one pass); evaluation data is read once in order. Labels are 1..1000 with ``classes=1001`` and 0..999
    with 1000. Record ``i`` of the training stream is augmented with the seed ``(seed, i)`` and every parallel
    step keeps its order, so the batches do not depend on ``workers``.

    Args:
        data_dir: folder of ``train-*`` / ``validation-*`` shards.
        split: ``"train"`` or ``"validation"``.
        batch_size: images per batch.
        image_size: output height and width.
        training: Inception training preprocessing on a shuffled, repeated stream; else evaluation
            preprocessing, in order, once.
        classes: 1001 (labels 1..1000) or 1000 (labels 0..999).
        seed: seed of the shard order, the shuffle buffer and the augmentation.
        steps: training batches per epoch (default: one pass over the records).
        color_distort: apply the colour distortion in training.
        shuffle_buffer: records in the training shuffle buffer.
        workers: decoding and augmentation threads (None: every core but one; 0: one record at a time, no
            prefetch); see :func:`keras_zoo.datasets.tfdata.finish`.
    """
    tf = tfdata.tensorflow()
    offset = check_classes(classes)
    files = tfrecord_files(data_dir, split)
    calls = tfdata.parallel_calls(workers)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = tfdata.read_records(dataset, min(8, len(files)), workers)
    dataset = dataset.map(parse_example)
    if offset == 0:
        dataset = dataset.map(lambda jpeg, label: (jpeg, label - 1))
    if training:
        if steps is None:
            steps = max(1, _record_count(files) // batch_size)
        dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat().enumerate()
        dataset = dataset.map(
            lambda index, record: (
                preprocess_train_tf(record[0], image_size, color_distort, seed=(seed, index)),
                record[1],
            ),
            num_parallel_calls=calls,
        )
        dataset = dataset.batch(batch_size, drop_remainder=True).take(steps)
    else:
        dataset = dataset.map(
            lambda jpeg, label: (preprocess_eval_tf(jpeg, image_size), label),
            num_parallel_calls=calls,
        )
        batches = -(-_record_count(files) // batch_size)  # Keras then knows where the split ends
        dataset = dataset.batch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
    return tfdata.finish(dataset, workers)

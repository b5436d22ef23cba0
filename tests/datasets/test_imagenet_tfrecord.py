import csv

import numpy as np
import pytest

from keras_zoo.errors import DataError
from tests.datasets.test_imagenet import write_tree

tf = pytest.importorskip("tensorflow")
records = pytest.importorskip("keras_zoo.datasets.imagenet_tfrecord")


def test_prepare_writes_slim_examples(tmp_path):
    truth = write_tree(tmp_path / "images", size=(48, 40))
    written = records.prepare_imagenet(tmp_path / "images", tmp_path / "out", num_shards=2)
    assert [p.rsplit("/", 1)[1] for p in written["train"]] == ["train-00000-of-00002", "train-00001-of-00002"]
    assert len(written["validation"]) == 1
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(written["train"])]
    assert len(examples) == 3
    labels = sorted(e.features.feature["image/class/label"].int64_list.value[0] for e in examples)
    assert labels == sorted(i + 1 for i in truth.values())  # 1..1000, 0 = background
    feature = examples[0].features.feature
    assert feature["image/format"].bytes_list.value[0] == b"JPEG"
    assert feature["image/class/synset"].bytes_list.value[0].decode().startswith("n")
    assert list(feature["image/object/bbox/xmin"].float_list.value) == []


def test_record_count_reads_the_length_fields_as_tensorflow_reads_the_records(tmp_path):
    from keras_zoo.datasets.shards import record_count

    rng = np.random.default_rng(0)
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for size in [0, 1, 300, 70_000, *rng.integers(0, 2_000, 50)]:
            writer.write(rng.bytes(int(size)))
    assert record_count(path) == sum(1 for _ in tf.data.TFRecordDataset([path])) == 54
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert record_count(tmp_path / "empty.tfrecord") == 0
    data = (tmp_path / "r.tfrecord").read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-3])
    with pytest.raises(DataError, match=r"cut\.tfrecord: ends inside record number 54"):
        record_count(tmp_path / "cut.tfrecord")
    (tmp_path / "short.tfrecord").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DataError, match=r"short\.tfrecord: ends inside record number 1"):
        record_count(tmp_path / "short.tfrecord")
    (tmp_path / "text.tfrecord").write_text("not a tfrecord file at all")
    with pytest.raises(DataError, match=r"text\.tfrecord: ends inside record number 1"):
        record_count(tmp_path / "text.tfrecord")


def test_tfrecord_dataset_labels_and_preprocessing(tmp_path, monkeypatch):
    monkeypatch.setattr(
        records, "COUNT_LIMIT_BYTES", 1
    )  # validation is counted at any size (ImageNet's 6.4 GB)
    truth = write_tree(tmp_path / "images", size=(48, 40))
    records.prepare_imagenet(tmp_path / "images", tmp_path / "out", num_shards=2)
    val = records.imagenet_tfrecord_dataset(
        tmp_path / "out", "validation", 2, 24, training=False, classes=1000
    )
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in val])
    assert len(val) == len(xs) == 2  # known to Keras: no "ran out of data" warning at the end of validation
    assert sorted(np.concatenate(ys).tolist()) == sorted(truth.values())
    x = np.concatenate(xs)
    assert x.shape == (3, 24, 24, 3) and x.min() >= -1 and x.max() <= 1
    train = records.imagenet_tfrecord_dataset(
        tmp_path / "out", "train", 2, 24, training=True, seed=1, steps=3
    )
    batches = list(train)
    assert len(batches) == 3 and len(train) == 3
    for x, y in batches:
        assert x.shape == (2, 24, 24, 3) and np.all(np.abs(x.numpy()) <= 1.0)
        assert set(y.numpy().tolist()) <= {i + 1 for i in truth.values()}
    with pytest.raises(DataError, match="no train"):
        records.tfrecord_files(tmp_path / "images", "train")


def test_real_samples_through_tfrecords(shared_data, tmp_path):
    root = shared_data / "imagenet_samples"
    truth = {row["wnid"]: int(row["label_index"]) for row in csv.DictReader(open(root / "labels.csv"))}
    written = records.prepare_imagenet(root / "images", tmp_path, num_shards=4)
    dataset = tf.data.TFRecordDataset(written["validation"]).map(records.parse_example)
    seen = 0
    for serialized in tf.data.TFRecordDataset(written["validation"]):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        wnid = feature["image/class/synset"].bytes_list.value[0].decode()
        assert feature["image/class/label"].int64_list.value[0] == truth[wnid] + 1
        seen += 1
    assert seen == 50
    jpeg, label = next(iter(dataset))
    x = records.preprocess_train_tf(jpeg, 64).numpy()
    assert x.shape == (64, 64, 3) and -1 <= x.min() and x.max() <= 1


def test_training_stream_is_repeatable_under_op_determinism(tmp_path):
    """`--deterministic` enables TF op determinism, which rejects stateful random ops in the pipeline."""
    write_tree(tmp_path / "images", size=(48, 40))
    records.prepare_imagenet(tmp_path / "images", tmp_path / "out", num_shards=2)
    tf.config.experimental.enable_op_determinism()
    try:
        runs = [
            [
                x.numpy()
                for x, _ in records.imagenet_tfrecord_dataset(
                    tmp_path / "out", "train", 2, 24, training=True, seed=seed, steps=2
                )
            ]
            for seed in (3, 3, 4)
        ]
    finally:
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))
    assert not np.array_equal(np.stack(runs[0]), np.stack(runs[2]))

"""``train.py --workers``: validated, and handed to every network's training reader."""

import json

import pytest

from keras_zoo.cli.train import main, parse_args
from tests.datasets.test_voc import _write_voc

SMALL = {
    "unet": ["--input-size", "32", "32"],
    "genesis": ["--input-size", "16", "16", "8", "--cubes", "8"],
    "cascadenet": ["--input-size", "32", "32", "--samples", "6"],
    "deeplabv3plus": ["--input-size", "33", "33", "--synthetic-samples", "4"],
    "amoebanet": ["--input-size", "32", "--synthetic-samples", "8"],
}


@pytest.mark.parametrize("value", ["-1", "-4"])
def test_negative_workers_are_a_one_line_user_error(tmp_path, capsys, value):
    argv = ["--model", "unet", *SMALL["unet"], "--workers", value, "--output", str(tmp_path / "run")]
    assert main([*argv, "--epochs", "1", "--steps-per-epoch", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"error: --workers must be an integer >= 0, got {value}"]


@pytest.mark.parametrize("model", [*sorted(SMALL), "amoebanet --aux-head"])
def test_every_training_reader_gets_the_workers(model):
    model, *extra = model.split()
    argv = ["--model", model, *SMALL[model], *extra, "--steps-per-epoch", "2", "--workers", "3"]
    args, task = parse_args(argv)
    assert args.workers == 3
    train = task.load_data(args).train
    assert train.workers == 3 and train.max_queue_size == 6
    args, task = parse_args(["--model", model, *SMALL[model], "--steps-per-epoch", "2"])
    assert args.workers is None  # every core but one, chosen by the reader


def _voc_records(tmp_path) -> list[str]:
    """Tiny VOC tfrecords; returns the train CLI arguments of a tiny DeepLab run on them."""
    pytest.importorskip("tensorflow")
    from keras_zoo.datasets.voc_tfrecord import prepare_voc

    _write_voc(tmp_path / "voc", ["a", "b", "c"], size=(30, 26))
    prepare_voc(tmp_path / "voc", tmp_path / "records", splits=["train"])
    tiny = ["--input-size", "33", "33", "--filters", "2", "--middle-units", "1", "--backbone", "xception41"]
    argv = ["--model", "deeplabv3plus", *tiny, "--data", str(tmp_path / "records"), "--train-split", "train"]
    return [*argv, "--val-split", "train", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2"]


def test_streamed_tfrecord_labels_are_checked_against_classes(tmp_path, capsys):
    argv = [*_voc_records(tmp_path), "--classes", "3", "--output", str(tmp_path / "bad")]
    assert main(argv) == 2
    assert "train record 0: label class" in capsys.readouterr().err


@pytest.mark.large
def test_deeplab_trains_from_streamed_tfrecords_with_workers(tmp_path):
    """VOC tfrecords: the training split streamed by tf.data into fit, with balanced class weights."""
    argv = [*_voc_records(tmp_path), "--workers", "2", "--class-weights", "balanced", "--verbose", "0"]
    assert main([*argv, "--output", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "(streamed/3), tf.data" in summary["data"]
    assert 0.0 <= summary["metrics"]["val_mean_iou"] <= 1.0

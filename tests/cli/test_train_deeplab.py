"""The deeplabv3plus train recipe: defaults, data sources, evaluation, and one tiny end-to-end run."""

import argparse
import json

import keras
import numpy as np
import pytest

from keras_zoo.cli.tasks import get_task
from keras_zoo.cli.train import main
from keras_zoo.datasets.voc import load_split
from keras_zoo.errors import ConfigError, DataError
from keras_zoo.inference.deeplab import pad_for_eval, scale_size
from keras_zoo.losses.segmentation_ignore import balanced_class_weights
from tests.datasets.test_voc import _write_voc

TINY = ["--input-size", "33", "33", "--filters", "2", "--middle-units", "1", "--backbone", "xception41"]


def task_args(task, argv):
    parser = argparse.ArgumentParser()
    for flag in (
        "--data",
        "--steps-per-epoch",
        "--lr",
        "--filters",
        "--batch-size",
        "--epochs",
        "--seed",
        "--weights",
    ):
        parser.add_argument(
            flag, type=None if flag in ("--data", "--weights") else float if flag == "--lr" else int
        )
    parser.add_argument("--input-size", type=int, nargs="+")
    task.add_arguments(parser)
    parser.set_defaults(**task.defaults, seed=0)
    return parser.parse_args(argv)


def test_recipe_defaults_and_poly_schedule():
    task = get_task("deeplabv3plus")
    args = task_args(task, [])
    assert (args.batch_size, args.lr, args.input_size, args.output_stride) == (8, 1e-4, [513, 513], 16)
    assert (args.weight_decay, args.momentum, args.eval_scales, args.flip) == (4e-5, 0.9, [1.0], False)
    optimizer = task.optimizer(args, steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.9
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    total = args.epochs * 100
    for step in (0, 1000, total - 1):
        expected = 1e-4 * (1 - step / total) ** 0.9
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-4, abs=1e-12)
    assert scale_size(513, 0.75) == 385  # the reference's scale_dimension


def test_folder_and_tfrecord_sources_agree_and_eval_padding(tmp_path):
    from keras_zoo.datasets.voc_tfrecord import prepare_voc

    _write_voc(tmp_path / "voc", ["a", "b", "c"], size=(20, 27))
    prepare_voc(tmp_path / "voc", tmp_path / "rec", splits=["train"])
    names, _, labels = load_split(str(tmp_path / "voc"), "train")
    rec_names, rec_images, rec_labels = load_split(str(tmp_path / "rec"), "train")
    assert rec_names == [f"{n}.jpg" for n in names]
    np.testing.assert_array_equal(np.stack(labels), np.stack(rec_labels))
    images, padded = pad_for_eval(rec_images, rec_labels, (24, 32), rec_names)
    assert (
        images.shape == (3, 24, 32, 3) and (padded[:, 20:] == 255).all() and (images[:, :, 27:] == 128).all()
    )
    with pytest.raises(DataError, match="a.jpg.*larger"):
        pad_for_eval(rec_images, rec_labels, (16, 32), rec_names)


@pytest.mark.parametrize(
    "eval_flags",
    [["--flip"], pytest.param(["--eval-scales", "0.75", "1.0", "--flip"], marks=pytest.mark.large)],
)
def test_end_to_end_on_a_voc_folder(tmp_path, eval_flags):
    _write_voc(tmp_path / "voc", ["a", "b", "c"], size=(30, 26))
    out = tmp_path / "run"
    argv = [
        "--model", "deeplabv3plus", *TINY, "--data", str(tmp_path / "voc"), "--train-split", "train",
        "--val-split", "train", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
        *eval_flags, "--output", str(out), "--verbose", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert 0.0 <= metrics["val_mean_iou"] <= 1.0 and 0.0 <= metrics["val_pixel_accuracy"] <= 1.0
    assert "val_iou_background" in metrics
    assert (out / "previews.png").stat().st_size > 0
    assert main([*argv[:-4], "--data", str(tmp_path / "missing"), "--output", str(out / "x")]) == 2


def test_jit_on_in_mixed_precision_is_a_user_error_on_tensorflow(tmp_path, capsys):
    argv = ["--model", "deeplabv3plus", *TINY, "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2"]
    argv += ["--jit", "on", "--precision", "mixed", "--output", str(tmp_path / "run"), "--verbose", "0"]
    if keras.config.backend() != "tensorflow":
        pytest.skip("XLA's failure is TensorFlow's")
    assert main(argv) == 2
    assert "--jit on: TensorFlow's XLA fails to compile deeplabv3plus" in capsys.readouterr().err


def test_class_weights_flag_balanced_explicit_and_bad(tmp_path):
    _write_voc(tmp_path / "voc", ["a", "b"], size=(20, 24))
    task = get_task("deeplabv3plus")
    base = ["--data", str(tmp_path / "voc"), "--input-size", "24", "24", "--steps-per-epoch", "1"]
    base += ["--train-split", "train", "--val-split", "train"]
    data = task.load_data(task_args(task, base))
    assert task.loss(None, data).class_weights is None  # the reference: no weights

    data = task.load_data(task_args(task, [*base, "--class-weights", "balanced"]))
    _, _, labels = load_split(str(tmp_path / "voc"), "train")
    np.testing.assert_allclose(
        task.loss(None, data).class_weights, balanced_class_weights(labels, 21), rtol=1e-6
    )

    explicit = [str(i % 3) for i in range(21)]
    data = task.load_data(task_args(task, [*base, "--class-weights", *explicit]))
    assert task.loss(None, data).class_weights == [float(w) for w in explicit]
    for bad in (["1", "2"], ["heavy"], ["-1"] + explicit[1:]):
        with pytest.raises(ConfigError, match="--class-weights"):
            task.load_data(task_args(task, [*base, "--class-weights", *bad]))

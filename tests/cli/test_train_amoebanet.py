import argparse
import json

import keras
import numpy as np
import pytest

from keras_zoo.cli.tasks import get_task
from keras_zoo.cli.train import build_model, main
from keras_zoo.errors import ConfigError, DataError
from tests.datasets.test_imagenet import write_tree

TINY = ["--input-size", "32", "--filters", "8", "--num-cells", "3", "--batch-size", "2", "--verbose", "0"]


def task_args(task, argv):
    parser = argparse.ArgumentParser()
    for flag in ("--data", "--steps-per-epoch", "--lr", "--filters", "--batch-size", "--epochs", "--seed"):
        parser.add_argument(flag, type=None if flag == "--data" else float if flag == "--lr" else int)
    parser.add_argument("--input-size", type=int, nargs="+")
    task.add_arguments(parser)
    parser.set_defaults(**task.defaults, seed=0)
    return parser.parse_args(argv)


def test_recipe_defaults():
    task = get_task("amoebanet")
    args = task_args(task, [])
    assert (args.epochs, args.batch_size, args.lr, args.input_size) == (35, 64, 2.56, [224, 224])
    assert (args.lr_decay, args.warmup_epochs, args.label_smoothing, args.weight_decay) == (
        0.88,
        0.35,
        0.1,
        4e-5,
    )
    optimizer = task.optimizer(args, steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.epsilon) == (0.9, 0.9, 1.0)
    schedule = optimizer.get_config()["learning_rate"]["config"]
    assert schedule == {
        "initial_learning_rate": 2.56,
        "decay_steps": 100,
        "decay_rate": 0.88,
        "warmup_steps": 35,
        "min_ratio": 1e-4,
    }
    scaled = task_args(task, ["--scale-lr", "--optimizer", "momentum", "--ema", "0.9999"])
    assert task.learning_rate(scaled) == pytest.approx(2.56 * 64 / 1024)
    sgd = task.optimizer(scaled, 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.use_ema


def test_the_reference_lr_below_its_batch_is_kept_with_a_warning(caplog):
    """lr 2.56 (tuned for batch 1024) at the Ascend port's batch 64: kept, as the reference does, and named."""
    task = get_task("amoebanet")
    assert task.learning_rate(task_args(task, [])) == 2.56
    assert "lr 2.56 is the reference's, tuned for batch 1024; at batch 64 it can diverge" in caplog.text
    assert "--scale-lr gives 0.16" in caplog.text
    caplog.clear()
    for argv in (["--scale-lr"], ["--lr", "0.1"], ["--batch-size", "1024"]):
        task.learning_rate(task_args(task, argv))
    assert "can diverge" not in caplog.text


def test_aux_head_losses_and_targets(tmp_path):
    task = get_task("amoebanet")
    args = task_args(
        task,
        [
            "--filters",
            "8",
            "--num-cells",
            "3",
            "--batch-size",
            "2",
            "--input-size",
            "96",
            "--aux-head",
            "--classes",
            "10",
            "--synthetic-samples",
            "4",
        ],
    )
    model, _ = build_model(task, args, None)
    assert model.output_names == ["logits", "aux_logits"]
    losses = task.loss(args, None)
    assert losses["aux_logits"].weight == 0.4 and losses["logits"].weight == 1.0
    data = task.load_data(args)
    x, y = data.train[0]
    assert x.shape == (2, 96, 96, 3) and set(y) == {"logits", "aux_logits"}
    np.testing.assert_array_equal(y["logits"], y["aux_logits"])
    assert task.monitor(args) == ("val_logits_top1", "max")
    assert task.final_metric(args) == "val_logits_top5"
    assert task.monitor(task_args(task, [])) == ("val_top1", "max")


@pytest.mark.parametrize("classes, aux_head", [(10, True), (1001, False)])
def test_previews_caption_each_image_with_its_label_and_the_models_top_class(
    tmp_path, monkeypatch, classes, aux_head
):
    import keras_zoo.callbacks.panels as panels
    from keras_zoo.inference.amoebanet import class_label

    task = get_task("amoebanet")
    size = "96" if aux_head else "32"  # the auxiliary head needs a 5x5 map after the first cell
    argv = ["--filters", "8", "--num-cells", "3", "--batch-size", "2", "--input-size", size]
    argv += ["--classes", str(classes), "--synthetic-samples", "4", *(["--aux-head"] if aux_head else [])]
    args = task_args(task, argv)
    model, _ = build_model(task, args, None)
    data = task.load_data(args)
    captured = {}
    real = panels.save_captioned_images

    def capture(path, images, captions, **kwargs):
        captured.update(images=images, captions=captions)
        real(path, images, captions, **kwargs)

    monkeypatch.setattr(panels, "save_captioned_images", capture)
    task.save_previews(model, data, str(tmp_path / "previews.png"), args)
    assert (tmp_path / "previews.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x, y = data.val[0]
    y = y["logits"] if aux_head else y
    logits = model.predict(x, verbose=0)
    top = np.argmax(logits[0] if aux_head else logits, axis=-1)
    expected = [
        (f"label: {class_label(int(a), classes)[1]}", f"top-1: {class_label(int(b), classes)[1]}")
        for a, b in zip(y[:8], top[:8])
    ]
    assert [tuple(c.split(" (")[0].split("\n")) for c in captured["captions"]] == expected
    np.testing.assert_allclose(captured["images"], (x[:8] + 1) / 2)


def test_first_batch_of_a_tf_dataset_with_auxiliary_targets():
    tf = pytest.importorskip("tensorflow")
    from keras_zoo.cli.tasks.amoebanet import first_batch

    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    y = np.array([3, 5], np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((x, {"logits": y, "aux_logits": y + 1})).batch(2)
    images, labels = first_batch(dataset)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)


def test_data_errors(tmp_path):
    task = get_task("amoebanet")
    with pytest.raises(DataError, match="not found"):
        task.load_data(task_args(task, ["--data", str(tmp_path / "none")]))
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="train"):
        task.load_data(task_args(task, ["--data", str(tmp_path)]))
    with pytest.raises(ConfigError, match="1000 or 1001"):
        task.load_data(task_args(task, ["--data", str(tmp_path), "--classes", "10"]))
    with pytest.raises(ConfigError, match="input-size"):
        build_model(task, task_args(task, ["--input-size", "32", "48"]), None)


@pytest.mark.large
def test_cli_end_to_end_folder_then_eval_only(tmp_path):
    """Trains the tiny config on an image tree, then evaluates its checkpoint (about 3 minutes on 2 cores)."""
    write_tree(tmp_path / "images", size=(40, 40))
    out = tmp_path / "run"
    argv = [
        "--model",
        "amoebanet",
        "--data",
        str(tmp_path / "images"),
        "--epochs",
        "1",
        "--lr",
        "0.01",
        *TINY,
    ]
    assert main([*argv, "--output", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["metrics"]["val_top1"] <= 1.0 and summary["parameters"] > 0
    checkpoint = out / "checkpoints" / "last.h5"
    assert checkpoint.exists()
    assert main([*argv, "--output", str(tmp_path / "eval"), "--eval-only", "--weights", str(checkpoint)]) == 0
    again = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert again["metrics"]["val_top1"] == pytest.approx(summary["metrics"]["val_top1"])


def test_cli_user_error_exit_code(tmp_path, capsys):
    code = main(
        ["--model", "amoebanet", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), *TINY]
    )
    assert code == 2
    assert "missing" in capsys.readouterr().err

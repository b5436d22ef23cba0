"""``train.py --model genesis``: pretraining with panels, resume, and fine-tuning from its checkpoint (tiny)."""

from __future__ import annotations

import csv
import json

import nibabel
import numpy as np
import pytest

from keras_zoo.cli import train as train_cli
from keras_zoo.datasets.volumes import prepare_genesis
from keras_zoo.models.genesis import genesis
from keras_zoo.weights import save_h5_weights

# fp32: these tests check pretraining, resume and fine-tuning, not precision. Where `auto` means bfloat16
# (AMX, AMD Zen 5) this 2-filter network at the reference SGD lr 1.0 diverged to NaN in 2 of 3 runs on a Zen 5
# (0 of 4 in fp32), which the NaN guard rightly stops with exit 3 (docs/benchmarks.md, "bfloat16 on AMD Zen 5").
TINY = ["--input-size", "16", "16", "8", "--filters", "2", "--batch-size", "2", "--steps-per-epoch", "2"]
TINY += ["--precision", "fp32"]


def train(output, *extra) -> int:
    return train_cli.main(["--model", "genesis", "--output", str(output), "--verbose", "0", *TINY, *extra])


def history_epochs(output) -> list[int]:
    with open(output / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_pretrain_on_prepared_cubes_then_resume_then_fine_tune(tmp_path):
    paths = []
    for i in range(2):
        hu = np.random.default_rng(i).uniform(-1000, 1000, (24, 24, 12)).astype(np.float32)
        paths.append(tmp_path / f"ct{i}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(hu, np.eye(4)), paths[-1])
    prepare_genesis({0: [paths[0]], 5: [paths[1]]}, tmp_path / "cubes", scale=6, cube_shape=(16, 16, 8))

    pre = tmp_path / "pre"
    cube_folds = ["--data", str(tmp_path / "cubes"), "--train-folds", "0", "--valid-folds", "5"]
    assert (
        train(
            pre,
            *cube_folds,
            "--epochs",
            "2",
        )
        == 0
    )
    for name in (
        "checkpoints/best.h5",
        "checkpoints/last.h5",
        "panels/epoch_0001.png",
        "panels/epoch_0002.png",
        "previews.png",
    ):
        assert (pre / name).is_file(), name
    summary = json.loads((pre / "summary.json").read_text())
    assert {"val_loss", "val_mae", "val_corrupted_mse"} <= set(summary["metrics"])
    assert "cube files" in summary["data"] and summary["parameters"] > 0

    assert (
        train(
            pre,
            *cube_folds,
            "--epochs",
            "3",
            "--resume",
        )
        == 0
    )
    assert history_epochs(pre) == [0, 1, 2]

    seg = tmp_path / "seg"
    assert (
        train(
            seg,
            "--task",
            "segment",
            "--weights",
            str(pre / "checkpoints/best.h5"),
            "--epochs",
            "1",
            "--cubes",
            "8",
            "--freeze-encoder",
        )
        == 0
    )
    metrics = json.loads((seg / "summary.json").read_text())["metrics"]
    assert 0.0 <= metrics["val_dice"] <= 1.0


@pytest.mark.large  # a fourth CLI run (~20 s of tracing on CPU); segmentation fine-tuning stays in CI
def test_classification_fine_tuning_reports_accuracy_and_auc(tmp_path):
    assert train(tmp_path, "--task", "classify", "--epochs", "1", "--cubes", "8") == 0
    metrics = json.loads((tmp_path / "summary.json").read_text())["metrics"]
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["val_auc"] <= 1.0


def test_weights_of_another_shape_are_a_user_error(tmp_path, capsys):
    path = tmp_path / "narrow.h5"
    save_h5_weights(genesis((16, 16, 8, 1), filters=2), path)
    assert (
        train(tmp_path / "wide", "--epochs", "1", "--cubes", "8", "--filters", "3", "--weights", str(path))
        == 2
    )
    assert "depth_0_conv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, kind, lr",
    [
        ([], "SGD", 1.0),  # the reference's pretraining
        (["--optimizer", "adam"], "Adam", 1e-3),
        (["--optimizer", "adam", "--lr", "0.01"], "Adam", 0.01),
        (["--task", "segment"], "Adam", 1e-3),
        (["--task", "segment", "--optimizer", "sgd"], "SGD", 1e-3),
    ],
)
def test_optimizer_flag_chooses_the_optimizer_and_its_default_rate(flags, kind, lr):
    args, task = train_cli.parse_args(["--model", "genesis", *flags])
    optimizer = task.optimizer(args, 10)
    assert type(optimizer).__name__ == kind
    assert float(optimizer.learning_rate) == pytest.approx(lr)

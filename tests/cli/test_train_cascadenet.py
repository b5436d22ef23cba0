"""The train CLI end to end for CascadeNet on tiny configurations."""

import json

import numpy as np
import pytest

from keras_zoo.cli.train import main

TINY = [
    "--model",
    "cascadenet",
    "--epochs",
    "2",
    "--steps-per-epoch",
    "2",
    "--batch-size",
    "2",
    "--filters",
    "4",
    "--cascades",
    "2",
    "--convs",
    "3",
    "--centre-lines",
    "4",
    "--verbose",
    "0",
]


def test_phantoms_2d_run_writes_metrics_and_panels(tmp_path):
    assert main([*TINY, "--input-size", "32", "32", "--samples", "6", "--output", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "summary.json").read_text())["metrics"]
    for key in (
        "val_psnr_zero_filled",
        "val_psnr_reconstruction",
        "val_ssim_zero_filled",
        "val_ssim_reconstruction",
    ):
        assert np.isfinite(metrics[key])
    assert metrics["val_psnr_gain"] == pytest.approx(
        metrics["val_psnr_reconstruction"] - metrics["val_psnr_zero_filled"]
    )
    assert sorted(p.name for p in (tmp_path / "panels").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert (tmp_path / "previews.png").stat().st_size > 0 and (tmp_path / "checkpoints" / "last.h5").exists()


def test_dynamic_run_on_a_written_npy_sequence_file(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cine.npy", rng.random((3, 4, 20, 20)).astype(np.float32))  # (n, frames, Nx, Ny)
    out = tmp_path / "out"
    args = [
        *TINY,
        "--dynamic",
        "--data",
        str(tmp_path / "cine.npy"),
        "--input-size",
        "16",
        "16",
        "--val-fraction",
        "0.34",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "3 MR sequences 16x16" in summary["data"] and np.isfinite(
        summary["metrics"]["val_psnr_reconstruction"]
    )


def test_eval_only_without_weights_warns_and_records_no_trained_epochs(tmp_path, caplog):
    """--eval-only scored fresh weights without a word, and summary.json said "epochs": --epochs."""
    args = [*TINY, "--input-size", "32", "32", "--samples", "4", "--eval-only", "--output", str(tmp_path)]
    with caplog.at_level("WARNING", logger="keras_zoo"):
        assert main(args) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "no --weights: using freshly initialised weights" in warnings
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 0 and summary["initial_epoch"] == 0 and "val_psnr" in summary["metrics"]


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main([*TINY, "--data", str(tmp_path / "missing.nii.gz"), "--output", str(tmp_path)]) == 2
    assert "missing.nii.gz" in capsys.readouterr().err
    assert main([*TINY, "--input-size", "16", "16", "--centre-lines", "12", "--output", str(tmp_path)]) == 2
    (tmp_path / "w.npz").write_bytes(b"not a zip")
    assert (
        main(
            [
                *TINY,
                "--input-size",
                "16",
                "16",
                "--samples",
                "4",
                "--weights",
                str(tmp_path / "w.npz"),
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "w.npz" in capsys.readouterr().err


def test_ascend_variant_builds_the_registry_preset():
    from keras_zoo.cli.train import build_model, parse_args
    from keras_zoo.registry import get_model

    argv = ["--model", "cascadenet", "--variant", "ascend", "--input-size", "32", "32", "--samples", "2"]
    args, task = parse_args(argv)
    data = task.load_data(args)  # the model's input size comes from the data
    model, spec = build_model(task, args, data)
    assert spec["config"]["input_shape"] == [32, 32, 2]
    preset = get_model("cascadenet", preset="ascend", input_shape=(32, 32, 2))
    assert model.count_params() == preset.count_params()
    assert [layer.name for layer in model.layers] == [layer.name for layer in preset.layers]


def test_loss_normalise_and_fit_options_reach_the_recipe(tmp_path):
    from keras_zoo.cli.train import parse_args

    rng = np.random.default_rng(0)
    np.save(tmp_path / "slices.npy", rng.random((4, 40, 40)).astype(np.float32))
    argv = [
        *TINY,
        "--data",
        str(tmp_path / "slices.npy"),
        "--input-size",
        "20",
        "20",
        "--fit",
        "resample",
        "--normalise",
        "zero_filled",
        "--loss",
        "mae",
        "--phase-radians",
        "6.28",
        "--phase-probability",
        "0.5",
        "--val-fraction",
        "0.5",
    ]
    args, task = parse_args(argv)
    assert task.loss(args, None) == "mae" and args.phase_radians == 6.28 and args.phase_probability == 0.5
    assert task.loss(parse_args(["--model", "cascadenet"])[0], None) == "mse"  # the paper's default
    data = task.load_data(args)
    image = data.val.x[0]
    assert image.shape == (2, 20, 20, 2)  # resampled, not cropped
    np.testing.assert_allclose(np.abs(image[..., 0] + 1j * image[..., 1]).max(axis=(1, 2)), 1, rtol=1e-5)
    assert main([*argv, "--output", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "20x20" in summary["data"] and np.isfinite(summary["metrics"]["val_psnr_gain"])
    assert main([*TINY, "--loss", "huber", "--output", str(tmp_path / "bad")]) == 2

"""``train.py --model unet`` end to end in-process on tiny configs: synthetic data, PNG folders, user errors."""

from __future__ import annotations

import json

import keras
import numpy as np
from PIL import Image

from keras_zoo.cli import train as train_cli
from keras_zoo.models.unet import unet

TINY = [
    "--input-size",
    "32",
    "32",
    "--filters",
    "2",
    "--batch-size",
    "2",
    "--steps-per-epoch",
    "2",
    "--epochs",
    "1",
]


def train(output, *extra) -> int:
    return train_cli.main(["--model", "unet", "--output", str(output), "--verbose", "0", *TINY, *extra])


def write_isbi_pngs(folder, count=4, shape=(48, 64), membrane_value=0, cell_value=255):
    rng = np.random.default_rng(0)
    for sub in ("image", "label"):
        (folder / "train" / sub).mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
            folder / "train" / "image" / f"{i}.png"
        )
        label = np.where(rng.random(shape) < 0.2, membrane_value, cell_value).astype(np.uint8)
        Image.fromarray(label).save(folder / "train" / "label" / f"{i}.png")


def test_synthetic_crops_train_and_whole_slices_predict(tmp_path):
    out = tmp_path / "run"
    assert (
        train(out, "--batch-norm", "--loss", "bce_dice", "--lr-schedule", "cosine", "--augment", "strong")
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert metrics["val_slices"] == 4  # 20 synthetic slices, 20 % held out
    for key in ("val_pixel_accuracy", "val_membrane_dice", "val_membrane_iou"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (out / "previews.png").is_file() and (out / "checkpoints" / "best.h5").is_file()
    # The crop-trained checkpoint loads into a fresh model and segments a whole 64x64 slice.
    model = unet(input_shape=(None, None, 1), filters=2, batch_norm=True)
    model.load_weights(str(out / "checkpoints" / "best.h5"))
    probs = model.predict(np.zeros((1, 64, 64, 1), np.float32), verbose=0)
    assert probs.shape == (1, 64, 64, 1) and np.isfinite(probs).all()
    keras.backend.clear_session()


def test_png_folders_with_resize(tmp_path):
    write_isbi_pngs(tmp_path / "data")
    out = tmp_path / "run"
    assert train(out, "--data", str(tmp_path / "data"), "--fit", "resize", "--val-fraction", "0.25") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["val_slices"] == 1
    assert "1 validation slices of 48x64" in summary["data"]


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert train(tmp_path / "run", "--data", str(tmp_path / "missing")) == 2
    err = capsys.readouterr().err.strip()
    assert "missing" in err and "not found" in err and "Traceback" not in err
    write_isbi_pngs(tmp_path / "data", count=2)
    (tmp_path / "data" / "train" / "label" / "1.png").unlink()
    assert train(tmp_path / "run2", "--data", str(tmp_path / "data")) == 2
    assert "1 labels for 2 images" in capsys.readouterr().err
    assert train(tmp_path / "run3", "--input-size", "30", "30") == 2
    assert "multiple of 16" in capsys.readouterr().err


def test_bad_bn_momentum_is_a_user_error(tmp_path, capsys):
    assert train(tmp_path / "run", "--batch-norm", "--bn-momentum", "1.5") == 2
    assert "bn_momentum must be in [0, 1), got 1.5" in capsys.readouterr().err


def test_labels_stored_as_0_1_train_exactly_like_0_255(tmp_path):
    """Issue 18: 0/1 label PNGs were read as "all membrane"; now both encodings give the same run."""
    metrics = {}
    for values in ((0, 255), (0, 1)):
        name = f"{values[0]}_{values[1]}"
        write_isbi_pngs(tmp_path / name, count=5, membrane_value=values[0], cell_value=values[1])
        assert train(tmp_path / f"run_{name}", "--data", str(tmp_path / name), "--fit", "resize") == 0
        metrics[name] = json.loads((tmp_path / f"run_{name}" / "summary.json").read_text())["metrics"]
    assert metrics["0_1"] == metrics["0_255"]  # read as "all membrane", 0/1 labels gave other metrics

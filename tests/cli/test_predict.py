"""``keras-zoo predict``: U-Net masks written as PNG for a file or a folder, from a preset or a training
checkpoint (rebuilt from its args.yaml), equal to the model's own thresholded output."""

import argparse

import numpy as np
import pytest
import yaml
from PIL import Image

from keras_zoo.cli import predict
from keras_zoo.cli.tasks import get_task
from keras_zoo.registry import get_model
from keras_zoo.weights import save_h5_weights
from tests import sample_files as sf

# args.yaml of a run saved before --bn-momentum existed: options added since take their defaults.
TRAIN_ARGS = {
    "model": "unet",
    "fit": "crop",
    "input_size": [32, 32],
    "filters": 2,
    "dropout": 0.5,
    "batch_norm": False,
}


def _checkpoint(tmp_path):
    """A fake training output: args.yaml + checkpoints/last.h5 of a crop-trained (any size) U-Net."""
    model = get_task("unet").build_model(argparse.Namespace(**TRAIN_ARGS, bn_momentum=0.99))
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "args.yaml").write_text(yaml.safe_dump(TRAIN_ARGS))
    save_h5_weights(model, out / "checkpoints" / "last.h5")
    return model, out / "checkpoints" / "last.h5"


def test_folder_from_training_checkpoint(tmp_path, capsys):
    model, weights = _checkpoint(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    sf.write_png(images / "a.png", sf.gray(40, 36, seed=1))  # not a multiple of 16: padded, then cropped
    sf.write_png(images / "b.png", sf.gray(32, 32, seed=2))
    (images / "notes.txt").write_text("skipped")
    assert (
        predict.main(["--weights", str(weights), "--input", str(images), "--output", str(tmp_path / "masks")])
        == 0
    )
    assert "2 masks written" in capsys.readouterr().out
    for name, shape in (("a", (40, 36)), ("b", (32, 32))):
        mask = np.asarray(Image.open(tmp_path / "masks" / f"{name}.png"))
        assert mask.shape == shape and set(np.unique(mask)) <= {0, 255}
    image = np.asarray(Image.open(images / "b.png"), np.float32) / 255
    expected = model.predict(image[None, ..., None], verbose=0)[0, ..., 0] > 0.5
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "masks" / "b.png")) == 255, expected)


@pytest.mark.parametrize("tta", [False, True])
def test_single_file_from_preset_with_probabilities(tmp_path, tta):
    import tifffile

    model = get_model("unet", preset="tiny")
    weights = tmp_path / "tiny.h5"
    save_h5_weights(model, weights)
    size = 32 if tta else 48  # the preset's fixed 32x32 input; 48 goes through a resize
    image = sf.write_png(tmp_path / "slice.png", sf.gray(size, size))
    argv = ["--model", "unet", "--preset", "tiny", "--weights", str(weights), "--input", str(image),
            "--output", str(tmp_path / "out"), "--probabilities"] + (["--tta"] if tta else [])  # fmt: skip
    assert predict.main(argv) == 0
    prob = tifffile.imread(tmp_path / "out" / "slice_prob.tif")
    mask = np.asarray(Image.open(tmp_path / "out" / "slice.png"))
    assert prob.shape == (size, size) and np.all((prob >= 0) & (prob <= 1))
    np.testing.assert_array_equal(mask == 255, prob > 0.5)
    if tta:  # the mean of the model's own predictions of the mirrored, quarter-turned slice
        x = np.asarray(Image.open(image), np.float32)[None, ..., None] / 255
        views = []
        for k in range(4):
            views.append(np.rot90(model.predict(np.rot90(x, k, (1, 2)), verbose=0), -k, (1, 2)))
            mirrored = model.predict(np.rot90(x[:, :, ::-1], k, (1, 2)), verbose=0)
            views.append(np.rot90(mirrored, -k, (1, 2))[:, :, ::-1])
        np.testing.assert_allclose(prob, np.mean(views, axis=0)[0, ..., 0], atol=1e-5)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["--model", "unet", "--input", "missing.png", "--output", "o"],
            "missing.png: input image not found",
        ),
        (
            ["--model", "amoebanet", "--preset", "tiny", "--input", "{img}", "--output", "o"],
            "not 'amoebanet'",
        ),
        (["--model", "unet", "--input", "{empty}", "--output", "o"], "no images"),
        (["--model", "unet", "--input", "{img}", "--output", "o", "--threshold", "2"], "--threshold"),
    ],
)
def test_user_errors_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    sf.write_png(tmp_path / "img.png")
    (tmp_path / "empty").mkdir()
    argv = [a.format(img=tmp_path / "img.png", empty=tmp_path / "empty") for a in argv]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and needle in err, err

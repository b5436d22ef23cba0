"""``keras-zoo evaluate``: each network's scores on a small labelled set equal an independent computation
from the model's own outputs, evaluation.json + evaluation.csv are written, and user errors exit 2."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_zoo.cli import evaluate
from keras_zoo.registry import get_model
from keras_zoo.weights import save_h5_weights
from tests import sample_files as sf


def _preset_weights(tmp_path, name: str, **overrides):
    model = get_model(name, preset="tiny", **overrides)
    path = tmp_path / f"{name}.h5"
    save_h5_weights(model, path)
    return model, str(path)


def _read(out):
    with open(out / "evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return json.loads((out / "evaluation.json").read_text()), rows


def test_unet_scores_equal_numpy_on_the_models_masks(tmp_path):
    model, weights = _preset_weights(tmp_path, "unet", input_shape=(None, None, 1))
    for sub in ("image", "label"):
        (tmp_path / "isbi" / sub).mkdir(parents=True)
    images = [sf.gray(32, 48, seed=i) for i in range(2)]
    for i, image in enumerate(images):
        sf.write_png(tmp_path / "isbi" / "image" / f"{i}.png", image)
        sf.write_png(tmp_path / "isbi" / "label" / f"{i}.png", np.where(image > 100, 255, 0).astype(np.uint8))
    argv = ["--model", "unet", "--preset", "tiny", "--set", "input_shape=[null, null, 1]", "--weights", weights,
            "--data", str(tmp_path / "isbi"), "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path / "out")
    x = np.stack(images).astype(np.float32)[..., None] / 255
    cell = model.predict(x, verbose=0)[..., 0] > 0.5
    truth = np.stack(images) > 100
    assert summary["pixel_accuracy"] == pytest.approx(np.mean(cell == truth))
    membrane, true_membrane = ~cell, ~truth
    dice = 2 * np.sum(membrane & true_membrane) / (membrane.sum() + true_membrane.sum())
    assert summary["membrane_dice"] == pytest.approx(dice)
    assert summary["slices"] == 2 and [r["name"] for r in rows] == ["0", "1"]
    assert float(rows[1]["pixel_accuracy"]) == pytest.approx(np.mean(cell[1] == truth[1]))


def _voc(root, images, labels):
    from keras_zoo.datasets.voc import save_label_png

    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    ids = [f"im{i}" for i in range(len(images))]
    for image_id, image, label in zip(ids, images, labels):
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=100)
        save_label_png(label, root / "SegmentationClass" / f"{image_id}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return ids


def test_deeplab_miou_ignores_void_and_equals_numpy(tmp_path):
    from keras_zoo.datasets.voc import CLASS_NAMES, read_rgb
    from keras_zoo.models.deeplab import preprocess_input

    model = get_model("deeplabv3plus", preset="tiny")
    logits_layer = model.get_layer("logits_semantic")  # random-init logits are ~1e-8: no float ties
    logits_layer.set_weights([w * 1e8 for w in logits_layer.get_weights()])
    weights = str(tmp_path / "deeplab.h5")
    save_h5_weights(model, weights)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (33, 33, 3), dtype=np.uint8) for _ in range(2)]
    labels = [rng.integers(0, 21, (33, 33), dtype=np.uint8) for _ in range(2)]
    labels[0][:5] = 255
    _voc(tmp_path / "voc", images, labels)
    argv = ["--model", "deeplabv3plus", "--preset", "tiny", "--weights", weights, "--data", str(tmp_path / "voc"),
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path / "out")
    x = np.stack([read_rgb(tmp_path / "voc" / "JPEGImages" / f"im{i}.jpg") for i in range(2)])
    predicted = model.predict(preprocess_input(x), verbose=0).argmax(-1)
    truth = np.stack(labels)
    valid = truth != 255
    ious = []
    for c in range(21):
        t, p = (truth == c) & valid, (predicted == c) & valid
        if (t | p).any():
            ious.append((t & p).sum() / (t | p).sum())
            assert summary[f"iou_{CLASS_NAMES[c]}"] == pytest.approx(ious[-1])
    assert summary["mean_iou"] == pytest.approx(np.mean(ious))
    assert summary["pixel_accuracy"] == pytest.approx(np.mean(predicted[valid] == truth[valid]))
    assert [r["name"] for r in rows] == ["im0", "im1"] and set(rows[0]) == {
        "name",
        "pixel_accuracy",
        "mean_iou",
    }


@pytest.mark.large  # 14 images at 513x513, 2 scales x 2 flips: ~1-2 minutes on 2 cores
def test_deeplab_real_voc_samples_multiscale_flip(tmp_path, shared_data):
    argv = ["--model", "deeplabv3plus", "--preset", "tiny", "--data", str(shared_data / "voc2012_samples"),
            "--output", str(tmp_path), "--scales", "0.75", "1.0", "--flip"]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path)
    assert summary["images"] == len(rows) == 14 and 0 <= summary["mean_iou"] <= 1
    assert summary["options"]["scales"] == [0.75, 1.0] and summary["options"]["flip"] is True


def test_cascadenet_psnr_per_slice_equals_the_metric_on_the_models_output(tmp_path):
    from keras_zoo.datasets.mri import cascadenet_example, channels_to_complex, scale_to_unit_max
    from keras_zoo.metrics.reconstruction import complex_psnr, nmse

    model, weights = _preset_weights(tmp_path, "cascadenet")
    rng = np.random.default_rng(2)
    images = (rng.random((3, 32, 32)) * np.exp(1j * rng.random((3, 32, 32)))).astype(np.complex64)
    np.save(tmp_path / "mr.npy", images)
    argv = ["--model", "cascadenet", "--preset", "tiny", "--weights", weights, "--data", str(tmp_path / "mr.npy"),
            "--acceleration", "4", "--centre-lines", "2", "--seed", "5", "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path / "out")
    target = scale_to_unit_max(images)
    inputs, _ = cascadenet_example(target, 5, 4.0, 2)
    recon = channels_to_complex(model.predict(list(inputs), verbose=0))
    psnr = [complex_psnr(t, r) for t, r in zip(target, recon)]
    np.testing.assert_allclose([float(r["psnr"]) for r in rows], psnr, atol=1e-3)
    np.testing.assert_allclose(
        [float(r["nmse"]) for r in rows], [nmse(t, r) for t, r in zip(target, recon)], rtol=1e-4
    )
    assert summary["psnr"] == pytest.approx(np.mean(psnr), abs=1e-3) and summary["slices"] == 3
    assert set(rows[0]) >= {"slice", "psnr", "ssim", "nmse", "psnr_zero_filled", "ssim_zero_filled"}


def test_cascadenet_reads_a_folder_of_volumes_as_training_does(tmp_path, capsys):
    """A folder of NIfTI volumes (training's --data) was read as a DICOM series and refused."""
    import nibabel as nib

    _, weights = _preset_weights(tmp_path, "cascadenet")
    rng = np.random.default_rng(3)
    (tmp_path / "mr").mkdir()
    for name, count in (("a", 2), ("b", 1)):
        volume = rng.random((32, 32, count)).astype(np.float32) + 0.1
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "mr" / f"{name}.nii.gz"))
    argv = ["--model", "cascadenet", "--preset", "tiny", "--weights", weights, "--data", str(tmp_path / "mr"),
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0, capsys.readouterr().err
    summary, rows = _read(tmp_path / "out")
    assert summary["slices"] == 3 and len(rows) == 3
    nib.save(
        nib.Nifti1Image(rng.random((16, 16, 1)).astype(np.float32), np.eye(4)), str(tmp_path / "mr" / "c.nii")
    )
    assert evaluate.main([*argv[:-1], str(tmp_path / "out2")]) == 2
    assert "holds slices of several sizes" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "0.5"])
def test_cascadenet_acceleration_below_1_is_one_line(tmp_path, capsys, value):
    """--acceleration 0 was a ZeroDivisionError traceback from the mask density."""
    _, weights = _preset_weights(tmp_path, "cascadenet")
    np.save(tmp_path / "mr.npy", np.random.default_rng(0).random((2, 32, 32)).astype(np.float32))
    argv = ["--model", "cascadenet", "--preset", "tiny", "--weights", weights, "--data", str(tmp_path / "mr.npy"),
            "--acceleration", value, "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --acceleration must be >= 1, got {value}", err
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_cascadenet_run_is_evaluated_with_the_scale_and_masks_it_trained_with(tmp_path):
    from keras_zoo.cli.train import main as train
    from keras_zoo.datasets.mri import cascadenet_example, channels_to_complex, scale_to_unit_max
    from keras_zoo.metrics.reconstruction import complex_psnr
    from keras_zoo.weights import load_weights

    rng = np.random.default_rng(4)
    images = (rng.random((4, 24, 24)) * np.exp(1j * rng.random((4, 24, 24)))).astype(np.complex64)
    np.save(tmp_path / "mr.npy", images)
    run = tmp_path / "run"
    assert train(["--model", "cascadenet", "--data", str(tmp_path / "mr.npy"), "--epochs", "1",
                  "--steps-per-epoch", "1", "--batch-size", "2", "--filters", "4", "--cascades", "2",
                  "--convs", "3", "--centre-lines", "2", "--normalise", "zero_filled", "--mask", "uniform",
                  "--verbose", "0", "--precision", "fp32",  # the policy stays set for what follows
                  "--output", str(run)]) == 0  # fmt: skip
    weights = str(run / "checkpoints" / "last.h5")
    argv = ["--weights", weights, "--data", str(tmp_path / "mr.npy"), "--acceleration", "4",
            "--centre-lines", "2", "--seed", "5", "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    _, rows = _read(tmp_path / "out")
    model = get_model("cascadenet", input_shape=(24, 24, 2), filters=4, n_cascades=2, n_convs=3)
    load_weights(model, weights)
    psnr = {}
    for normalise, kind in [("zero_filled", "uniform"), ("none", "uniform"), ("zero_filled", "cartesian")]:
        inputs, target = cascadenet_example(scale_to_unit_max(images), 5, 4.0, 2, kind, normalise)
        recon = channels_to_complex(model.predict(list(inputs), verbose=0))  # PSNR's peak: the target's
        psnr[normalise, kind] = [complex_psnr(t, r) for t, r in zip(channels_to_complex(target), recon)]
    np.testing.assert_allclose([float(r["psnr"]) for r in rows], psnr["zero_filled", "uniform"], atol=1e-3)
    assert not np.allclose(
        psnr["zero_filled", "uniform"], psnr["none", "uniform"], atol=1e-3
    )  # scale matters
    assert not np.allclose(psnr["zero_filled", "uniform"], psnr["zero_filled", "cartesian"], atol=1e-3)


def test_genesis_restoration_mse_equals_the_models_error(tmp_path):
    from keras_zoo.datasets.genesis import fixed_pairs
    from keras_zoo.datasets.volumes import write_cube_file

    model, weights = _preset_weights(tmp_path, "genesis")
    cubes = np.random.default_rng(3).random((3, 16, 16, 8)).astype(np.float32)
    first = os.path.basename(write_cube_file(cubes[:2], tmp_path / "cubes", scale=3, fold=0))
    second = os.path.basename(write_cube_file(cubes[2:], tmp_path / "cubes", scale=3, fold=1))
    argv = ["--model", "genesis", "--preset", "tiny", "--weights", weights, "--data", str(tmp_path / "cubes"),
            "--seed", "4", "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path / "out")
    x, y = fixed_pairs(cubes, 4)
    mse = np.mean((model.predict(x, verbose=0) - y) ** 2, axis=(1, 2, 3, 4))
    np.testing.assert_allclose([float(r["mse"]) for r in rows], mse, rtol=1e-5)
    assert [r["cube"] for r in rows] == [f"{first}[0]", f"{first}[1]", f"{second}[0]"]  # which cube is which
    assert summary["mse"] == pytest.approx(mse.mean(), rel=1e-5) and summary["cubes"] == 3
    assert summary["corrupted_mse"] == pytest.approx(np.mean((x - y) ** 2), rel=1e-5)


def test_amoebanet_top1_top5_equal_the_models_ranking(tmp_path):
    from keras_zoo.datasets.imagenet import preprocess_eval, wnid_to_label

    model = get_model("amoebanet", preset="tiny", classes=1001)
    fc = model.get_layer(
        "final_layer_fc"
    )  # random-init logits have a std of ~300: softmax would tie at 0 and 1
    fc.set_weights([w * 1e-3 for w in fc.get_weights()])
    weights = str(tmp_path / "amoebanet.h5")
    save_h5_weights(model, weights)
    wnids = ["n01440764", "n01443537"]
    for i, wnid in enumerate(wnids):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            tmp_path / "val" / wnid / "a.JPEG"
        )
    argv = ["--model", "amoebanet", "--preset", "tiny", "--set", "classes=1001", "--weights", weights,
            "--data", str(tmp_path / "val"), "--output", str(tmp_path / "out")]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary, rows = _read(tmp_path / "out")
    x = np.stack(
        [preprocess_eval(Image.open(tmp_path / "val" / w / "a.JPEG").convert("RGB"), 32) for w in wnids]
    )
    logits = model.predict(x, verbose=0)
    labels = [wnid_to_label(1001)[w] for w in wnids]
    rank = [int(np.sum(row > row[label])) for row, label in zip(logits, labels)]  # classes scoring higher
    assert [int(r["top5"]) for r in rows] == [int(k < 5) for k in rank]
    assert summary["top1"] == pytest.approx(np.mean([k == 0 for k in rank]))
    assert [r["file"] for r in rows] == [f"{w}/a.JPEG" for w in wnids]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--model", "unet", "--preset", "tiny", "--data", "missing"], "missing: --data not found"),
        (
            ["--model", "unet", "--preset", "tiny", "--data", "{d}", "--flip"],
            "--flip applies to deeplabv3plus",
        ),
        (["--model", "genesis", "--preset", "tiny", "--data", "{d}", "--tta"], "--tta is not available"),
        (["--model", "genesis", "--preset", "tiny", "--data", "{d}"], "no cube files"),
        (["--model", "unet", "--preset", "tiny", "--data", "{d}", "--output", "{f}"], "is a file"),
        (["--model", "unet", "--preset", "tiny", "--data", "{d}", "--output", "{o}"], "pass --overwrite"),
    ],
)
def test_user_errors_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "evaluation.json").write_text("{}")
    argv = [a.format(d=tmp_path / "d", f=tmp_path / "f", o=tmp_path / "o") for a in argv]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and needle in err, err
    assert (tmp_path / "o" / "evaluation.json").read_text() == "{}"

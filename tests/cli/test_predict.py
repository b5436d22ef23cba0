"""``keras-zoo predict``: U-Net masks written as PNG for a file or a folder, from a preset or a training
checkpoint (rebuilt from its args.yaml), equal to the model's own thresholded output."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from keras_zoo.cli import predict
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
    """A fake training output: args.yaml, model.json + checkpoints/last.h5 of a crop-trained U-Net."""
    config = {"input_shape": [None, None, 1], "filters": 2, "depth": 4, "dropout": 0.5, "batch_norm": False}
    model = get_model("unet", **config)
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "args.yaml").write_text(yaml.safe_dump(TRAIN_ARGS))
    (out / "model.json").write_text(json.dumps({"name": "unet", "variant": None, "config": config}))
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
    assert "unet: 2 inputs" in capsys.readouterr().out
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
            "missing.png: input not found",
        ),
        (
            [
                "--model",
                "amoebanet",
                "--preset",
                "tiny",
                "--input",
                "{img}",
                "--output",
                "o",
                "--overlap",
                "0",
            ],
            "--overlap applies to genesis, not amoebanet",
        ),
        (
            ["--model", "genesis", "--preset", "tiny", "--input", "{img}", "--output", "o"],
            "unsupported input",
        ),
        (["--model", "genesis", "--preset", "tiny", "--input", "{img}", "--output", "o", "--tta"], "--tta"),
        (["--model", "unet", "--input", "{img}", "--output", "{img}"], "is a file"),
        (
            ["--model", "cascadenet", "--preset", "tiny", "--input", "{img}", "--output", "o"],
            "unsupported input",
        ),
        (
            ["--model", "cascadenet", "--preset", "tiny", "--input", "{empty}", "--output", "o"],
            "not a folder",
        ),
        (["--model", "unet", "--input", "{empty}", "--output", "o"], "no images"),
        # a mistyped checkpoint is named as such, before "--model is required" or another network's flag
        (
            ["--weights", "run/best.h5", "--input", "{img}", "--output", "o", "--overlap", "0"],
            "run/best.h5: weights file not found",
        ),
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


def _preset_weights(tmp_path, name: str, **overrides):
    """A tiny-preset model of ``name`` and its weights saved as legacy .h5."""
    model = get_model(name, preset="tiny", **overrides)
    path = tmp_path / f"{name}.h5"
    save_h5_weights(model, path)
    return model, str(path)


def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_deeplab_palette_masks_equal_the_models_argmax(tmp_path):
    from keras_zoo.datasets.voc import voc_palette
    from keras_zoo.models.deeplab import preprocess_input

    model = get_model("deeplabv3plus", preset="tiny")
    logits_layer = model.get_layer("logits_semantic")  # random-init logits are ~1e-8: no float ties
    logits_layer.set_weights([w * 1e8 for w in logits_layer.get_weights()])
    weights = str(tmp_path / "deeplab.h5")
    save_h5_weights(model, weights)
    image = _rgb(40, 30)
    Image.fromarray(image).save(tmp_path / "photo.png")
    argv = ["--model", "deeplabv3plus", "--preset", "tiny", "--weights", weights, "--input",
            str(tmp_path / "photo.png"), "--output", str(tmp_path / "out"), "--overlay"]  # fmt: skip
    assert predict.main(argv) == 0
    mask = Image.open(tmp_path / "out" / "photo.png")
    assert mask.mode == "P" and mask.size == (30, 40)
    np.testing.assert_array_equal(np.asarray(mask.getpalette(), np.uint8).reshape(-1, 3), voc_palette())
    # Independent: the tiny architecture at 49x33 (40 rows > the preset's 33 -> 3 * 16 + 1), mean-pixel padding.
    big = get_model("deeplabv3plus", preset="tiny", input_shape=(49, 33, 3))
    big.set_weights(model.get_weights())
    padded = np.full((49, 33, 3), 128, np.uint8)
    padded[:40, :30] = image
    logits = big.predict(preprocess_input(padded[None]), verbose=0)[0, :40, :30]
    np.testing.assert_array_equal(np.asarray(mask), logits.argmax(-1))
    overlay = np.asarray(Image.open(tmp_path / "out" / "photo_overlay.png"))
    assert overlay.shape == (40, 30, 3) and overlay.dtype == np.uint8


def test_deeplab_real_voc_image_multiscale_flip(tmp_path, shared_data):
    image = shared_data / "voc2012_samples" / "JPEGImages" / "vainf_val_0000.jpg"
    argv = ["--model", "deeplabv3plus", "--preset", "tiny", "--input", str(image), "--output", str(tmp_path),
            "--scales", "0.5", "1.0", "--flip"]  # fmt: skip
    assert predict.main(argv) == 0
    mask = Image.open(tmp_path / "vainf_val_0000.png")
    assert mask.mode == "P" and mask.size == Image.open(image).size
    assert np.asarray(mask).max() < 21


def _nifti(path, volume, affine):
    import nibabel

    nibabel.Nifti1Image(volume, affine).to_filename(str(path))
    return str(path)


def test_genesis_one_window_volume_equals_the_model_and_keeps_the_affine(tmp_path):
    import nibabel

    from keras_zoo.datasets.volumes import hu_window

    model, weights = _preset_weights(tmp_path, "genesis")
    hu = np.random.default_rng(0).uniform(-1200, 1200, (16, 16, 8)).astype(np.float32)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    affine[:3, 3] = (-10.0, 4.0, 7.5)
    source = _nifti(tmp_path / "ct.nii.gz", hu, affine)
    argv = ["--model", "genesis", "--preset", "tiny", "--weights", weights, "--input", source,
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert predict.main(argv) == 0
    restored = nibabel.load(tmp_path / "out" / "ct_restored.nii.gz")
    np.testing.assert_allclose(restored.affine, affine)
    assert restored.shape == (16, 16, 8) and restored.get_data_dtype() == np.float32
    expected = model.predict(hu_window(hu)[None, ..., None], verbose=0)[0, ..., 0]
    np.testing.assert_allclose(restored.get_fdata(), expected, atol=1e-5)


def test_genesis_flipped_axes_come_back_on_the_input_grid(tmp_path):
    """A NIfTI stored L-to-R is predicted in RAS and written back on its own axes with its own affine."""
    import nibabel

    hu = np.zeros((32, 16, 8), np.float32)
    hu[:8] = 1000.0  # bright first rows in file order
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    source = _nifti(tmp_path / "flipped.nii", hu, affine)
    argv = ["--model", "genesis", "--preset", "tiny", "--set", "input_shape=[null, null, null, 1]",
            "--input", source, "--output", str(tmp_path / "out")]  # fmt: skip
    assert predict.main(argv) == 0
    restored = nibabel.load(tmp_path / "out" / "flipped_restored.nii.gz")
    np.testing.assert_allclose(restored.affine, affine)
    assert restored.shape == hu.shape


def test_genesis_real_ct_volume(tmp_path, shared_data):
    import nibabel

    source = shared_data / "totalsegmentator_examples" / "example_ct.nii.gz"
    argv = ["--model", "genesis", "--preset", "tiny", "--input", str(source), "--output", str(tmp_path),
            "--overlap", "0", "--batch-size", "64"]  # fmt: skip
    assert predict.main(argv) == 0
    restored, original = nibabel.load(tmp_path / "example_ct_restored.nii.gz"), nibabel.load(source)
    assert restored.shape == original.shape
    np.testing.assert_allclose(restored.affine, original.affine)
    values = restored.get_fdata()
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1


def test_cascadenet_simulated_undersampling_equals_the_model(tmp_path):
    from keras_zoo.datasets.mri import cascadenet_example, channels_to_complex, scale_to_unit_max
    from keras_zoo.inference.common import with_input_size

    model, weights = _preset_weights(tmp_path, "cascadenet")
    rng = np.random.default_rng(0)
    images = (rng.random((2, 24, 40)) + 1j * rng.random((2, 24, 40))).astype(np.complex64)
    np.save(tmp_path / "slices.npy", images)
    argv = ["--model", "cascadenet", "--preset", "tiny", "--weights", weights, "--input",
            str(tmp_path / "slices.npy"), "--output", str(tmp_path / "out"), "--acceleration", "4",
            "--centre-lines", "2", "--seed", "3"]  # fmt: skip
    assert predict.main(argv) == 0
    recon = np.load(tmp_path / "out" / "slices.npy")
    assert recon.shape == (2, 24, 40) and recon.dtype == np.complex64
    inputs, _ = cascadenet_example(scale_to_unit_max(images), 3, 4.0, 2)
    expected = channels_to_complex(with_input_size(model, (24, 40)).predict(list(inputs), verbose=0))
    np.testing.assert_allclose(recon, expected, atol=1e-5)
    for i in range(2):
        png = np.asarray(Image.open(tmp_path / "out" / f"slices_{i}.png"))
        assert png.shape == (24, 40) and png.dtype == np.uint8 and png.max() == 255
    header = (tmp_path / "out" / "metrics.csv").read_text().splitlines()[0]
    assert header == "slice,psnr,ssim,nmse,psnr_zero_filled,ssim_zero_filled,nmse_zero_filled"


def test_cascadenet_acceleration_0_is_refused_not_read_as_4(tmp_path, capsys):
    """``args.acceleration or 4.0`` undersampled at 4x when asked for 0."""
    _, weights = _preset_weights(tmp_path, "cascadenet")
    np.save(tmp_path / "slices.npy", np.random.default_rng(0).random((1, 24, 40)).astype(np.float32))
    argv = ["--model", "cascadenet", "--preset", "tiny", "--weights", weights, "--input",
            str(tmp_path / "slices.npy"), "--output", str(tmp_path / "out"), "--acceleration", "0"]  # fmt: skip
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: --acceleration"), err
    assert "acceleration must be >= 1, got 0" in err and not (tmp_path / "out" / "slices.npy").exists()


def test_cascadenet_never_replaces_its_cfl_input_even_with_overwrite(tmp_path, capsys):
    """--output the input's folder: ksp.cfl/ksp.hdr would be replaced by the reconstruction."""
    from keras_zoo.datasets.mri import fft2
    from keras_zoo.datasets.mri_readers import write_cfl

    image = np.random.default_rng(2).random((32, 32)).astype(np.complex64)
    write_cfl(tmp_path / "ksp", fft2(image, centred=True))
    before = {name: (tmp_path / name).read_bytes() for name in ("ksp.cfl", "ksp.hdr")}
    argv = ["--model", "cascadenet", "--preset", "tiny", "--input", str(tmp_path / "ksp.cfl"), "--centred",
            "--output", str(tmp_path), "--overwrite"]  # fmt: skip
    assert predict.main(argv) == 2
    assert "is an input of this command" in capsys.readouterr().err
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_cascadenet_centred_cfl_kspace_writes_cfl(tmp_path):
    from keras_zoo.datasets.mri import fft2
    from keras_zoo.datasets.mri_readers import read_cfl, write_cfl

    rng = np.random.default_rng(1)
    image = (rng.random((32, 32)) + 1j * rng.random((32, 32))).astype(np.complex64)
    mask = np.zeros((32, 32), np.float32)
    mask[::2] = 1
    write_cfl(tmp_path / "ksp", fft2(image, centred=True) * mask)
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "ref.npy", image)
    argv = ["--model", "cascadenet", "--preset", "tiny", "--input", str(tmp_path / "ksp.cfl"), "--mask",
            str(tmp_path / "mask.npy"), "--centred", "--reference", str(tmp_path / "ref.npy"),
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert predict.main(argv) == 0
    recon = np.load(tmp_path / "out" / "ksp.npy")
    np.testing.assert_array_equal(read_cfl(tmp_path / "out" / "ksp"), recon[0])
    # Data consistency: the sampled k-space lines of the reconstruction are the measured ones.
    np.testing.assert_allclose(
        fft2(recon[0], centred=True) * mask, fft2(image, centred=True) * mask, atol=1e-4
    )


def test_cascadenet_pretrained_bart_brain_psnr_equals_the_library_call(tmp_path, shared_data, capsys):
    from keras_zoo.datasets.mri import cascadenet_example, channels_to_complex, scale_to_unit_max
    from keras_zoo.metrics.reconstruction import complex_psnr
    from keras_zoo.models.cascadenet import cascadenet

    reference = shared_data / "mr_kspace_bart_brain" / "reference_image.npy"
    weights = shared_data / "cascadenet_pretrained" / "d5_c5.npz"
    argv = ["--model", "cascadenet", "--set", f"weights={weights}", "--input", str(reference),
            "--acceleration", "4", "--output", str(tmp_path)]  # fmt: skip
    assert predict.main(argv) == 0
    measured = float((tmp_path / "metrics.csv").read_text().splitlines()[1].split(",")[1])
    image = scale_to_unit_max(np.load(reference)[None])
    inputs, target = cascadenet_example(image, 0, 4.0, 8)
    net = cascadenet((180, 230, 2), weights=str(weights))
    library = complex_psnr(
        channels_to_complex(target)[0], channels_to_complex(net.predict(list(inputs), verbose=0))[0]
    )
    assert abs(measured - library) < 1e-3 and library > 25, (measured, library)
    assert f"-> {measured:.2f} dB" in capsys.readouterr().out


def test_amoebanet_top_k_csv_equals_the_models_softmax(tmp_path):
    import csv

    from keras_zoo.datasets.imagenet import preprocess_eval

    model = get_model("amoebanet", preset="tiny")
    fc = model.get_layer(
        "final_layer_fc"
    )  # random-init logits have a std of ~300: softmax would tie at 0 and 1
    fc.set_weights([w * 1e-3 for w in fc.get_weights()])
    weights = str(tmp_path / "amoebanet.h5")
    save_h5_weights(model, weights)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(_rgb(50 + 10 * i, 40, seed=i)).save(folder / f"im{i}.jpg")
    argv = ["--model", "amoebanet", "--preset", "tiny", "--weights", weights, "--input", str(folder),
            "--output", str(tmp_path / "out"), "--top-k", "3"]  # fmt: skip
    assert predict.main(argv) == 0
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file"] + [
        f"{c}_{i}" for i in (1, 2, 3) for c in ("class", "wnid", "name", "probability")
    ]
    assert [r["file"] for r in rows] == ["im0.jpg", "im1.jpg", "im2.jpg"]
    x = np.stack([preprocess_eval(Image.open(folder / f"im{i}.jpg").convert("RGB"), 32) for i in range(3)])
    logits = model.predict(x, verbose=0).astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for row, p in zip(rows, probs):
        ids = [int(row[f"class_{i}"]) for i in (1, 2, 3)]
        written = [float(row[f"probability_{i}"]) for i in (1, 2, 3)]
        np.testing.assert_allclose(written, p[ids], atol=2e-6)  # each id's own probability
        np.testing.assert_allclose(written, np.sort(p)[::-1][:3], atol=2e-6)  # the three largest, in order
        assert row["name_1"] == f"class{ids[0]}"


def test_amoebanet_real_imagenet_folder_names_classes(tmp_path, shared_data):
    import csv

    argv = ["--model", "amoebanet", "--preset", "tiny", "--set", "classes=1001", "--input",
            str(shared_data / "imagenet_samples" / "images"), "--output", str(tmp_path), "--batch-size", "25"]  # fmt: skip
    assert predict.main(argv) == 0
    with open(tmp_path / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 50 and rows[0]["file"].startswith("n01440764/")
    from keras_zoo.datasets.imagenet import synsets

    for row in rows:
        class_id = int(row["class_1"])
        expected = ("", "background") if class_id == 0 else synsets()[class_id - 1]
        assert (row["wnid_1"], row["name_1"]) == expected


def test_existing_outputs_are_kept_without_overwrite(tmp_path, capsys):
    _, weights = _preset_weights(tmp_path, "unet")
    sf.write_png(tmp_path / "slice.png", sf.gray(32, 32))
    argv = ["--model", "unet", "--preset", "tiny", "--weights", weights, "--input", str(tmp_path / "slice.png"),
            "--output", str(tmp_path / "o")]  # fmt: skip
    assert predict.main(argv) == 0
    before = (tmp_path / "o" / "slice.png").read_bytes()
    (tmp_path / "o" / "slice.png").write_bytes(b"mine")
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("slice.png: exists; pass --overwrite to replace it") and len(err.splitlines()) == 1
    assert (tmp_path / "o" / "slice.png").read_bytes() == b"mine"
    assert predict.main(argv + ["--overwrite"]) == 0
    assert (tmp_path / "o" / "slice.png").read_bytes() == before


@pytest.mark.parametrize("model", ["unet", "deeplabv3plus"])
def test_an_input_is_never_replaced_even_with_overwrite(tmp_path, capsys, model):
    """--output the input folder: the input slice.png would be its own mask."""
    _, weights = _preset_weights(tmp_path, model)
    image = sf.write_png(tmp_path / "slice.png", sf.gray(32, 32))
    before = image.read_bytes()
    argv = ["--model", model, "--preset", "tiny", "--weights", weights, "--input", str(image),
            "--output", str(tmp_path), "--overwrite"]  # fmt: skip
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("slice.png: is an input of this command; give another --output (inputs are never "
                        "replaced, not even with --overwrite)") and len(err.splitlines()) == 1  # fmt: skip
    assert image.read_bytes() == before


def test_inputs_whose_results_share_a_name_are_refused_before_anything_is_written(tmp_path, capsys):
    import tifffile

    _, weights = _preset_weights(tmp_path, "unet")
    (tmp_path / "in").mkdir()
    sf.write_png(tmp_path / "in" / "s0.png", sf.gray(32, 32))
    tifffile.imwrite(tmp_path / "in" / "s0.tif", sf.gray(32, 32))
    argv = ["--model", "unet", "--preset", "tiny", "--weights", weights, "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "o"), "--overwrite"]  # fmt: skip
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "s0.png and " in err and "s0.tif: both give results named s0*" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unet_writes_one_mask_per_page_of_a_tiff_stack(tmp_path):
    import tifffile

    model, weights = _checkpoint(tmp_path)
    pages = np.stack([sf.gray(32, 32, seed=s) for s in (3, 4, 5)])
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    argv = [
        "--weights",
        str(weights),
        "--input",
        str(tmp_path / "stack.tif"),
        "--output",
        str(tmp_path / "m"),
    ]
    assert predict.main(argv) == 0
    for page in range(3):
        mask = np.asarray(Image.open(tmp_path / "m" / f"stack_p{page:03d}.png")) == 255
        image = pages[page].astype(np.float32) / 255
        np.testing.assert_array_equal(mask, model.predict(image[None, ..., None], verbose=0)[0, ..., 0] > 0.5)
    assert not (tmp_path / "m" / "stack.png").exists()


def test_unet_real_isbi_slice_equals_the_model(tmp_path, shared_data):
    """A real 512x512 ISBI 2012 slice: one 8-bit mask of the slice's size, equal to the model's thresholded output."""
    model, weights = _checkpoint(tmp_path)
    source = shared_data / "isbi2012" / "train" / "image" / "0.png"
    argv = ["--weights", str(weights), "--input", str(source), "--output", str(tmp_path / "m")]
    assert predict.main(argv) == 0
    written = Image.open(tmp_path / "m" / "0.png")
    image = np.asarray(Image.open(source).convert("L"), np.float32) / 255
    assert written.mode == "L" and written.size == (image.shape[1], image.shape[0])
    expected = model.predict(image[None, ..., None], verbose=0)[0, ..., 0] > 0.5
    np.testing.assert_array_equal(np.asarray(written) == 255, expected)

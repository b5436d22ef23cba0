"""The bad-input catalogue: every way a user can hand keras_zoo broken input, one row each.

Library rows call a reader or loader and expect a ``KerasZooError`` subclass whose one-line message names
the file (or option) and the problem. CLI rows run ``keras_zoo.cli.train.main`` in-process and expect exit
status 2 with a single ``error: ...`` line on stderr and no traceback.
"""

from __future__ import annotations

import os

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

from keras_zoo.errors import DataError, KerasZooError, WeightsError
from tests import sample_files as sf


# ----------------------------------------------------------------------------------------- library rows
def _isbi_folders(tmp_path, images=2, labels=2, label_names=None):
    image_dir, label_dir = tmp_path / "image", tmp_path / "label"
    image_dir.mkdir()
    label_dir.mkdir()
    for i in range(images):
        sf.write_png(image_dir / f"{i}.png")
    for name in label_names or [str(i) for i in range(labels)]:
        sf.write_png(label_dir / f"{name}.png", np.where(sf.gray() < 64, 0, 255).astype(np.uint8))
    return image_dir, label_dir


def row_missing_image(tmp_path):
    from keras_zoo.datasets import isbi

    path = tmp_path / "nope.png"
    return lambda: isbi.read_gray_slice(path), DataError, ["nope.png", "not found"]


def row_empty_image(tmp_path):
    from keras_zoo.datasets import isbi

    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    return lambda: isbi.read_gray_slice(path), DataError, ["empty.png", "empty"]


def row_corrupt_png(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.corrupt(sf.write_png(tmp_path / "bad.png"))
    return lambda: isbi.read_gray_slice(path), DataError, ["bad.png", "cannot read image"]


def row_truncated_png(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.truncate(sf.write_png(tmp_path / "cut.png"), 0.6)
    return lambda: isbi.read_gray_slice(path), DataError, ["cut.png", "cannot read image"]


def row_image_is_folder(tmp_path):
    from keras_zoo.datasets import isbi

    return lambda: isbi.read_gray_slice(tmp_path), DataError, [str(tmp_path), "found a folder"]


def row_label_count_mismatch(tmp_path):
    from keras_zoo.datasets import isbi

    image_dir, label_dir = _isbi_folders(tmp_path, images=3, labels=2)
    return lambda: isbi.read_png_folders(image_dir, label_dir), DataError, ["label", "2 labels for 3 images"]


def row_label_name_mismatch(tmp_path):
    from keras_zoo.datasets import isbi

    image_dir, label_dir = _isbi_folders(tmp_path, images=2, label_names=["0", "7"])
    return lambda: isbi.read_png_folders(image_dir, label_dir), DataError, ["1.png", "no label named '1'"]


def row_empty_image_folder(tmp_path):
    from keras_zoo.datasets import isbi

    image_dir, label_dir = _isbi_folders(tmp_path, images=0, labels=0)
    return lambda: isbi.read_png_folders(image_dir, label_dir), DataError, ["image", "no .png/.tif images"]


def row_label_shape_mismatch(tmp_path):
    from keras_zoo.datasets import isbi

    image_dir, label_dir = _isbi_folders(tmp_path, images=1, labels=0)
    sf.write_png(label_dir / "0.png", sf.gray(8, 8))
    return (
        lambda: isbi.read_png_folders(image_dir, label_dir),
        DataError,
        ["0.png", "differs from image shape"],
    )


def row_corrupt_tiff(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.corrupt(sf.write_tiff(tmp_path / "vol.tif"), keep=4)
    return lambda: isbi.read_tiff_stack(path), DataError, ["vol.tif", "expected grayscale pages"]


def row_truncated_tiff(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.truncate(sf.write_tiff(tmp_path / "cut.tif"), 0.3)
    return lambda: isbi.read_tiff_stack(path), DataError, ["cut.tif", "cannot read TIFF"]


def row_rgb_tiff_stack(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.write_tiff(tmp_path / "rgb.tif", np.zeros((2, 8, 8, 3), np.uint8))
    return lambda: isbi.read_tiff_stack(path), DataError, ["rgb.tif", "expected grayscale pages"]


def row_float_out_of_range(tmp_path):
    from keras_zoo.datasets import isbi

    path = sf.write_tiff(tmp_path / "float.tif", np.full((2, 8, 8), 7.0, np.float32))
    return lambda: isbi.read_tiff_stack(path), DataError, ["float.tif", "must lie in [0, 1]"]


def row_nan_pixels(tmp_path):
    from keras_zoo.datasets import isbi

    array = np.full((2, 8, 8), 0.5, np.float32)
    array[0, 0, 0] = np.nan
    path = sf.write_tiff(tmp_path / "nan.tif", array)
    return lambda: isbi.read_tiff_stack(path), DataError, ["nan.tif", "nan"]


def row_inf_pixels(tmp_path):
    from keras_zoo.datasets import isbi

    array = np.full((2, 8, 8), 0.5, np.float32)
    array[1, 2, 3] = np.inf
    path = sf.write_tiff(tmp_path / "inf.tif", array)
    return lambda: isbi.read_tiff_stack(path), DataError, ["inf.tif", "inf"]


def row_tiff_stack_mismatch(tmp_path):
    from keras_zoo.datasets import isbi

    volume = sf.write_tiff(tmp_path / "train-volume.tif")
    labels = sf.write_tiff(tmp_path / "train-labels.tif", np.zeros((3, 16, 16), np.uint8))
    return lambda: isbi.read_tiff_stacks(volume, labels), DataError, ["train-labels.tif", "differs"]


def row_isbi_no_layout(tmp_path):
    from keras_zoo.datasets import isbi

    return lambda: isbi.read_isbi(tmp_path), DataError, [str(tmp_path)]


def row_corrupt_nifti(tmp_path):
    from keras_zoo.datasets import volumes

    path = sf.corrupt(sf.write_nifti(tmp_path / "ct.nii"), keep=10)
    return lambda: volumes.read_volume(path), DataError, ["ct.nii", "cannot read volume"]


def row_truncated_nifti_gz(tmp_path):
    from keras_zoo.datasets import volumes

    path = sf.truncate(sf.write_nifti(tmp_path / "ct.nii.gz", shape=(16, 16, 8)), 0.5)
    return lambda: volumes.read_volume(path), DataError, ["ct.nii.gz", "cannot read volume"]


def row_unknown_volume_format(tmp_path):
    from keras_zoo.datasets import volumes

    path = tmp_path / "scan.xyz"
    path.write_bytes(b"123")
    return lambda: volumes.read_volume(path), DataError, ["scan.xyz", "unknown volume format"]


def row_dicom_folder_without_dicom(tmp_path):
    from keras_zoo.datasets import volumes

    (tmp_path / "README.txt").write_text("no slices here")
    return lambda: volumes.read_volume(tmp_path), DataError, [str(tmp_path), "no DICOM slices"]


def row_corrupt_dicom(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = sf.write_dicom(tmp_path / "slice.dcm")
    path.write_bytes(path.read_bytes()[:-40])  # pixel data cut short
    return lambda: mri_readers.read_dicom_image(path), DataError, ["slice.dcm", "cannot read DICOM"]


def row_corrupt_hdf5(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = sf.corrupt(sf.write_port_h5(tmp_path / "knee.h5"), keep=8)
    return lambda: mri_readers.read_port_h5(path), DataError, ["knee.h5", "not a readable HDF5"]


def row_hdf5_without_dataset(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4))
    return lambda: mri_readers.read_port_h5(path), DataError, ["other.h5", "no 'label' dataset"]


def row_truncated_npy(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = sf.truncate(sf.write_npy(tmp_path / "slices.npy"), 0.5)
    return lambda: mri_readers.load_mr_images(path), DataError, ["slices.npy", "not a readable .npy"]


def row_pickled_npy(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return lambda: mri_readers.load_mr_images(path), DataError, ["objects.npy", "not a readable .npy"]


def row_npy_wrong_dtype(tmp_path):
    from keras_zoo.datasets import mri_readers

    path = tmp_path / "text.npy"
    np.save(path, np.array([["a", "b"], ["c", "d"]]))
    return lambda: mri_readers.load_mr_images(path), DataError, ["text.npy", "not images"]


def row_cube_file_out_of_range(tmp_path):
    from keras_zoo.datasets import volumes

    path = tmp_path / "bat_2_8x8x4_0.npy"
    np.save(path, np.full((2, 8, 8, 4), 5.0, np.float32))
    return lambda: volumes.read_cube_file(path), DataError, ["bat_2_8x8x4_0.npy", "values must be in [0, 1]"]


def row_cube_file_wrong_rank(tmp_path):
    from keras_zoo.datasets import volumes

    path = tmp_path / "bat_2_8x8x4_0.npy"
    np.save(path, np.zeros((8, 8), np.float32))
    return lambda: volumes.read_cube_file(path), DataError, ["bat_2_8x8x4_0.npy", "expected cubes"]


def row_voc_label_out_of_range(tmp_path):
    from keras_zoo.datasets import voc

    labels = np.zeros((8, 8), np.uint8)
    labels[0, 0], labels[1, 1] = 21, 254
    path = tmp_path / "2007_000032.png"
    Image.fromarray(labels, mode="L").save(path)
    return lambda: voc.read_label(path), DataError, ["2007_000032.png", "[21, 254] are not classes 0..20"]


def row_voc_label_rgb(tmp_path):
    from keras_zoo.datasets import voc

    path = tmp_path / "rgb_label.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return lambda: voc.read_label(path), DataError, ["rgb_label.png", "found mode RGB"]


def row_corrupt_jpeg(tmp_path):
    from keras_zoo.datasets import voc

    path = sf.corrupt(sf.write_jpeg(tmp_path / "2007_000033.jpg"), keep=20)
    return lambda: voc.read_rgb(path), DataError, ["2007_000033.jpg", "unreadable image"]


def row_truncated_jpeg_imagenet(tmp_path):
    from keras_zoo.datasets import imagenet

    path = sf.truncate(sf.write_jpeg(tmp_path / "n01440764_1.JPEG", size=64), 0.4)
    return lambda: imagenet.open_rgb_image(path), DataError, ["n01440764_1.JPEG", "cannot read image"]


def row_imagenet_bad_class_folder(tmp_path):
    from keras_zoo.datasets import imagenet

    (tmp_path / "cats").mkdir()
    return lambda: imagenet.list_image_folder(tmp_path), DataError, ["cats", "wnid"]


def row_voc_missing_root(tmp_path):
    from keras_zoo.datasets import voc

    return lambda: voc.load_voc_split(tmp_path / "VOCdevkit", "train"), DataError, ["VOCdevkit", "not found"]


def row_corrupt_tfrecord(tmp_path):
    from keras_zoo.datasets import voc_tfrecord

    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"\x10\x00\x00\x00garbage-not-a-record" * 4)
    return (
        lambda: voc_tfrecord.load_tfrecord_split(tmp_path, "train"),
        DataError,
        ["train-00000-of-00001.tfrecord", "corrupt train tfrecords"],
    )


def row_no_tfrecords(tmp_path):
    from keras_zoo.datasets import voc_tfrecord

    return (
        lambda: voc_tfrecord.load_tfrecord_split(tmp_path, "val"),
        DataError,
        [str(tmp_path), "no val-*.tfrecord"],
    )


def _dense_model(units=4, name="dense"):
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(units, name=name)(inputs))


def row_weights_other_architecture(tmp_path):
    from keras_zoo.weights import load_weights, save_h5_weights

    path = tmp_path / "other.h5"
    save_h5_weights(_dense_model(name="classifier"), path)
    return lambda: load_weights(_dense_model(), path), WeightsError, ["other.h5", "no layer of model"]


def row_weights_other_shape(tmp_path):
    from keras_zoo.weights import load_weights, save_h5_weights

    path = tmp_path / "wide.h5"
    save_h5_weights(_dense_model(units=8), path)
    return (
        lambda: load_weights(_dense_model(units=4), path),
        WeightsError,
        ["wide.h5", "shape mismatches", "dense"],
    )


def row_weights_corrupt_h5(tmp_path):
    from keras_zoo.weights import load_weights, save_h5_weights

    path = tmp_path / "broken.h5"
    save_h5_weights(_dense_model(), path)
    sf.truncate(path, 0.5)
    return lambda: load_weights(_dense_model(), path), WeightsError, ["broken.h5", "unreadable HDF5"]


def row_weights_plain_hdf5(tmp_path):
    from keras_zoo.weights import load_weights

    path = sf.write_port_h5(tmp_path / "data.h5")
    return (
        lambda: load_weights(_dense_model(), path),
        WeightsError,
        ["data.h5", "not a Keras .h5 weights file"],
    )


def row_weights_unknown_format(tmp_path):
    from keras_zoo.weights import load_weights

    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04K\x01.")
    return lambda: load_weights(_dense_model(), path), WeightsError, ["model.pkl", "unknown weights format"]


def row_keras_with_lambda(tmp_path):
    from keras_zoo.weights import load_weights

    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(4, name="dense")(inputs))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return (
        lambda: load_weights(_dense_model(), path),
        WeightsError,
        ["lambda.keras", "cannot load .keras file safely", "Lambda"],
    )


def row_unet_stride(tmp_path):
    from keras_zoo.models.unet import unet

    # A factory argument is a programming error (ValueError naming the value); the CLI turns it into exit 2.
    return (
        lambda: unet(input_shape=(30, 30, 1), filters=2, depth=2),
        ValueError,
        ["(30, 30)", "divisible by 4"],
    )


def row_unknown_model(tmp_path):
    from keras_zoo import get_model

    return lambda: get_model("resnet9000"), KerasZooError, ["resnet9000"]


def _genesis_target(tmp_path, x=None, y=None, shape=(2, 4, 4, 2)):
    """A fine-tuning folder: x.npy (and y.npy unless ``y`` is False) of ``shape`` in [0, 1] / {0, 1}."""
    root = tmp_path / "ft"
    root.mkdir()
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.random(shape).astype(np.float32) if x is None else x)
    if y is not False:
        np.save(root / "y.npy", (rng.random(shape) > 0.5).astype(np.float32) if y is None else y)
    return root


def _read_target(root, task="segment", classes=1):
    from keras_zoo.datasets.genesis_targets import read_target

    return lambda: read_target(str(root), task, (4, 4, 2), 1, "ct", 0, classes=classes)


def row_genesis_target_without_y(tmp_path):
    return _read_target(_genesis_target(tmp_path, y=False)), DataError, ["y.npy", "not found"]


def row_genesis_target_x_in_raw_hu(tmp_path):
    x = np.random.default_rng(1).uniform(-1000, 1000, (2, 4, 4, 2)).astype(np.float32)
    return _read_target(_genesis_target(tmp_path, x=x)), DataError, ["x.npy", "must be in [0, 1]", "window"]


def row_genesis_target_mask_0_255(tmp_path):
    y = np.where(np.random.default_rng(2).random((2, 4, 4, 2)) > 0.5, 255, 0).astype(np.float32)
    return _read_target(_genesis_target(tmp_path, y=y)), DataError, ["y.npy", "0 or 1", "255"]


def row_genesis_target_classes_beyond_sigmoid(tmp_path):
    root = _genesis_target(tmp_path, y=np.array([0, 3], np.float32))
    return _read_target(root, "classify"), DataError, ["y.npy", "0 or 1", "{0, 3}", "--classes 4"]


def row_genesis_target_label_beyond_classes(tmp_path):
    root = _genesis_target(tmp_path, y=np.array([0, 3], np.float32))
    return _read_target(root, "classify", classes=3), DataError, ["y.npy", "integers 0..2", "{0, 3}"]


LIBRARY_ROWS = [
    row_missing_image,
    row_empty_image,
    row_corrupt_png,
    row_truncated_png,
    row_image_is_folder,
    row_label_count_mismatch,
    row_label_name_mismatch,
    row_empty_image_folder,
    row_label_shape_mismatch,
    row_corrupt_tiff,
    row_truncated_tiff,
    row_rgb_tiff_stack,
    row_float_out_of_range,
    row_nan_pixels,
    row_inf_pixels,
    row_tiff_stack_mismatch,
    row_isbi_no_layout,
    row_corrupt_nifti,
    row_truncated_nifti_gz,
    row_unknown_volume_format,
    row_dicom_folder_without_dicom,
    row_corrupt_dicom,
    row_corrupt_hdf5,
    row_hdf5_without_dataset,
    row_truncated_npy,
    row_pickled_npy,
    row_npy_wrong_dtype,
    row_cube_file_out_of_range,
    row_cube_file_wrong_rank,
    row_voc_label_out_of_range,
    row_voc_label_rgb,
    row_corrupt_jpeg,
    row_truncated_jpeg_imagenet,
    row_imagenet_bad_class_folder,
    row_voc_missing_root,
    row_corrupt_tfrecord,
    row_no_tfrecords,
    row_weights_other_architecture,
    row_weights_other_shape,
    row_weights_corrupt_h5,
    row_weights_plain_hdf5,
    row_weights_unknown_format,
    row_keras_with_lambda,
    row_unet_stride,
    row_unknown_model,
    row_genesis_target_without_y,
    row_genesis_target_x_in_raw_hu,
    row_genesis_target_mask_0_255,
    row_genesis_target_classes_beyond_sigmoid,
    row_genesis_target_label_beyond_classes,
]

# Rows whose reader does not give a clean error yet (owner not finished: the lead fixes them).
KNOWN_FAILURES: dict[str, str] = {}


def _params(rows, known):
    return [
        pytest.param(
            row, id=row.__name__[4:], marks=pytest.mark.xfail(strict=True, reason=known[row.__name__])
        )
        if row.__name__ in known
        else pytest.param(row, id=row.__name__[4:])
        for row in rows
    ]


@pytest.mark.parametrize("row", _params(LIBRARY_ROWS, KNOWN_FAILURES))
def test_library_rejects_bad_input(row, tmp_path):
    call, error_type, needles = row(tmp_path)
    with pytest.raises(error_type) as info:
        call()
    if issubclass(error_type, KerasZooError):
        assert isinstance(info.value, KerasZooError), type(info.value)
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


# --------------------------------------------------------------------------------------------- CLI rows
def _unet(tmp_path, *extra):
    return [
        "--model", "unet", "--filters", "2", "--input-size", "32", "32", "--epochs", "1",
        "--steps-per-epoch", "1", "--verbose", "0", "--output", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


def cli_missing_data(tmp_path):
    return _unet(tmp_path, "--data", str(tmp_path / "isbi")), ["isbi", "not found"]


def cli_empty_data_folder(tmp_path):
    (tmp_path / "isbi/train/image").mkdir(parents=True)
    (tmp_path / "isbi/train/label").mkdir(parents=True)
    return _unet(tmp_path, "--data", str(tmp_path / "isbi")), ["image", "no .png/.tif images"]


def cli_corrupt_label_png(tmp_path):
    root = tmp_path / "isbi"
    root.mkdir()
    _isbi_folders(root, images=3, labels=3)
    sf.corrupt(root / "label" / "1.png")
    return _unet(tmp_path, "--data", str(root)), ["1.png", "cannot read image"]


def cli_label_count_mismatch(tmp_path):
    root = tmp_path / "isbi"
    root.mkdir()
    _isbi_folders(root, images=3, labels=2)
    return _unet(tmp_path, "--data", str(root)), ["label", "2 labels for 3 images"]


def cli_input_not_divisible(tmp_path):
    argv = _unet(tmp_path)
    argv[argv.index("--input-size") + 1 : argv.index("--input-size") + 3] = ["30", "30"]
    return argv, ["--input-size", "multiple of 16"]


def cli_resume_without_checkpoint(tmp_path):
    return _unet(tmp_path, "--resume"), ["--resume", "holds no training run"]


def cli_resume_and_weights(tmp_path):
    return _unet(tmp_path, "--resume", "--weights", "w.h5"), ["--resume and --weights conflict"]


def cli_eval_only_and_resume(tmp_path):
    return _unet(tmp_path, "--resume", "--eval-only"), ["--eval-only and --resume conflict"]


def cli_weights_other_architecture(tmp_path):
    from keras_zoo.weights import save_h5_weights

    path = tmp_path / "dense.h5"
    save_h5_weights(_dense_model(name="classifier"), path)
    return _unet(tmp_path, "--weights", str(path)), ["dense.h5", "no layer of model"]


def cli_weights_lambda_keras(tmp_path):
    _, _, needles = row_keras_with_lambda(tmp_path)
    return _unet(tmp_path, "--weights", str(tmp_path / "lambda.keras")), needles


def cli_missing_weights(tmp_path):
    return _unet(tmp_path, "--weights", str(tmp_path / "none.h5")), ["none.h5", "weights file not found"]


def cli_unknown_model(tmp_path):
    return ["--model", "resnet9000"], ["unknown model 'resnet9000'"]


def cli_missing_model(tmp_path):
    return ["--epochs", "1"], ["--model is required"]


def cli_bad_epochs(tmp_path):
    return _unet(tmp_path, "--epochs", "0"), ["--epochs must be >= 1"]


def cli_bad_lr(tmp_path):
    return _unet(tmp_path, "--lr", "-1"), ["--lr must be > 0"]


def cli_bad_val_fraction(tmp_path):
    return _unet(tmp_path, "--val-fraction", "1.5"), ["--val-fraction", "(0, 1)"]


def cli_unknown_config_option(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: unet\nlearning_rate: 0.1\n")
    return ["-c", str(config)], ["run.yaml", "unknown option(s) learning_rate"]


def cli_invalid_yaml(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("model: [unet\n")
    return ["-c", str(config)], ["broken.yaml", "invalid YAML"]


def cli_missing_config(tmp_path):
    return ["-c", str(tmp_path / "absent.yaml")], ["absent.yaml", "not found"]


def cli_genesis_missing_cubes(tmp_path):
    argv = [
        "--model",
        "genesis",
        "--data",
        str(tmp_path / "cubes"),
        "--output",
        str(tmp_path / "out"),
        "--verbose",
        "0",
    ]
    return argv, ["cubes", "not found"]


def cli_cascadenet_corrupt_h5(tmp_path):
    path = sf.corrupt(sf.write_port_h5(tmp_path / "knee.h5"), keep=8)
    argv = ["--model", "cascadenet", "--data", str(path), "--output", str(tmp_path / "out"), "--verbose", "0"]
    return argv, ["knee.h5"]


def cli_negative_seed(tmp_path):
    return _unet(tmp_path, "--seed", "-1"), ["--seed must be in [0, 2**32)", "-1"]


def cli_seed_too_large(tmp_path):
    return _unet(tmp_path, "--seed", str(2**32)), ["--seed must be in [0, 2**32)", str(2**32)]


def _with_config(tmp_path, text):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    return ["-c", str(config), *_unet(tmp_path)]


def cli_config_string_for_a_switch(tmp_path):
    """``batch_norm: 'no'`` is a non-empty string: it must not switch batch norm on."""
    return _with_config(tmp_path, "batch_norm: 'no'\n"), ["run.yaml", "batch_norm", "true or false", "'no'"]


def cli_config_number_for_a_switch(tmp_path):
    return _with_config(tmp_path, "tta: 1\n"), ["run.yaml", "tta", "true or false"]


def cli_config_string_for_an_int(tmp_path):
    return _with_config(tmp_path, "epochs: five\n"), ["run.yaml", "epochs", "five"]


def cli_config_fraction_for_an_int(tmp_path):
    return _with_config(tmp_path, "steps_per_epoch: 2.5\n"), ["run.yaml", "steps_per_epoch", "an integer"]


def cli_config_list_for_a_scalar(tmp_path):
    return _with_config(tmp_path, "filters: [2, 4]\n"), ["run.yaml", "filters", "one value"]


def cli_config_bad_choice(tmp_path):
    return _with_config(tmp_path, "precision: fp8\n"), ["run.yaml", "precision", "expected one of", "fp8"]


def cli_config_scalar_input_size(tmp_path):
    """One value for a several-value option reads as a one-element list, as on the command line."""
    config = tmp_path / "run.yaml"
    config.write_text("input_size: 32\n")
    argv = ["-c", str(config), "--model", "unet", "--output", str(tmp_path / "out")]
    return argv, ["--input-size must be H W", "[32]"]


def cli_unknown_preset(tmp_path):
    return _unet(tmp_path, "--preset", "huge"), ["--preset huge", "tiny"]


def _cascadenet(tmp_path, *extra):
    return [
        "--model", "cascadenet", "--preset", "tiny", "--input-size", "16", "16", "--centre-lines", "2",
        "--samples", "4", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--verbose", "0",
        "--output", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("value", ["0", "0.5", "-2", "nan"])
def test_cli_cascadenet_acceleration_below_1(value, tmp_path, capsys, monkeypatch):
    """--acceleration 0 divided by zero in the mask density before the >= 1 check (a traceback)."""
    from keras_zoo.cli import train

    monkeypatch.chdir(tmp_path)
    assert train.main(_cascadenet(tmp_path, "--acceleration", value)) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: --acceleration must be >= 1"), err
    assert not (tmp_path / "out").exists()


def cli_cascadenet_val_fraction_one(tmp_path):
    return _cascadenet(tmp_path, "--val-fraction", "1"), ["--val-fraction must be in [0, 1)", "got 1"]


def cli_cascadenet_val_fraction_negative(tmp_path):
    return _cascadenet(tmp_path, "--val-fraction", "-0.5"), ["--val-fraction must be in [0, 1)", "-0.5"]


def cli_eval_only_without_validation_samples(tmp_path):
    """One slice cannot be split: --eval-only had nothing to score and printed ``final metrics: {}``."""
    np.save(tmp_path / "one.npy", np.random.default_rng(0).random((1, 16, 16)).astype(np.float32))
    argv = _cascadenet(tmp_path, "--eval-only", "--data", str(tmp_path / "one.npy"))
    return argv, ["--eval-only", "nothing to evaluate", "no validation samples", "(1/0)"]


def cli_genesis_fine_tuning_mask_0_255(tmp_path):
    y = np.where(np.random.default_rng(2).random((2, 16, 16, 8)) > 0.5, 255, 0).astype(np.float32)
    root = _genesis_target(tmp_path, y=y, shape=(2, 16, 16, 8))
    argv = ["--model", "genesis", "--preset", "tiny", "--task", "segment", "--data", str(root),
            "--epochs", "1", "--verbose", "0", "--output", str(tmp_path / "out")]  # fmt: skip
    return argv, [str(root / "y.npy"), "labels must be 0 or 1"]


CLI_ROWS = [
    cli_missing_data,
    cli_empty_data_folder,
    cli_corrupt_label_png,
    cli_label_count_mismatch,
    cli_input_not_divisible,
    cli_resume_without_checkpoint,
    cli_resume_and_weights,
    cli_eval_only_and_resume,
    cli_weights_other_architecture,
    cli_weights_lambda_keras,
    cli_missing_weights,
    cli_unknown_model,
    cli_missing_model,
    cli_bad_epochs,
    cli_bad_lr,
    cli_bad_val_fraction,
    cli_unknown_config_option,
    cli_invalid_yaml,
    cli_missing_config,
    cli_genesis_missing_cubes,
    cli_cascadenet_corrupt_h5,
    cli_negative_seed,
    cli_seed_too_large,
    cli_config_string_for_a_switch,
    cli_config_number_for_a_switch,
    cli_config_string_for_an_int,
    cli_config_fraction_for_an_int,
    cli_config_list_for_a_scalar,
    cli_config_bad_choice,
    cli_config_scalar_input_size,
    cli_unknown_preset,
    cli_cascadenet_val_fraction_one,
    cli_cascadenet_val_fraction_negative,
    cli_eval_only_without_validation_samples,
    cli_genesis_fine_tuning_mask_0_255,
]

CLI_KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("row", _params(CLI_ROWS, CLI_KNOWN_FAILURES))
def test_cli_exits_2_with_one_line(row, tmp_path, capsys, monkeypatch):
    from keras_zoo.cli import train

    monkeypatch.chdir(tmp_path)
    argv, needles = row(tmp_path)
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("task, classes", [("segment", 1), ("classify", 1), ("classify", 4)])
def test_genesis_target_labels_of_the_models_classes_are_read(tmp_path, task, classes):
    """The label checks refuse only what the head cannot learn: 0/1 for a sigmoid, 0..classes-1 otherwise."""
    y = np.array([0, 1], np.float32) if classes == 1 else np.array([3, 0], np.float32)
    if task == "segment":
        y = None
    shape = (2, 4, 4, 2)
    x, labels = _read_target(_genesis_target(tmp_path, y=y, shape=shape), task, classes)()
    assert x.shape == shape and labels.shape == (shape if task == "segment" else (2,))


def test_cli_unknown_flag_is_a_usage_error(tmp_path, capsys):
    """argparse's own usage errors: exit 2, usage plus one error line naming the flag, no traceback."""
    from keras_zoo.cli import train

    assert train.main(_unet(tmp_path, "--no-such-flag")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: unrecognized arguments: --no-such-flag" in err


def test_cli_debug_shows_the_traceback(tmp_path, capsys):
    from keras_zoo.cli import train

    assert train.main(_unet(tmp_path, "--resume", "--debug")) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: --resume: ")


def test_catalogue_has_at_least_30_rows():
    assert len(LIBRARY_ROWS) + len(CLI_ROWS) >= 30
    assert os.path.basename(__file__) == "test_bad_input.py"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cli_backend_not_installed_is_one_line(tmp_path, capsys, monkeypatch, backend):
    import importlib.util

    from keras_zoo.cli import train

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == backend else find_spec(name, *a)
    )
    assert train.main(_unet(tmp_path, "--backend", backend)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'error: --backend {backend}: {backend} is not installed (pip install -e ".[{backend}]")'


def test_steps_per_execution_on_torch_is_one_line_before_the_run_folder(tmp_path, capsys, monkeypatch):
    """Keras' torch backend refuses steps_per_execution > 1 only once fit starts, after args.yaml."""
    import dataclasses

    from keras_zoo import runtime
    from keras_zoo.cli import train

    configure = runtime.configure
    monkeypatch.setattr(
        runtime, "configure", lambda *a, **k: dataclasses.replace(configure(*a, **k), backend="torch")
    )
    argv = [
        "--model",
        "unet",
        "--preset",
        "tiny",
        "--steps-per-execution",
        "2",
        "--output",
        str(tmp_path / "run"),
    ]
    assert train.main(argv) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: --steps-per-execution 2: Keras' torch backend runs one step at a time"
    )
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ help and start-up
@pytest.mark.parametrize("argv", [["--help"], ["-h", "--epochs", "3"]])
def test_train_help_without_model_lists_the_models(argv, capsys):
    from keras_zoo.cli import train
    from keras_zoo.registry import list_models

    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: train.py") and all(name in out for name in list_models())


def test_keras_zoo_train_help_without_model(capsys):
    from keras_zoo.cli import main

    assert main.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--preset" in out and out.startswith("usage: keras-zoo train")
    assert "flags: keras-zoo train --model NAME --help" in " ".join(out.split())


def test_keras_zoo_train_names_itself_in_its_errors(capsys):
    from keras_zoo.cli import main

    assert main.main(["train", "--model", "unet", "--bogus"]) == 2
    assert "keras-zoo train: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys):
    from keras_zoo import __version__
    from keras_zoo.cli import main

    assert main.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"keras-zoo {__version__}"


@pytest.mark.parametrize(
    "command, status",
    [
        (["list"], 0),
        (["info"], 0),
        (["summary", "--model", "unet", "--preset", "tiny"], 0),
        # builds the network before it finds out that it cannot write there
        (
            ["export", "--model", "unet", "--preset", "tiny", "--format", "onnx", "--output", "/proc/x.onnx"],
            2,
        ),
    ],
)
def test_tensorflow_startup_lines_are_off_by_default(command, status):
    """TensorFlow's C++ start-up lines (oneDNN, CUDA drivers, CPU features, absl's banner) are not printed
    unless the user sets TF_CPP_MIN_LOG_LEVEL."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    done = subprocess.run(
        [sys.executable, "-m", "keras_zoo.cli.main", *command], env=env, capture_output=True, text=True
    )
    assert done.returncode == status, done.stderr
    for noise in ("cpu_feature_guard", "oneDNN custom operations", "absl::InitializeLog", "cuda drivers"):
        assert noise not in done.stderr, done.stderr


# ------------------------------------------------------------------------------------------------ Ctrl-C
class _CtrlCAtEpoch(keras.callbacks.Callback):
    """Raises KeyboardInterrupt as epoch ``epoch`` begins, as Ctrl-C does in the training loop."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _interrupt_at(monkeypatch, epoch):
    from keras_zoo.cli import train

    real = train.training_callbacks

    def with_ctrl_c(*args, **kwargs):
        callbacks, timer = real(*args, **kwargs)
        return [*callbacks, _CtrlCAtEpoch(epoch)], timer

    monkeypatch.setattr(train, "training_callbacks", with_ctrl_c)


def test_ctrl_c_is_one_line_exit_130_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    import csv

    from keras_zoo.cli import train

    out = tmp_path / "out"
    _interrupt_at(monkeypatch, 1)
    assert train.main(_unet(tmp_path, "--epochs", "2")) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err == (
        f"interrupted; --resume --output {out} continues from the last checkpoint "
        f"({out / 'checkpoints' / 'last.h5'})"
    )
    assert not (out / ".lock").exists()  # the lock is released
    monkeypatch.undo()
    assert train.main(_unet(tmp_path, "--epochs", "2", "--resume")) == 0
    with open(out / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]


def test_ctrl_c_before_the_first_checkpoint_says_how_to_start_again(tmp_path, capsys, monkeypatch):
    from keras_zoo.cli import train

    out = tmp_path / "out"
    _interrupt_at(monkeypatch, 0)
    assert train.main(_unet(tmp_path)) == 130
    err = capsys.readouterr().err.strip()
    assert (
        err == f"interrupted; no checkpoint was written to {out} yet; --overwrite --output {out} starts again"
    )
    assert not (out / ".lock").exists()
    monkeypatch.undo()
    assert train.main(_unet(tmp_path, "--overwrite")) == 0


# ------------------------------------------------------------------- honest final lines, non-TTY output
def test_short_run_prints_every_final_line_and_epoch_lines_off_a_terminal(tmp_path, capsys):
    """One step, fewer than the 5 warm-up steps: FPS and step time are still printed, over that step and
    saying so; U-Net's final metric is pixel accuracy, so its line is "Final accuracy"; stdout is not a
    terminal here, so --verbose auto writes one line per epoch, without progress-bar escapes."""
    import json

    from keras_zoo.cli import train

    argv = [a for a in _unet(tmp_path) if a not in ("--verbose", "0")]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    timing = json.loads((tmp_path / "out/summary.json").read_text())["timing"]
    assert timing["warmup_included"] and timing["timed_steps"] == 1
    assert f"Final performance FPS : {timing['samples_per_sec']:.3f} (1 step, warm-up included)" in out
    assert f"Final step time ms : {timing['step_time_ms']:.3f} (1 step, warm-up included)" in out
    assert "Final accuracy : " in out
    assert "1/1 - " in out and "\b" not in out and "\x1b[" not in out and "\r" not in out


def test_a_metric_that_is_no_accuracy_is_printed_by_name(tmp_path, capsys, monkeypatch):
    """The toy regression's final metric is val_loss: "Final loss", never "Final accuracy"."""
    from keras_zoo.cli import train
    from tests.cli.test_train_cli import register_toy

    register_toy(monkeypatch.setitem)
    argv = ["--model", "toy", "--epochs", "1", "--output", str(tmp_path / "toy"), "--verbose", "0"]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert "Final loss : " in out and "Final accuracy" not in out
    assert "Final performance FPS : " in out and "Final step time ms : " in out

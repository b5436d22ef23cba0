import os
import pathlib

import nibabel as nib
import numpy as np
import pytest

from keras_zoo.cli.main import main


def test_prepare_genesis_from_a_folder_of_nifti(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(2):
        volume = rng.integers(-1000, 1000, size=(80, 72, 40)).astype(np.int16)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / f"ct{i}.nii.gz"))
    out = tmp_path / "cubes"
    assert (
        main(["prepare", "genesis", str(tmp_path), "--output", str(out), "--scale", "3", "--folds", "0", "5"])
        == 0
    )
    files = sorted(os.listdir(out))
    assert files == ["bat_3_s_64x64x32_0.npy", "bat_3_s_64x64x32_5.npy"]
    cubes = np.load(out / files[0], allow_pickle=False)
    assert cubes.shape == (3, 64, 64, 32) and cubes.min() >= 0 and cubes.max() <= 1
    assert str(out / files[0]) in capsys.readouterr().out


def test_prepare_missing_volume_is_a_one_line_error(tmp_path, capsys):
    assert main(["prepare", "genesis", str(tmp_path / "nope.nii.gz"), "--output", str(tmp_path / "o")]) == 2
    assert "nope.nii.gz: volume not found" in capsys.readouterr().err


def test_prepare_voc_round_trip_on_real_samples(tmp_path, shared_data):
    pytest.importorskip("tensorflow")
    out = tmp_path / "tfrecord"
    assert (
        main(
            [
                "prepare",
                "voc",
                str(shared_data / "voc2012_samples"),
                "--output",
                str(out),
                "--splits",
                "val",
                "--num-shards",
                "2",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == ["val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]


# ------------------------------------------------------------------------- existing output and failures


def _nifti(path, seed=0, shape=(72, 72, 36)):
    volume = np.random.default_rng(seed).integers(-1000, 1000, size=shape).astype(np.int16)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
    return path


def _voc(root, ids=("a", "b", "c"), size=(20, 24)):
    """A small VOCdevkit/VOC2012 folder (train and val lists of ``ids``)."""
    from PIL import Image

    from keras_zoo.datasets import voc

    rng = np.random.default_rng(0)
    base = root / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        label = rng.integers(0, 21, size=size).astype(np.uint8)
        voc.save_label_png(label, base / "SegmentationClass" / f"{image_id}.png", palette=True)
    for split in ("train", "val"):
        (base / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def _imagenet(root):
    from tests.datasets.test_imagenet import write_tree

    write_tree(root, size=(24, 20))
    return root


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def test_prepare_genesis_keeps_an_existing_cube_file_unless_overwrite(tmp_path, capsys):
    volume = _nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "cubes"
    out.mkdir()
    earlier = out / "bat_2_s_64x64x32_0.npy"
    earlier.write_bytes(b"the user's earlier cubes")
    other = out / "notes.txt"
    other.write_text("keep")
    argv = ["prepare", "genesis", str(volume), "--output", str(out), "--scale", "2", "--folds", "0"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert str(earlier) in line and "--overwrite" in line
    assert earlier.read_bytes() == b"the user's earlier cubes"
    assert main([*argv, "--overwrite"]) == 0
    assert np.load(earlier).shape == (2, 64, 64, 32)
    assert other.read_text() == "keep"
    assert sorted(os.listdir(out)) == ["bat_2_s_64x64x32_0.npy", "notes.txt"]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--scale", "0"], "--scale must be >= 1"),
        (["--scale", "-3"], "--scale must be >= 1"),
        (["--folds", "-1"], "--folds must be >= 0"),
        (["--lung-max", "5"], "--lung-max must be a fraction"),
        (["--border", "0", "-1", "0"], "--border must be >= 0"),
    ],
)
def test_prepare_genesis_refuses_bad_numbers(tmp_path, capsys, option, expected):
    volume = _nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "cubes"
    assert main(["prepare", "genesis", str(volume), "--output", str(out), *option]) == 2
    assert expected in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("dataset", ["genesis", "voc", "imagenet"])
def test_prepare_output_that_is_a_file_is_one_line(tmp_path, capsys, dataset):
    if dataset != "genesis":
        pytest.importorskip("tensorflow")
    source = {
        "genesis": lambda: _nifti(tmp_path / "ct.nii.gz"),
        "voc": lambda: _voc(tmp_path / "VOCdevkit"),
        "imagenet": lambda: _imagenet(tmp_path / "images"),
    }[dataset]()
    target = tmp_path / "afile"
    target.write_text("mine")
    assert main(["prepare", dataset, str(source), "--output", str(target)]) == 2
    assert "afile: is a file, not a folder" in _one_error_line(capsys)
    assert target.read_text() == "mine"


@pytest.mark.parametrize("dataset", ["voc", "imagenet"])
def test_prepare_num_shards_zero_is_one_line_and_leaves_nothing(tmp_path, capsys, dataset):
    pytest.importorskip("tensorflow")
    source = _voc(tmp_path / "VOCdevkit") if dataset == "voc" else _imagenet(tmp_path / "images")
    out = tmp_path / "out"
    assert main(["prepare", dataset, str(source), "--output", str(out), "--num-shards", "0"]) == 2
    assert "--num-shards must be >= 1" in _one_error_line(capsys)
    assert not out.exists()


def _shards(folder, split):
    return sorted(n for n in os.listdir(folder) if n.startswith(f"{split}-"))


def test_prepare_voc_refuses_shards_of_the_split_and_overwrite_leaves_no_stale_ones(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from keras_zoo.datasets.voc_tfrecord import load_tfrecord_split

    root = _voc(tmp_path / "VOCdevkit")
    out = tmp_path / "rec"
    base = ["prepare", "voc", str(root), "--output", str(out)]
    assert main([*base, "--splits", "val", "train", "--num-shards", "3"]) == 0
    capsys.readouterr()
    (out / "README.txt").write_text("mine")
    train_before = {n: (out / n).read_bytes() for n in _shards(out, "train")}
    assert main([*base, "--splits", "val", "--num-shards", "2"]) == 2
    assert "val-00000-of-00003.tfrecord" in _one_error_line(capsys)
    assert _shards(out, "val") == [f"val-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert main([*base, "--splits", "val", "--num-shards", "2", "--overwrite"]) == 0
    assert _shards(out, "val") == ["val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
    assert {n: (out / n).read_bytes() for n in _shards(out, "train")} == train_before  # other split kept
    assert (out / "README.txt").read_text() == "mine"
    names, _, _ = load_tfrecord_split(out, "val")
    assert sorted(names) == ["a.jpg", "b.jpg", "c.jpg"]  # 3 images, not 6


def test_prepare_imagenet_refuses_existing_shards_and_overwrite_leaves_no_stale_ones(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    images = _imagenet(tmp_path / "images")
    out = tmp_path / "rec"
    base = ["prepare", "imagenet", str(images), "--output", str(out)]
    assert main([*base, "--num-shards", "3"]) == 0
    capsys.readouterr()
    assert _shards(out, "train") == [f"train-0000{i}-of-00003" for i in range(3)]
    assert main([*base, "--num-shards", "2"]) == 2
    assert "train-00000-of-00003" in _one_error_line(capsys)
    assert main([*base, "--num-shards", "2", "--overwrite"]) == 0
    assert _shards(out, "train") == ["train-00000-of-00002", "train-00001-of-00002"]
    assert _shards(out, "validation") == ["validation-00000-of-00001"]
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


@pytest.mark.parametrize("reader", ["voc", "imagenet"])
def test_tfrecord_readers_refuse_mixed_or_missing_shards(tmp_path, reader):
    from keras_zoo.errors import DataError

    suffix = ".tfrecord" if reader == "voc" else ""
    if reader == "voc":
        from keras_zoo.datasets.voc_tfrecord import tfrecord_files
    else:
        tfrecord_files = pytest.importorskip("keras_zoo.datasets.imagenet_tfrecord").tfrecord_files

    def empty_shards(folder: str, names) -> pathlib.Path:
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}{suffix}").write_bytes(b"")
        return tmp_path / folder

    mixed = empty_shards(
        "mixed", ["val-00000-of-00002", "val-00001-of-00002", *(f"val-0000{i}-of-00004" for i in range(4))]
    )
    with pytest.raises(
        DataError, match=r"mixed: val shards disagree on the shard count \(-of-00002 and -of-00004\)"
    ):
        tfrecord_files(mixed, "val")
    holes = empty_shards("holes", [f"val-0000{i}-of-00003" for i in (0, 2)])
    with pytest.raises(
        DataError, match=f"holes: val shard set is incomplete.*val-00001-of-00003{suffix} is missing"
    ):
        tfrecord_files(holes, "val")
    complete = empty_shards("complete", [f"val-0000{i}-of-00002" for i in range(2)])
    assert len(tfrecord_files(complete, "val")) == 2


def test_prepare_voc_names_a_truncated_jpeg(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    root = _voc(tmp_path / "VOCdevkit", size=(64, 80))
    jpeg = root / "VOC2012" / "JPEGImages" / "b.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:1000])  # header and a few rows
    out = tmp_path / "rec"
    assert (
        main(["prepare", "voc", str(root), "--output", str(out), "--splits", "val", "--num-shards", "2"]) == 2
    )
    line = _one_error_line(capsys)
    assert "b.jpg: unreadable JPEG" in line
    assert not out.exists()  # the folder this run made (and its complete first shard) are gone


def test_prepare_imagenet_failure_removes_what_the_run_wrote_and_nothing_else(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    images = _imagenet(tmp_path / "images")
    bad = sorted((images / sorted(os.listdir(images))[-1]).iterdir())[-1]
    bad.write_bytes(b"\xff\xd8not a jpeg")
    out = tmp_path / "rec"
    assert main(["prepare", "imagenet", str(images), "--output", str(out), "--num-shards", "2"]) == 2
    assert f"{bad.name}: cannot read image" in _one_error_line(capsys)
    assert not out.exists()
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["prepare", "imagenet", str(images), "--output", str(out), "--num-shards", "2"]) == 2
    capsys.readouterr()
    assert os.listdir(out) == ["mine.txt"]


def test_prepare_voc_missing_split_list_leaves_no_folder(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    root = _voc(tmp_path / "VOCdevkit")
    (root / "VOC2012" / "ImageSets" / "Segmentation" / "train.txt").unlink()
    out = tmp_path / "rec"
    assert main(["prepare", "voc", str(root), "--output", str(out), "--splits", "val", "train"]) == 2
    assert "train.txt" in _one_error_line(capsys)
    assert not out.exists()


def test_prepare_imagenet_output_inside_the_input_is_not_a_class_folder(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    images = _imagenet(tmp_path / "images")
    out = images / "tfrec"
    argv = ["prepare", "imagenet", str(images), "--output", str(out), "--num-shards", "2"]
    assert main(argv) == 0
    assert _shards(out, "train") == ["train-00000-of-00002", "train-00001-of-00002"]
    assert main([*argv, "--overwrite"]) == 0  # again, with its shards inside the input folder

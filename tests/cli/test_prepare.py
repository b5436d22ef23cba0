import os

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

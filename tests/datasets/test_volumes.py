"""Volume readers (NIfTI, MetaImage, DICOM series), HU windows, cube extraction and the cube fold files."""

from __future__ import annotations

import nibabel
import numpy as np
import pytest

from keras_zoo.datasets import volumes as V
from keras_zoo.errors import DataError
from tests.sample_files import save_dicom


def coded_volume(shape=(40, 36, 30)) -> np.ndarray:
    """A volume whose value encodes its own (x, y, z) index."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (x * 10_000 + y * 100 + z).astype(np.float32)


def test_nifti_is_read_in_ras_order_with_scaling(tmp_path):
    hu = np.random.default_rng(0).integers(-1000, 1500, (12, 10, 8)).astype(np.int16)
    image = nibabel.Nifti1Image(((hu + 1024) // 2).astype(np.int16), np.diag([-2.0, 2.0, 3.0, 1.0]))
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "ct.nii.gz"
    nibabel.save(image, path)
    volume = V.read_volume(path)
    np.testing.assert_allclose(volume, ((hu + 1024) // 2 * 2 - 1024)[::-1])  # x axis flipped L->R


def test_metaimage_is_transposed_to_xyz(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    volume = coded_volume((6, 5, 4))
    path = str(tmp_path / "scan.mhd")
    sitk.WriteImage(sitk.GetImageFromArray(volume.transpose(2, 1, 0)), path)
    np.testing.assert_array_equal(V.read_volume(path), volume)


def write_dicom_slice(path, pixels: np.ndarray, z: float, slope: float, intercept: float) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, z]
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    save_dicom(ds, path)


def test_dicom_series_is_sorted_by_position_and_rescaled_to_hu(tmp_path):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 3000, (4, 7, 5))  # (slice, rows, cols)
    for order, index in enumerate([2, 0, 3, 1]):  # file names out of slice order
        write_dicom_slice(
            tmp_path / f"im{order}.dcm", stored[index], z=2.5 * index, slope=1.0, intercept=-1024.0
        )
    (tmp_path / "README.txt").write_text("not a slice")
    volume = V.read_volume(tmp_path)
    np.testing.assert_array_equal(volume, stored.transpose(2, 1, 0) - 1024.0)


@pytest.mark.parametrize("name, content", [("bad.nii.gz", b"not gzip"), ("bad.xyz", b"x")])
def test_unreadable_volume_is_a_data_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=name):
        V.read_volume(tmp_path / name)
    with pytest.raises(DataError, match="not found"):
        V.read_volume(tmp_path / "missing.nii")


def test_hu_windows():
    np.testing.assert_allclose(V.hu_window(np.array([-2000, -1000, 0, 1000, 3000])), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(V.hu_window(np.array([-5, 1000, 5000]), "mr"), [0, 0.25, 1])
    with pytest.raises(ValueError, match="modality"):
        V.hu_window(np.zeros(3), "pet")


def test_cubes_are_crops_of_the_volume_within_the_border():
    volume = coded_volume()
    cubes = V.extract_cubes(volume, 20, np.random.default_rng(2), (16, 12, 8), border=(4, 5, 3))
    assert cubes.shape == (20, 16, 12, 8)
    for cube in cubes:
        x, y, z = (
            int(v) for v in (cube[0, 0, 0] // 10_000, cube[0, 0, 0] % 10_000 // 100, cube[0, 0, 0] % 100)
        )
        np.testing.assert_array_equal(cube, volume[x : x + 16, y : y + 12, z : z + 8])
        assert 4 <= x <= 40 - 16 - 4 and 5 <= y <= 36 - 12 - 5 and 3 <= z <= 30 - 8 - 3
    with pytest.raises(ValueError, match="too small"):
        V.extract_cubes(volume, 1, np.random.default_rng(0), (64, 64, 32))


def reference_lung_score(crop, depth, threshold, look_ahead=3):
    """The reference's voxel loop, written out plainly."""
    score = np.zeros(crop.shape[:2] + (depth,))
    for d in range(depth):
        for i in range(crop.shape[0]):
            for j in range(crop.shape[1]):
                k_hit = look_ahead - 1
                for k in range(look_ahead):
                    if crop[i, j, d + k] >= threshold:
                        k_hit = k
                        break
                score[i, j, d] = 1 - k_hit / (look_ahead - 1)
    return score.mean()


def test_lung_score_matches_the_reference_loop_and_rejects_dense_cubes():
    crop = np.random.default_rng(3).random((6, 5, 7))
    assert V.lung_score(crop, 4, 0.7) == pytest.approx(reference_lung_score(crop, 4, 0.7))
    air_and_tissue = np.zeros((60, 40, 40), np.float32)
    air_and_tissue[30:] = 0.6  # soft tissue (200 HU) in the upper half of x
    cubes = V.extract_cubes(air_and_tissue, 10, np.random.default_rng(4), (16, 16, 8), lung_max=0.15)
    assert len(cubes) == 10 and all(V.lung_score(c, 6, 0.425, 2) <= 0.15 for c in cubes)


def test_cube_files_round_trip_in_both_namings_and_subfolders(tmp_path):
    rng = np.random.default_rng(5)
    folds = {f: rng.random((f + 1, 8, 8, 4)).astype(np.float32) for f in range(4)}
    V.write_cube_file(folds[0], tmp_path, 32, 0)
    V.write_cube_file(folds[1], tmp_path, 32, 1, trainer_naming=False)
    V.write_cube_file(folds[2], tmp_path / "bat_32_s_8x8x4", 32, 2)
    assert (tmp_path / "bat_32_s_8x8x4_0.npy").is_file() and (tmp_path / "bat_32_8x8x4_1.npy").is_file()
    np.testing.assert_array_equal(
        V.read_cube_folds(tmp_path, [0, 1, 2]), np.concatenate([folds[0], folds[1], folds[2]])
    )
    with pytest.raises(DataError, match=r"folds \[3\]"):
        V.read_cube_folds(tmp_path, [0, 3])
    np.save(tmp_path / "bat_32_s_8x8x4_5.npy", folds[0] * 3)
    with pytest.raises(DataError, match="0, 1"):
        V.read_cube_folds(tmp_path, [5])


def test_prepare_writes_reference_fold_files(tmp_path):
    paths = []
    for i in range(3):
        hu = np.random.default_rng(i).uniform(-1200, 1200, (24, 20, 12)).astype(np.float32)
        paths.append(tmp_path / f"v{i}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(hu, np.eye(4)), paths[-1])
    written = V.prepare_genesis(paths, tmp_path / "cubes", scale=4, folds=(0, 5), cube_shape=(16, 16, 8))
    assert [p.rsplit("/", 1)[1] for p in written] == ["bat_4_s_16x16x8_0.npy", "bat_4_s_16x16x8_5.npy"]
    train = V.read_cube_folds(tmp_path / "cubes", [0])
    assert train.shape == (8, 16, 16, 8) and 0 <= train.min() and train.max() <= 1 and train.max() == 1


def test_synthetic_ct_is_seeded_and_has_ct_like_tissues():
    volume = V.synthetic_ct_volume((48, 48, 32), seed=3)
    np.testing.assert_array_equal(volume, V.synthetic_ct_volume((48, 48, 32), seed=3))
    assert not np.array_equal(volume, V.synthetic_ct_volume((48, 48, 32), seed=4))
    fractions = [np.mean(volume < -950), np.mean((volume > -900) & (volume < -750)), np.mean(volume > 500)]
    assert all(f > 0.005 for f in fractions)  # air, lung, bone
    cubes = V.synthetic_cubes(5, seed=1, cube_shape=(16, 16, 8))
    assert cubes.shape == (5, 16, 16, 8) and 0 <= cubes.min() and cubes.max() <= 1


def test_real_ct_nifti_gives_cubes(shared_data):
    path = shared_data / "totalsegmentator_examples" / "chest_ct_cropped.nii.gz"
    volume = V.read_volume(path)
    assert volume.shape == (120, 126, 164) and volume.min() == -1078 and volume.max() == 3343
    cubes = V.extract_cubes(V.hu_window(volume), 4, np.random.default_rng(0))
    assert cubes.shape == (4, 64, 64, 32) and 0 <= cubes.min() and cubes.max() <= 1
    mr = V.hu_window(V.read_volume(shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"), "mr")
    assert mr.shape == (117, 91, 20) and mr.min() == 0 and 0 < mr.max() < 0.25  # values up to 833 of 4000

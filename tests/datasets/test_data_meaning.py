"""Readers validate meaning, not only shape (issue 18): label encodings, multi-page TIFF stacks, one DICOM
series per volume, NaN/Inf and constant volumes, k-space given as images, and ``prepare`` on bad volumes."""

from __future__ import annotations

import logging
import os
import warnings

import nibabel
import numpy as np
import pytest
import tifffile
from PIL import Image

from keras_zoo.cli.main import main
from keras_zoo.datasets import isbi, mri_readers, volumes
from keras_zoo.datasets.phantoms import phantom_images
from keras_zoo.errors import DataError
from tests.sample_files import save_dicom

pytestmark = pytest.mark.backend_agnostic

SHAPE = (16, 20)


def membranes(seed: int = 0, count: int = 1) -> np.ndarray:
    """bool (count, H, W): True = cell interior, about 70 % of the pixels."""
    return np.random.default_rng(seed).random((count, *SHAPE)) > 0.3


def grey(seed: int = 0, count: int = 1) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(0, 256, (count, *SHAPE), dtype=np.uint8)


def isbi_folder(root, labels: dict[str, Image.Image]):
    """``root/image/<name>.png`` (grey(i)) and ``root/label/<name>.<ext>`` from the given label images."""
    (root / "image").mkdir(parents=True)
    (root / "label").mkdir()
    for i, (file_name, label) in enumerate(sorted(labels.items())):
        Image.fromarray(grey(i)[0]).save(root / "image" / f"{os.path.splitext(file_name)[0]}.png")
        label.save(root / "label" / file_name)
    return root


def palette_image(indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette([c for colour in colours for c in colour])
    return image


# ------------------------------------------------------------------------------------------ ISBI labels
def test_label_encodings_0_1_0_255_palette_bilevel_and_16_bit_give_the_same_labels(tmp_path):
    cells = membranes(count=2)
    encodings = {
        "0_255": lambda m: Image.fromarray(np.where(m, 255, 0).astype(np.uint8)),
        "0_1": lambda m: Image.fromarray(m.astype(np.uint8)),
        "palette": lambda m: palette_image(m, [(0, 0, 0), (255, 255, 255)]),
        "bilevel": lambda m: Image.fromarray(m),  # mode "1"
        "16_bit": lambda m: Image.fromarray(np.where(m, 65535, 0).astype(np.uint16)),
    }
    read = {}
    for name, encode in encodings.items():
        folder = isbi_folder(tmp_path / name, {f"{i}.png": encode(cells[i]) for i in range(2)})
        read[name] = isbi.read_isbi(folder)
    assert Image.open(tmp_path / "palette" / "label" / "0.png").mode == "P"
    assert Image.open(tmp_path / "bilevel" / "label" / "0.png").mode == "1"
    for name, slices in read.items():
        np.testing.assert_array_equal(slices.labels, cells.astype(np.float32), err_msg=name)
        np.testing.assert_array_equal(slices.images, read["0_255"].images, err_msg=name)


def test_palette_labels_are_read_by_colour_not_index(tmp_path):
    cells = membranes(1)[0]
    # Index 0 is painted white (cell interior) and index 1 black (membrane): the colours carry the meaning.
    label = palette_image(~cells, [(255, 255, 255), (0, 0, 0)])
    folder = isbi_folder(tmp_path, {"0.png": label})
    np.testing.assert_array_equal(isbi.read_isbi(folder).labels[0], cells.astype(np.float32))


def test_tiff_label_stack_of_0_1_equals_0_255(tmp_path):
    cells = membranes(count=3)
    volume = grey(count=3)
    tifffile.imwrite(tmp_path / "train-volume.tif", volume, photometric="minisblack")
    stacks = {}
    for name, values in {"a": np.where(cells, 255, 0), "b": cells.astype(np.uint8)}.items():
        labels = tmp_path / f"labels_{name}.tif"
        tifffile.imwrite(labels, values.astype(np.uint8), photometric="minisblack")
        stacks[name] = isbi.read_tiff_stacks(tmp_path / "train-volume.tif", labels)
    np.testing.assert_array_equal(stacks["a"].labels, cells.astype(np.float32))
    np.testing.assert_array_equal(stacks["b"].labels, stacks["a"].labels)


def test_grey_level_labels_are_refused_naming_the_file(tmp_path):
    blurred = np.clip(np.where(membranes(1)[0], 255, 0) + grey(1)[0] // 8, 0, 255).astype(np.uint8)
    folder = isbi_folder(tmp_path, {"0.png": Image.fromarray(blurred)})
    with pytest.raises(DataError, match=r"label/0\.png: label holds \d+ levels .*expected 0 = membrane"):
        isbi.read_isbi(folder)


def test_constant_and_zero_less_labels_are_refused(tmp_path):
    constant = isbi_folder(tmp_path / "c", {"0.png": Image.fromarray(np.full(SHAPE, 255, np.uint8))})
    with pytest.raises(DataError, match=r"c/label/0\.png: constant label \(every pixel 255\)"):
        isbi.read_isbi(constant)
    no_zero = np.where(membranes(1)[0], 2, 1).astype(np.uint8)
    shifted = isbi_folder(tmp_path / "s", {"0.png": Image.fromarray(no_zero)})
    with pytest.raises(DataError, match=r"s/label/0\.png: label levels 1 and 2"):
        isbi.read_isbi(shifted)


def test_decode_labels_refuses_nan(tmp_path):
    labels = np.where(membranes(1), 1.0, 0.0).astype(np.float32)
    labels[0, 2, 3] = np.nan
    with pytest.raises(DataError, match="lab.tif: label holds 1 NaN or Inf values"):
        isbi.decode_labels(labels, tmp_path / "lab.tif")


# ------------------------------------------------------------------------------------------ TIFF stacks
def test_a_three_page_tiff_in_the_image_folders_gives_three_slices(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "label").mkdir()
    pages, cells = grey(count=3), membranes(count=4)
    tifffile.imwrite(tmp_path / "image" / "stack.tif", pages, photometric="minisblack")
    tifffile.imwrite(tmp_path / "label" / "stack.tif", cells[:3].astype(np.uint8), photometric="minisblack")
    Image.fromarray(grey(7)[0]).save(tmp_path / "image" / "single.png")
    Image.fromarray(np.where(cells[3], 255, 0).astype(np.uint8)).save(tmp_path / "label" / "single.png")
    slices = isbi.read_isbi(tmp_path)
    assert slices.names == ["single", "stack page 0", "stack page 1", "stack page 2"]
    np.testing.assert_allclose(slices.images[1:], pages / 255.0, atol=1e-7)
    np.testing.assert_allclose(slices.images[0], grey(7)[0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(slices.labels, cells[[3, 0, 1, 2]].astype(np.float32))


def test_read_pages_reads_every_page_and_read_gray_slice_refuses_a_stack(tmp_path):
    pages = np.random.default_rng(3).random((3, *SHAPE)).astype(np.float32)
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    np.testing.assert_array_equal(isbi.read_pages(tmp_path / "stack.tif"), pages)
    with pytest.raises(DataError, match=r"stack\.tif: a stack of 3 pages"):
        isbi.read_gray_slice(tmp_path / "stack.tif")
    Image.fromarray(grey()[0]).save(tmp_path / "one.png")
    np.testing.assert_array_equal(
        isbi.read_pages(tmp_path / "one.png")[0], isbi.read_gray_slice(tmp_path / "one.png")
    )


def test_label_stack_with_other_page_count_is_refused(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "label").mkdir()
    tifffile.imwrite(tmp_path / "image" / "a.tif", grey(count=3), photometric="minisblack")
    tifffile.imwrite(
        tmp_path / "label" / "a.tif", membranes(count=2).astype(np.uint8), photometric="minisblack"
    )
    with pytest.raises(DataError, match=r"label/a\.tif: 2 label pages for 3 pages"):
        isbi.read_isbi(tmp_path)


# ------------------------------------------------------------------------------------------ DICOM series
def write_dicom_slice(path, pixels: np.ndarray, series_uid: str, z: float, slope: str = "1"):
    """One MR slice of ``series_uid`` at height ``z`` (16-bit pixels, rescale ``slope``)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesDescription = "MR", series_uid, f"series {series_uid[-1]}"
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, z]
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = slope, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns about a "NaN" slope
        save_dicom(ds, path)


def two_series(folder, counts: tuple[int, int]) -> dict[str, np.ndarray]:
    """Two interleaved series of the same geometry; slice k of series s holds the value 100 * s + k + 1."""
    folder.mkdir()
    planes = {}
    for s, count in enumerate(counts):
        uid = f"1.2.3.{s + 1}"
        values = [np.full((6, 5), 100 * s + k + 1) for k in range(count)]
        for k, plane in enumerate(values):
            write_dicom_slice(folder / f"s{s}_{k}.dcm", plane, uid, z=2.0 * k + s)
        planes[uid] = np.stack(values, axis=-1).transpose(1, 0, 2)
    return planes


def test_the_larger_dicom_series_is_read_and_the_choice_logged(tmp_path, caplog):
    planes = two_series(tmp_path / "dicom", (2, 3))
    with caplog.at_level(logging.WARNING, logger="keras_zoo.datasets.volumes"):
        volume = volumes.read_volume(tmp_path / "dicom")
    np.testing.assert_array_equal(volume, planes["1.2.3.2"])  # never interleaved with 1.2.3.1
    assert "holds 2 DICOM series; reading the largest, 1.2.3.2 (3 slices" in caplog.text
    assert "ignoring 1.2.3.1 (2 slices, 'series 1')" in caplog.text


def test_dicom_series_of_equal_size_are_refused_with_the_series_listed(tmp_path):
    two_series(tmp_path / "dicom", (2, 2))
    with pytest.raises(
        DataError, match=r"dicom: holds 2 DICOM series and no largest one: 1\.2\.3\.1 .*1\.2\.3\.2"
    ):
        volumes.read_volume(tmp_path / "dicom")
    with pytest.raises(DataError, match="no largest one"):
        mri_readers.load_mr_images(tmp_path / "dicom")


# ------------------------------------------------------------------------------------------ NaN / Inf
def ramp(shape=(12, 10, 8)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def test_nan_and_inf_voxels_are_counted_in_nifti_metaimage_and_npy(tmp_path):
    import SimpleITK as sitk

    volume = ramp()
    volume[1, 2, 3] = np.nan
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / "ct.nii.gz")
    with pytest.raises(DataError, match=r"ct\.nii\.gz: holds 1 NaN or Inf voxels \(of 960\)"):
        volumes.read_volume(tmp_path / "ct.nii.gz")
    volume[0, 0, :2] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(volume.transpose(2, 1, 0)), str(tmp_path / "ct.mha"))
    with pytest.raises(DataError, match=r"ct\.mha: holds 3 NaN or Inf voxels"):
        volumes.read_volume(tmp_path / "ct.mha")
    np.save(tmp_path / "ct.npy", volume)
    with pytest.raises(DataError, match=r"ct\.npy: holds 3 NaN or Inf voxels"):
        volumes.read_volume(tmp_path / "ct.npy")


def test_nan_rescale_slope_in_dicom_is_refused(tmp_path):
    (tmp_path / "dicom").mkdir()
    for k in range(2):
        write_dicom_slice(tmp_path / "dicom" / f"{k}.dcm", np.arange(30).reshape(6, 5), "1.2.3", k, "NaN")
    with pytest.raises(DataError, match=r"dicom: holds 60 NaN or Inf voxels"):
        volumes.read_volume(tmp_path / "dicom")


def test_nan_and_inf_in_mr_images_are_counted(tmp_path):
    images = phantom_images(2, 32, seed=0)
    images[1, 4, 4] = np.nan
    images[0, 0, 1] = np.inf
    np.save(tmp_path / "slices.npy", images)
    with pytest.raises(DataError, match=r"slices\.npy: holds 2 NaN or Inf values \(of 2048\)"):
        mri_readers.load_mr_images(tmp_path / "slices.npy")


# ------------------------------------------------------------------------------------------ constant volumes
def test_all_zero_and_constant_volumes_are_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 4), np.int16), np.eye(4)), tmp_path / "zero.nii")
    with pytest.raises(DataError, match=r"zero\.nii: the volume is all zero: nothing to learn"):
        volumes.read_volume(tmp_path / "zero.nii")
    np.save(tmp_path / "five.npy", np.full((8, 8, 4), 5.0, np.float32))
    with pytest.raises(DataError, match=r"five\.npy: the volume is constant \(every voxel 5\)"):
        volumes.read_volume(tmp_path / "five.npy")
    empty_label = volumes.read_volume(tmp_path / "zero.nii", allow_constant=True)
    assert empty_label.shape == (8, 8, 4) and not empty_label.any()


def test_all_zero_mr_images_are_refused(tmp_path):
    np.save(tmp_path / "zero.npy", np.zeros((2, 32, 32), np.complex64))
    with pytest.raises(DataError, match=r"zero\.npy: every value is zero"):
        mri_readers.load_mr_images(tmp_path / "zero.npy")
    images = phantom_images(3, 32, seed=1)
    images[1] = 0
    np.save(tmp_path / "one_blank.npy", images)
    with pytest.raises(
        DataError, match=r"one_blank\.npy: 1 of 3 images are all zero \(the first is number 1\)"
    ):
        mri_readers.load_mr_images(tmp_path / "one_blank.npy")
    nibabel.save(nibabel.Nifti1Image(np.zeros((32, 32, 2), np.float32), np.eye(4)), tmp_path / "zero.nii")
    with pytest.raises(DataError, match=r"zero\.nii: the volume is all zero"):
        mri_readers.load_mr_images(tmp_path / "zero.nii")


# ------------------------------------------------------------------------------------------ k-space
def test_kspace_energy_of_a_delta_and_of_a_flat_array():
    delta = np.zeros((40, 30))
    delta[20, 15] = 1.0
    assert mri_readers.kspace_energy(delta) == (1.0, 0.0)
    assert mri_readers.kspace_energy(np.roll(delta, (-20, -15), (0, 1))) == (0.0, 1.0)
    flat = np.ones((2, 40, 30))  # each box holds 4 x 3 of the 40 x 30 pixels
    np.testing.assert_allclose(mri_readers.kspace_energy(flat), (12 / 1200, 12 / 1200))


def test_centred_and_uncentred_kspace_are_refused_and_images_pass(tmp_path):
    images = phantom_images(3, 48, seed=2)
    kspace = np.fft.fft2(images, norm="ortho")
    np.save(tmp_path / "uncentred.npy", kspace)
    np.save(tmp_path / "centred.npy", np.fft.fftshift(kspace, axes=(-2, -1)))
    np.save(tmp_path / "images.npy", images)
    with pytest.raises(DataError, match=r"uncentred\.npy: looks like k-space.*at the corners"):
        mri_readers.load_mr_images(tmp_path / "uncentred.npy")
    with pytest.raises(DataError, match=r"centred\.npy: looks like k-space.*at the centre .*give images"):
        mri_readers.load_mr_images(tmp_path / "centred.npy")
    loaded = mri_readers.load_mr_images(tmp_path / "images.npy")
    np.testing.assert_allclose(loaded, images / np.abs(images).max(axis=(1, 2), keepdims=True), atol=1e-6)


def test_bart_files_with_coils_or_maps_are_refused(tmp_path):
    coils = np.fft.fft2(phantom_images(4, 32, seed=3), norm="ortho").transpose(1, 2, 0)[None]  # (1, x, y, 4)
    mri_readers.write_cfl(tmp_path / "ksp", coils)
    with pytest.raises(DataError, match=r"ksp\.cfl: BART dims \[1, 32, 32, 4\] hold 4 coils .*bart rss 8"):
        mri_readers.load_mr_images(tmp_path / "ksp.cfl")
    maps = phantom_images(2, 32, seed=4).transpose(1, 2, 0)[None, :, :, None]  # (1, x, y, 1, 2)
    mri_readers.write_cfl(tmp_path / "img", maps)
    with pytest.raises(DataError, match=r"img\.hdr: BART dims \[1, 32, 32, 1, 2\] hold 2 ESPIRiT maps"):
        mri_readers.load_mr_images(tmp_path / "img.hdr")


def test_real_bart_kspace_and_maps_are_refused_and_real_images_pass(shared_data):
    bart = shared_data / "mr_kspace_bart_brain"
    with pytest.raises(DataError, match="hold 8 coils"):
        mri_readers.load_mr_images(bart / "ksp.cfl")
    with pytest.raises(DataError, match="hold 2 ESPIRiT maps"):
        mri_readers.load_mr_images(bart / "img.cfl")
    assert mri_readers.load_mr_images(bart / "reference_image.npy").shape == (1, 180, 230)
    prostate = shared_data / "mr_prostatex" / "ProstateX-0000_t2_tse_tra_4.nii.gz"
    slices = mri_readers.load_mr_images(prostate)
    assert max(mri_readers.kspace_energy(slices)) < 0.05
    assert max(mri_readers.kspace_energy(np.fft.fft2(slices))) > 0.5


# ------------------------------------------------------------------------------------------ prepare
def write_ct(path, nan: bool = False) -> None:
    volume = np.random.default_rng(0).integers(-1000, 1000, size=(72, 72, 36)).astype(np.float32)
    if nan:
        volume[10, 20, 30] = np.nan
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(path))


def test_prepare_with_a_nan_voxel_is_one_line_and_writes_nothing(tmp_path, capsys):
    write_ct(tmp_path / "a.nii.gz")
    write_ct(tmp_path / "b.nii.gz", nan=True)  # the second fold's volume: fold 0's file would come first
    before = sorted(os.listdir(tmp_path))
    argv = ["prepare", "genesis", str(tmp_path), "--output", str(tmp_path / "out" / "cubes"), "--scale", "2"]
    assert main([*argv, "--folds", "0", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {tmp_path / 'b.nii.gz'}: holds 1 NaN or Inf voxels (of 186624)"]
    assert sorted(os.listdir(tmp_path)) == before  # not even the output folder


def test_prepare_failure_leaves_an_existing_output_folder_as_it_was(tmp_path, capsys):
    write_ct(tmp_path / "a.nii.gz")
    np.save(tmp_path / "flat.npy", np.full((72, 72, 36), -1000.0, np.float32))
    out = tmp_path / "cubes"
    out.mkdir()
    (out / "bat_2_s_64x64x32_0.npy").write_bytes(b"an earlier run's cubes")
    argv = [
        "prepare",
        "genesis",
        str(tmp_path / "a.nii.gz"),
        str(tmp_path / "flat.npy"),
        "--output",
        str(out),
    ]
    # --overwrite: the existing file of the same name may be replaced, but only by a complete new run
    assert main([*argv, "--scale", "2", "--folds", "0", "--overwrite"]) == 2
    assert "flat.npy: the volume is constant (every voxel -1000)" in capsys.readouterr().err
    assert os.listdir(out) == ["bat_2_s_64x64x32_0.npy"]  # no temporary file left behind
    assert (out / "bat_2_s_64x64x32_0.npy").read_bytes() == b"an earlier run's cubes"


def test_prepare_of_good_volumes_writes_finite_cubes_and_write_cube_file_refuses_nan(tmp_path):
    write_ct(tmp_path / "a.nii.gz")
    (path,) = volumes.prepare_genesis([tmp_path / "a.nii.gz"], tmp_path / "out", scale=2, folds=[3])
    cubes = np.load(path)
    assert cubes.shape == (2, 64, 64, 32) and np.isfinite(cubes).all()
    cubes[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="cubes hold 1 NaN or Inf values"):
        volumes.write_cube_file(cubes, tmp_path / "nan", scale=2, fold=0)
    assert not (tmp_path / "nan").exists()

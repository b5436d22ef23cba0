"""ISBI 2012 readers (PNG folders, TIFF stacks, real data), their errors, the synthetic set and batches."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from keras_zoo.datasets import isbi
from keras_zoo.errors import DataError

pytestmark = pytest.mark.backend_agnostic


def write_pairs(folder, names=("0", "1", "2", "10"), shape=(24, 32), seed=0):
    """Writes image/label PNG pairs; returns the uint8 arrays written, by name."""
    rng = np.random.default_rng(seed)
    (folder / "image").mkdir(parents=True)
    (folder / "label").mkdir(parents=True)
    written = {}
    for name in names:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        label = np.where(rng.random(shape) < 0.3, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / "image" / f"{name}.png")
        Image.fromarray(label).save(folder / "label" / f"{name}.png")
        written[name] = (image, label)
    return written


def test_png_folders_scaled_thresholded_and_naturally_ordered(tmp_path):
    written = write_pairs(tmp_path / "train")
    slices = isbi.read_isbi(tmp_path)
    assert slices.names == ["0", "1", "2", "10"]
    assert slices.images.shape == (4, 24, 32) and slices.images.dtype == np.float32
    for i, name in enumerate(slices.names):
        image, label = written[name]
        np.testing.assert_allclose(slices.images[i], image / 255.0, atol=1e-6)
        np.testing.assert_array_equal(slices.labels[i], (label == 255).astype(np.float32))
    # A folder holding image/ and label/ directly works too.
    assert isbi.read_isbi(tmp_path / "train").names == slices.names


def test_tiff_stacks(tmp_path):
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 256, (3, 16, 20), dtype=np.uint8)
    labels = np.where(rng.random((3, 16, 20)) < 0.25, 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "train-volume.tif", volume, photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", labels, photometric="minisblack")
    slices = isbi.read_isbi(tmp_path)
    assert slices.names == ["page 0", "page 1", "page 2"]
    np.testing.assert_allclose(slices.images, volume / 255.0, atol=1e-6)
    np.testing.assert_array_equal(slices.labels, labels == 255)


def test_a_grey_stack_stored_as_colour_planes_is_read_slice_by_slice(tmp_path, caplog):
    """tifffile.imwrite stores a (3, H, W) array as one colour image with separate planes unless told
    otherwise; read as colour, Pillow mixed the three slices into one luminance slice."""
    rng = np.random.default_rng(2)
    volume = rng.integers(0, 256, (3, 16, 20), dtype=np.uint8)
    labels = np.where(rng.random((3, 16, 20)) < 0.25, 0, 255).astype(np.uint8)
    planes = {"photometric": "rgb", "planarconfig": "separate"}
    for folder, array in (("image", volume), ("label", labels)):
        (tmp_path / "train" / folder).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "train" / folder / "s.tif", array, **planes)
    tifffile.imwrite(tmp_path / "train-volume.tif", volume, **planes)
    tifffile.imwrite(tmp_path / "train-labels.tif", labels, **planes)
    with caplog.at_level("WARNING", logger="keras_zoo.datasets.isbi"):
        folders = isbi.read_png_folders(tmp_path / "train" / "image", tmp_path / "train" / "label")
        stacks = isbi.read_tiff_stacks(tmp_path / "train-volume.tif", tmp_path / "train-labels.tif")
    for slices in (folders, stacks):
        np.testing.assert_allclose(slices.images, volume / 255.0, atol=1e-6)
        np.testing.assert_array_equal(slices.labels, labels == 255)
    assert folders.names == ["s page 0", "s page 1", "s page 2"]
    np.testing.assert_allclose(isbi.read_pages(tmp_path / "train-volume.tif"), volume / 255.0, atol=1e-6)
    assert "s.tif: tagged as one colour image with 3 separate planes" in caplog.text


def test_colour_pages_in_separate_planes_are_still_read_as_luminance(tmp_path):
    """Only one page of 3 or 4 planes is taken for a grey stack; a stack of colour pages stays colour."""
    rgb = np.random.default_rng(3).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "colour.tif", rgb, photometric="rgb", planarconfig="separate")
    pages = isbi.read_pages(tmp_path / "colour.tif")
    luminance = [np.asarray(Image.fromarray(page.transpose(1, 2, 0)).convert("L")) for page in rgb]
    np.testing.assert_allclose(pages, np.stack(luminance) / 255.0, atol=1e-6)


def test_a_colour_tiff_is_not_taken_for_a_stack(tmp_path):
    """An interleaved RGB (H, W, 3) image would pass for H pages of W x 3 pixels."""
    tifffile.imwrite(tmp_path / "train-volume.tif", np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "train-labels.tif", np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(
        DataError,
        match=r"train-volume\.tif: expected grayscale pages \(pages, H, W\), got colour samples \(axes YXS",
    ):
        isbi.read_isbi(tmp_path)


def test_real_isbi_slices(shared_data):
    slices = isbi.read_isbi(shared_data / "isbi2012")
    assert slices.images.shape == (25, 512, 512) and slices.labels.shape == (25, 512, 512)
    assert slices.names[:3] == ["0", "1", "2"]
    assert 0.0 <= slices.images.min() and slices.images.max() <= 1.0
    assert set(np.unique(slices.labels)) == {0.0, 1.0}
    assert slices.labels.mean() == pytest.approx(0.776, abs=0.005)  # README: 77.6 % white (cell interior)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not found"):
        isbi.read_isbi(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no ISBI data"):
        isbi.read_isbi(tmp_path)
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "label").mkdir()
    with pytest.raises(DataError, match=r"empty/image: no \.png"):
        isbi.read_isbi(tmp_path / "empty")
    (tmp_path / "nolabel" / "image").mkdir(parents=True)
    with pytest.raises(DataError, match="nolabel/label: label folder not found"):
        isbi.read_isbi(tmp_path / "nolabel")


def test_pair_errors_name_the_file(tmp_path):
    write_pairs(tmp_path / "count")
    (tmp_path / "count" / "label" / "10.png").unlink()
    with pytest.raises(DataError, match="count/label: 3 labels for 4 images"):
        isbi.read_isbi(tmp_path / "count")

    write_pairs(tmp_path / "names")
    (tmp_path / "names" / "label" / "2.png").rename(tmp_path / "names" / "label" / "7.png")
    with pytest.raises(DataError, match=r"names/image/2\.png: no label named '2'"):
        isbi.read_isbi(tmp_path / "names")

    write_pairs(tmp_path / "corrupt")
    (tmp_path / "corrupt" / "image" / "1.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"corrupt/image/1\.png: cannot read image"):
        isbi.read_isbi(tmp_path / "corrupt")

    write_pairs(tmp_path / "shape")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "shape" / "label" / "1.png")
    with pytest.raises(DataError, match=r"shape/label/1\.png: label shape \(10, 10\) differs"):
        isbi.read_isbi(tmp_path / "shape")

    tifffile.imwrite(tmp_path / "train-volume.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"train-labels\.tif: label stack shape \(2, 8, 8\) differs"):
        isbi.read_isbi(tmp_path)
    (tmp_path / "train-labels.tif").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"train-labels\.tif: cannot read TIFF"):
        isbi.read_isbi(tmp_path)


def test_synthetic_membranes_are_seeded_and_membrane_like():
    first = isbi.synthetic_membranes(2, (48, 64), seed=3)
    again = isbi.synthetic_membranes(2, (48, 64), seed=3)
    np.testing.assert_array_equal(first.images, again.images)
    assert first.images.shape == (2, 48, 64) and set(np.unique(first.labels)) == {0.0, 1.0}
    membrane_fraction = 1.0 - first.labels.mean()
    assert 0.05 < membrane_fraction < 0.4
    # Membranes are dark: their mean intensity is well below the cells'.
    assert first.images[first.labels == 0].mean() < first.images[first.labels == 1].mean() - 0.2


def test_crop_batches_are_aligned_windows_and_reproducible():
    slices = isbi.synthetic_membranes(3, (40, 48), seed=0)
    batches = isbi.training_batches(slices, batch_size=2, input_size=(16, 16), steps=3, fit="crop", seed=5)
    x, y = batches[1]
    assert x.shape == (2, 16, 16, 1) and y.shape == (2, 16, 16, 1) and x.dtype == np.float32
    for image, label in zip(x[..., 0], y[..., 0]):
        hits = [
            (s, r, c)
            for s in range(3)
            for r in range(40 - 15)
            for c in range(48 - 15)
            if np.array_equal(slices.images[s, r : r + 16, c : c + 16], image)
        ]
        assert hits, "patch is not a window of any slice"
        s, r, c = hits[0]
        np.testing.assert_array_equal(slices.labels[s, r : r + 16, c : c + 16], label)
    np.testing.assert_array_equal(batches[1][0], x)


def test_resize_batches_and_validation_slices():
    slices = isbi.synthetic_membranes(2, (40, 52), seed=1)
    x, y = isbi.training_batches(slices, 2, (32, 32), 1, fit="resize", augment=None)[0]
    assert x.shape == (2, 32, 32, 1) and set(np.unique(y)) <= {0.0, 1.0}
    cropped = isbi.validation_slices(slices, "crop", (32, 32), stride=16)
    assert cropped.images.shape == (2, 32, 48)
    np.testing.assert_array_equal(cropped.labels, slices.labels[:, 4:36, 2:50])
    assert isbi.validation_slices(slices, "resize", (32, 32), 16).images.shape == (2, 32, 32)
    with pytest.raises(ValueError, match="larger than the slices"):
        isbi.training_batches(slices, 2, (64, 64), 1, fit="crop")


def test_hold_out_is_seeded_and_needs_two_slices():
    slices = isbi.synthetic_membranes(5, (32, 32), seed=0)
    train, val = isbi.hold_out(slices, 0.2)
    assert (len(train.images), len(val.images)) == (4, 1)
    assert sorted(train.names + val.names) == sorted(slices.names)
    assert isbi.hold_out(slices, 0.2)[1].names == val.names
    with pytest.raises(DataError, match="at least 2 slices"):
        isbi.hold_out(slices.subset([0]), 0.2)
    with pytest.raises(ValueError, match="val_fraction"):
        isbi.hold_out(slices, 1.0)

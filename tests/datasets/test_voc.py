"""VOC readers (folders, tfrecords written by prepare_voc), palette, augmentation, synthetic scenes."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_zoo.datasets import voc
from keras_zoo.datasets.voc_tfrecord import load_tfrecord_split, prepare_voc, shard_name
from keras_zoo.errors import DataError


def _write_voc(root, ids, size=(23, 31), raw=False, seed=0):
    """A small VOCdevkit/VOC2012 folder with random images and labels; returns {id: (image, label)}."""
    rng = np.random.default_rng(seed)
    base = root / "VOC2012"
    for folder in (
        "JPEGImages",
        "SegmentationClassRaw" if raw else "SegmentationClass",
        "ImageSets/Segmentation",
    ):
        (base / folder).mkdir(parents=True, exist_ok=True)
    data = {}
    for image_id in ids:
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        label = rng.integers(0, 21, size=size).astype(np.uint8)
        label[0] = 255
        Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        folder = "SegmentationClassRaw" if raw else "SegmentationClass"
        voc.save_label_png(label, base / folder / f"{image_id}.png", palette=not raw)
        data[image_id] = (np.asarray(Image.open(base / "JPEGImages" / f"{image_id}.jpg")), label)
    (base / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    return data


@pytest.mark.parametrize("raw", [False, True])
def test_folder_and_tfrecord_readers_round_trip(tmp_path, raw):
    ids = [f"2007_{i:06d}" for i in range(5)]
    data = _write_voc(tmp_path / "VOCdevkit", ids, raw=raw)
    read_ids, images, labels = voc.load_voc_split(tmp_path / "VOCdevkit", "train")
    assert read_ids == ids
    for image_id, image, label in zip(read_ids, images, labels):
        np.testing.assert_array_equal(image, data[image_id][0])
        np.testing.assert_array_equal(label, data[image_id][1])  # 255 preserved
    written = prepare_voc(tmp_path / "VOCdevkit", tmp_path / "records", splits=["train"])
    assert [os.path.basename(p) for p in written["train"]] == [shard_name("train", i, 4) for i in range(4)]
    assert os.path.basename(written["train"][1]) == "train-00001-of-00004.tfrecord"
    names, rec_images, rec_labels = load_tfrecord_split(tmp_path / "records", "train")
    assert names == [f"{i}.jpg" for i in ids]
    for image, label, image_id in zip(rec_images, rec_labels, ids):
        # same JPEG bytes; TF's and Pillow's JPEG decoders differ by a few grey levels (IDCT / upsampling)
        assert image.shape == data[image_id][0].shape
        assert np.abs(image.astype(int) - data[image_id][0]).mean() < 4
        np.testing.assert_array_equal(label, data[image_id][1])


def test_streamed_training_batches_and_labels_only_from_tfrecords(tmp_path):
    from keras_zoo.datasets.voc_tfrecord import load_tfrecord_labels, training_dataset

    data = _write_voc(tmp_path / "VOCdevkit", [f"2007_{i:06d}" for i in range(5)])
    prepare_voc(tmp_path / "VOCdevkit", tmp_path / "records", splits=["train"])
    labels = load_tfrecord_labels(tmp_path / "records", "train")
    np.testing.assert_array_equal(np.stack(labels), np.stack([label for _, label in data.values()]))
    stream = training_dataset(tmp_path / "records", "train", 3, 2, crop_size=(17, 19), seed=4, workers=2)
    batches = [(x.numpy(), y.numpy()) for x, y in stream]
    assert len(batches) == 2
    for x, y in batches:
        assert x.shape == (3, 17, 19, 3) and x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
        assert y.shape == (3, 17, 19) and y.dtype == np.uint8 and set(np.unique(y)) <= {*range(21), 255}
    with pytest.raises(DataError, match="no val-"):
        training_dataset(tmp_path / "records", "val", 3, 2)


def test_real_samples_through_prepare_voc(shared_data, tmp_path):
    root = shared_data / "voc2012_samples"
    ids, images, labels = voc.load_voc_split(root, "val")
    assert len(ids) == 14 and images[0].shape == (513, 513, 3) and labels[0].shape == (513, 513)
    assert 255 in np.unique(np.concatenate([lab.ravel() for lab in labels]))
    prepare_voc(root, tmp_path, splits=["val"])
    names, _, rec_labels = load_tfrecord_split(tmp_path, "val")
    assert names == [f"{i}.jpg" for i in ids]
    for label, rec in zip(labels, rec_labels):
        np.testing.assert_array_equal(label, rec)
    colour = np.asarray(Image.open(root / "SegmentationClass" / f"{ids[0]}.png").convert("RGB"))
    np.testing.assert_array_equal(voc.rgb_to_labels(colour), labels[0])


def test_bad_label_values_name_the_file(tmp_path):
    _write_voc(tmp_path, ["a"], raw=True)
    path = tmp_path / "VOC2012/SegmentationClassRaw/a.png"
    bad = np.zeros((23, 31), np.uint8)
    bad[3, 3] = 40
    Image.fromarray(bad).save(path)
    with pytest.raises(DataError, match="a.png.*40"):
        voc.load_voc_split(tmp_path, "train")
    with pytest.raises(DataError, match="JPEGImages"):
        voc.find_voc_root(tmp_path / "VOC2012" / "ImageSets")
    with pytest.raises(DataError, match="val.txt"):
        voc.read_split_ids(tmp_path, "val")


def test_palette_round_trip_keeps_void():
    labels = np.array([[0, 1, 20], [255, 15, 0]], np.uint8)
    rgb = voc.labels_to_rgb(labels)
    assert tuple(rgb[1, 0]) == (224, 224, 192) and tuple(rgb[0, 1]) == (128, 0, 0)
    np.testing.assert_array_equal(voc.rgb_to_labels(rgb), labels)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(DataError, match="outside the VOC palette"):
        voc.rgb_to_labels(rgb)


def test_augmentation_keeps_image_and_label_aligned():
    # the label is a function of the image colour, so any misalignment shows up
    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 21, size=(6, 8)), np.ones((16, 16), int)).astype(np.uint8)
    image = np.stack([label * 10, 255 - label * 10, np.full_like(label, 50)], -1).astype(np.uint8)
    seen_pad = False
    for seed in range(12):
        out_image, out_label = voc.augment(image, label, np.random.default_rng(seed), crop_size=(80, 112))
        assert out_image.shape == (80, 112, 3) and out_label.shape == (80, 112)
        valid = out_label != 255
        seen_pad |= bool((~valid).any())
        # the class read back from the colour agrees except on bilinear-blended boundary pixels
        decoded = np.round(out_image[..., 0] / 10.0)
        # (Pillow's bilinear downscaling is antialiased, so at scale 0.5 a quarter of the pixels are blends)
        assert np.mean(decoded[valid] == out_label[valid]) > 0.7
        np.testing.assert_array_equal(out_image[~valid], np.full_like(out_image[~valid], 128))
        # without scaling (crop, pad, flip only) the alignment is exact
        out_image, out_label = voc.augment(
            image, label, np.random.default_rng(seed), (80, 112), scales=(1.0,)
        )
        np.testing.assert_array_equal(
            out_image[..., 0], np.where(out_label == 255, 128, out_label.astype(int) * 10)
        )
    assert seen_pad  # scale 0.5 pads with the mean pixel and void


def test_tf_augmentation_keeps_image_and_label_aligned_and_is_seeded():
    """The tf.image version of the augmentation (streamed tfrecords), checked as the NumPy one above."""
    tf = pytest.importorskip("tensorflow")
    from keras_zoo.datasets.voc_tfrecord import augment_tf

    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 21, size=(6, 8)), np.ones((16, 16), int)).astype(np.uint8)
    image = np.stack([label * 10, 255 - label * 10, np.full_like(label, 50)], -1).astype(np.uint8)
    seen_pad = False
    for seed in range(12):
        out_image, out_label = (t.numpy() for t in augment_tf(image, label, (3, seed), (80, 112)))
        assert (
            out_image.shape == (80, 112, 3) and out_image.dtype == np.float32 and out_label.dtype == np.uint8
        )
        assert -1.0 <= out_image.min() and out_image.max() <= 1.0
        valid = out_label != 255
        seen_pad |= bool((~valid).any())
        pixels = np.round((out_image + 1.0) * 127.5)
        assert np.mean(np.round(pixels[..., 0] / 10.0)[valid] == out_label[valid]) > 0.7
        np.testing.assert_array_equal(pixels[~valid], np.full_like(pixels[~valid], 128))
        # without scaling (crop, pad, flip only) the alignment is exact
        out_image, out_label = (t.numpy() for t in augment_tf(image, label, (3, seed), (80, 112), (1.0,)))
        pixels = np.round((out_image + 1.0) * 127.5)
        np.testing.assert_array_equal(pixels[..., 0], np.where(out_label == 255, 128, out_label * 10.0))
    assert seen_pad  # scales below 1 pad with the mean pixel and void
    again = augment_tf(tf.constant(image), tf.constant(label), (3, 5), (80, 112))
    first = augment_tf(image, label, (3, 5), (80, 112))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())


def test_synthetic_scenes_are_seeded_and_valid():
    images, labels = voc.synthetic_dataset(3, (40, 48), seed=7)
    again, _ = voc.synthetic_dataset(3, (40, 48), seed=7)
    np.testing.assert_array_equal(images[1], again[1])
    assert images[0].shape == (40, 48, 3) and images[0].dtype == np.uint8
    values = np.unique(np.concatenate([lab.ravel() for lab in labels]))
    assert values[0] == 0 and 255 in values and set(values) <= set(range(21)) | {255}


def test_training_helpers_scales_label_check_and_synthetic_splits():
    assert voc.scales_between(0.75, 1.25) == (0.75, 1.0, 1.25)
    assert voc.scales_between(1.1, 1.2) == (1.0,)  # none of the reference's scales: no rescaling
    label = np.array([[0, 3], [255, 1]], np.uint8)
    voc.check_label_classes(["a"], [label], 4)  # void 255 is not a class
    with pytest.raises(DataError, match="a: label class 3 >= --classes 3"):
        voc.check_label_classes(["a"], [label], 3, "--classes 3")
    (names, images, labels), (val_names, val_images, _) = voc.synthetic_splits(9, (17, 19), seed=1)
    assert (len(names), len(val_names)) == (8, 1) and images[0].shape == (17, 19, 3)
    again = voc.synthetic_splits(9, (17, 19), seed=1)
    np.testing.assert_array_equal(again[1][1][0], val_images[0])
    with pytest.raises(DataError, match="at least 2"):
        voc.synthetic_splits(1, (17, 19))
    assert voc.class_names(21)[0] == "background" and voc.class_names(3) == ["class0", "class1", "class2"]


def test_training_samples_are_seeded_crops():
    images, labels = voc.synthetic_dataset(3, (40, 44), seed=0)
    batches = voc.training_samples(
        images, labels, (24, 24), (1.0,), 2, 2, seed=5, preprocess=lambda x: x / 255
    )
    x, y = batches[0]
    assert x.shape == (2, 24, 24, 3) and y.shape == (2, 24, 24) and x.max() <= 1.0
    again = voc.training_samples(images, labels, (24, 24), (1.0,), 2, 2, seed=5, preprocess=lambda x: x / 255)
    np.testing.assert_array_equal(again[0][1], y)

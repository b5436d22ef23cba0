import csv
import os

import numpy as np
import pytest
from PIL import Image

from keras_zoo.datasets import imagenet
from keras_zoo.errors import ConfigError, DataError

WNIDS = ["n01440764", "n01443537", "n15075141"]  # standard indices 0, 1, 999


def write_tree(root, size=(40, 30)):
    """One JPEG per class, each a flat colour; returns {path: standard index}."""
    truth = {}
    for index, wnid in zip((0, 1, 999), WNIDS):
        os.makedirs(root / wnid, exist_ok=True)
        path = root / wnid / f"{wnid}_1.JPEG"
        Image.new("RGB", size, (index % 256, 100, 200)).save(path, quality=95)
        truth[str(path)] = index
    return truth


def test_synsets_shipped_with_the_package():
    table = imagenet.synsets()
    assert len(table) == 1000 and [w for w, _ in table] == sorted(w for w, _ in table)
    assert table[0] == ("n01440764", "tench") and table[999][0] == "n15075141"
    assert imagenet.class_name(1) == "tench" and imagenet.class_name(0) == "background"
    assert imagenet.class_name(0, classes=1000) == "tench"
    with pytest.raises(ConfigError, match="1000 or 1001"):
        imagenet.wnid_to_label(10)


def test_folder_reader_labels(tmp_path):
    truth = write_tree(tmp_path)
    paths, labels = imagenet.list_image_folder(tmp_path, classes=1001)
    assert [truth[p] + 1 for p in paths] == labels.tolist()
    _, labels_1000 = imagenet.list_image_folder(tmp_path, classes=1000)
    assert labels_1000.tolist() == [0, 1, 999]


def test_folder_reader_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        imagenet.list_image_folder(tmp_path / "missing")
    (tmp_path / "cats").mkdir()
    with pytest.raises(DataError, match="wnid"):
        imagenet.list_image_folder(tmp_path)
    bad = tmp_path / "bad.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.JPEG"):
        imagenet.open_rgb_image(bad)


def test_inception_preprocessing_ranges_and_shapes():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    for _ in range(5):
        x = imagenet.preprocess_train(image, 32, rng)
        assert x.shape == (32, 32, 3) and x.dtype == np.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
    # extremes map to -1 and 1
    white = imagenet.preprocess_eval(Image.new("RGB", (50, 70), (255, 255, 255)), 16)
    black = imagenet.preprocess_eval(Image.new("RGB", (50, 70), (0, 0, 0)), 16)
    np.testing.assert_allclose(white, 1.0)
    np.testing.assert_allclose(black, -1.0)


def test_eval_preprocessing_is_the_central_crop():
    # left and right 1/16 of the width are red; the central 87.5% crop sees only blue
    array = np.zeros((64, 64, 3), np.uint8)
    array[..., 2] = 255
    array[:, :4, 0], array[:, -4:, 0] = 255, 255
    array[:, :4, 2], array[:, -4:, 2] = 0, 0
    x = imagenet.preprocess_eval(Image.fromarray(array), 8)
    np.testing.assert_allclose(x[..., 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(x[..., 2], 1.0, atol=1e-6)


def test_distorted_boxes_follow_the_reference_ranges():
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left, h, w = imagenet.sample_distorted_box(300, 400, rng)
        assert 0 <= top and top + h <= 300 and 0 <= left and left + w <= 400
        assert h * w >= 0.1 * 300 * 400 - 1
        assert 0.7 < w / h < 1.4 or (h, w) == (300, 400)


def test_saturation_without_the_hsv_round_trip_matches_it():
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    rng = np.random.default_rng(0)
    image = rng.random((48, 40, 3)).astype(np.float32)
    image[:8] = image[:8, :, :1]  # grey
    image[8:16] = np.round(image[8:16])  # primaries, black and white
    image[16:20] = 0.0
    for factor in (0.0, 0.5, 1.0, 1.37, 1.5, 4.0):
        hsv = rgb_to_hsv(image)
        hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0.0, 1.0)
        expected = np.clip(hsv_to_rgb(hsv), 0.0, 1.0)
        out = imagenet.adjust_saturation(image, factor)
        assert out.dtype == np.float32 and out.shape == image.shape
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(imagenet.adjust_saturation(image, 1.0)[:8], image[:8])


def test_folder_batches_are_seeded_and_resumable(tmp_path):
    truth = write_tree(tmp_path)
    paths, labels = imagenet.list_image_folder(tmp_path)
    batches = imagenet.ImageFolderBatches(paths, labels, batch_size=3, image_size=16, seed=4)
    x, y = batches[0]
    assert x.shape == (3, 16, 16, 3) and sorted(y.tolist()) == sorted(i + 1 for i in truth.values())
    again = imagenet.ImageFolderBatches(paths, labels, batch_size=3, image_size=16, seed=4)
    np.testing.assert_array_equal(again[0][0], x)
    batches.on_epoch_end()
    again.set_epoch(1)
    np.testing.assert_array_equal(batches[0][0], again[0][0])
    eval_x, eval_y = imagenet.ImageFolderEvalBatches(paths, labels, batch_size=2, image_size=16)[1]
    assert eval_x.shape == (1, 16, 16, 3) and eval_y.tolist() == [1000]


def test_synthetic_set_is_seeded():
    protos = imagenet.synthetic_prototypes(5, seed=0)
    a = imagenet.synthetic_classification(4, 20, 5, np.random.default_rng(3), protos)
    b = imagenet.synthetic_classification(4, 20, 5, np.random.default_rng(3), protos)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (4, 20, 20, 3) and a[0].min() >= -1 and a[0].max() <= 1
    assert set(a[1].tolist()) <= set(range(5))


def test_real_samples_true_labels(shared_data):
    root = shared_data / "imagenet_samples"
    rows = list(csv.DictReader(open(root / "labels.csv")))
    paths, labels = imagenet.list_image_folder(root / "images", classes=1001)
    by_path = {os.path.relpath(p, root): int(label) for p, label in zip(paths, labels)}
    assert len(by_path) == len(rows) == 50
    for row in rows:
        assert by_path[row["path"]] == int(row["label_index"]) + 1
        assert imagenet.class_name(int(row["label_index"]) + 1) == row["name"]
    image = imagenet.open_rgb_image(root / rows[0]["path"])
    assert (image.width, image.height) == (int(rows[0]["width"]), int(rows[0]["height"]))
    x = imagenet.preprocess_eval(image, 64)
    assert x.shape == (64, 64, 3) and -1 <= x.min() < x.max() <= 1


def test_folder_splits(tmp_path):
    (tmp_path / "single" / WNIDS[0]).mkdir(parents=True)
    assert imagenet.folder_splits(tmp_path / "single") == (str(tmp_path / "single"),) * 2
    for name in ("train", "validation"):
        (tmp_path / "tree" / name).mkdir(parents=True)
    root = tmp_path / "tree"
    assert imagenet.folder_splits(root) == (str(root / "train"), str(root / "validation"))
    (tmp_path / "val_only" / "val").mkdir(parents=True)
    with pytest.raises(DataError, match="no train/ folder"):
        imagenet.folder_splits(tmp_path / "val_only")


def test_synthetic_batches_are_seeded():
    train, val = imagenet.synthetic_batches(5, 16, batch_size=4, steps=3, seed=2, workers=0)
    x, y = train[0]
    assert x.shape == (4, 16, 16, 3) and y.shape == (4,) and len(train) == 3
    assert len(val.x) == 64
    np.testing.assert_array_equal(imagenet.synthetic_batches(5, 16, 4, 3, seed=2, workers=0)[0][0][0], x)

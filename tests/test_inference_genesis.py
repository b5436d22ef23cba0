"""Models Genesis inference: one window is one model call, windows tile and blend, labels and per-volume
probabilities, and NIfTI written on the input's axes with its affine."""

import numpy as np
import pytest

from keras_zoo.inference import genesis as gi
from keras_zoo.models.genesis import genesis, genesis_classifier, genesis_segmenter


@pytest.fixture(scope="module")
def tiny():
    return genesis((16, 16, 8, 1), filters=2, depth=3)


def test_one_window_equals_the_whole_volume_call(tiny):
    volume = np.random.default_rng(0).random((16, 16, 8)).astype(np.float32)
    expected = tiny.predict(volume[None, ..., None], verbose=0)[0]
    np.testing.assert_allclose(gi.predict_volume(tiny, volume, overlap=0.5), expected, atol=1e-6)


def test_windows_without_overlap_are_independent_model_calls(tiny):
    volume = np.random.default_rng(1).random((32, 16, 16)).astype(np.float32)
    result = gi.predict_volume(tiny, volume, overlap=0.0, batch_size=3)
    for a in (0, 16):
        for c in (0, 8):
            patch = volume[a : a + 16, :, c : c + 8][None, ..., None]
            np.testing.assert_allclose(
                result[a : a + 16, :, c : c + 8], tiny.predict(patch, verbose=0)[0], atol=1e-6
            )


def test_overlapping_windows_blend_a_constant_prediction_to_itself():
    """Blending is a weighted mean: where every window predicts the same value, so does the blend."""
    model = genesis((16, 16, 8, 1), filters=2, depth=3)
    head = model.get_layer("head_conv")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, 0.7)])
    volume = np.random.default_rng(2).random((40, 24, 12)).astype(np.float32)
    result = gi.predict_volume(model, volume, overlap=0.5)
    assert result.shape == (40, 24, 12, 1)
    np.testing.assert_allclose(result, 1 / (1 + np.exp(-0.7)), atol=1e-6)


def test_model_of_any_size_takes_the_volume_in_one_window():
    model = genesis((None, None, None, 1), filters=2, depth=3)
    assert gi.window_of(model, (20, 17, 9)) == (32, 32, 16)
    volume = np.random.default_rng(3).random((20, 17, 9)).astype(np.float32)
    padded = np.zeros((32, 32, 16), np.float32)
    padded[:20, :17, :9] = volume
    expected = model.predict(padded[None, ..., None], verbose=0)[0, :20, :17, :9]
    np.testing.assert_allclose(gi.predict_volume(model, volume), expected, atol=1e-6)


def test_kinds_labels_and_classifier_mean():
    segmenter = genesis_segmenter((16, 16, 8, 1), 3, filters=2, depth=3)
    classifier = genesis_classifier((16, 16, 8, 1), 2, filters=2, depth=3, dense_units=4)
    assert [
        gi.genesis_kind(m) for m in (genesis((16, 16, 8, 1), filters=2, depth=3), segmenter, classifier)
    ] == [
        "restore",
        "segment",
        "classify",
    ]
    probs = np.zeros((2, 2, 1, 3), np.float32)
    probs[0, 0, 0, 2] = probs[1, 1, 0, 1] = 1
    np.testing.assert_array_equal(gi.to_labels(probs)[..., 0], [[2, 0], [0, 1]])
    np.testing.assert_array_equal(gi.to_labels(np.array([[[[0.2], [0.8]]]])), [[[0, 1]]])
    volume = np.random.default_rng(4).random((32, 16, 8)).astype(np.float32)
    halves = np.stack([volume[:16], volume[16:]])[..., None]
    expected = classifier.predict(halves, verbose=0).mean(0)
    np.testing.assert_allclose(gi.classify_volume(classifier, volume, overlap=0.0), expected, atol=1e-6)


def test_nifti_round_trip_on_a_flipped_grid(tmp_path):
    import nibabel

    data = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    affine = np.diag([-2.0, 1.0, -3.0, 1.0])
    nibabel.Nifti1Image(data, affine).to_filename(str(tmp_path / "in.nii.gz"))
    volume, read_affine, back = gi.read_volume_with_affine(tmp_path / "in.nii.gz")
    np.testing.assert_array_equal(volume, data[::-1, :, ::-1])  # RAS
    np.testing.assert_array_equal(read_affine, affine)
    gi.write_nifti(gi.to_file_axes(volume, back), read_affine, str(tmp_path / "out.nii.gz"))
    written = nibabel.load(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(written.get_fdata(), data)
    np.testing.assert_array_equal(written.affine, affine)


def test_real_ct_volume_windowed_like_the_reference(shared_data):
    import nibabel

    path = shared_data / "totalsegmentator_examples" / "example_ct.nii.gz"
    volume, affine, _ = gi.window_volume(str(path))
    np.testing.assert_array_equal(affine, nibabel.load(path).affine)
    raw = nibabel.as_closest_canonical(nibabel.load(path)).get_fdata()
    np.testing.assert_allclose(volume, (np.clip(raw, -1000, 1000) + 1000) / 2000, atol=1e-6)

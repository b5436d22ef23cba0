"""CascadeNet inference readers and inputs: k-space files, masks, BART's centred convention, scaling,
simulated undersampling, metrics, and one-line errors."""

import numpy as np
import pytest

from keras_zoo.datasets.mri import channels_to_complex, fft2, ifft2
from keras_zoo.datasets.mri_readers import write_cfl
from keras_zoo.errors import DataError
from keras_zoo.inference import cascadenet as ci
from keras_zoo.metrics.reconstruction import complex_psnr


def _image(shape=(16, 20), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) + 1j * rng.random(shape)).astype(np.complex64)


def test_npy_kspace_mask_defaults_to_the_sampled_points(tmp_path):
    mask = np.zeros((16, 20), np.float32)
    mask[::3] = 1
    np.save(tmp_path / "k.npy", fft2(_image()) * mask)
    kspace, read_mask = ci.read_kspace(tmp_path / "k.npy")
    assert kspace.shape == read_mask.shape == (1, 16, 20)
    np.testing.assert_array_equal(read_mask[0], mask)


def test_centred_cfl_kspace_becomes_the_same_images_uncentred_kspace(tmp_path):
    image = _image((16, 21))  # an odd side: a phase ramp, not a sign flip
    mask = np.zeros((16, 21), np.float32)
    mask[4:12] = 1
    write_cfl(tmp_path / "k", fft2(image, centred=True) * mask)
    np.save(tmp_path / "mask.npy", mask)
    kspace, read_mask = ci.read_kspace(tmp_path / "k.cfl", tmp_path / "mask.npy", centred=True)
    np.testing.assert_array_equal(read_mask[0], np.fft.ifftshift(mask))
    np.testing.assert_allclose(kspace[0], fft2(image) * read_mask[0], atol=1e-5)


def test_inputs_are_scaled_to_unit_zero_filled_maximum():
    kspace = np.stack([fft2(_image(seed=1)) * 3, fft2(_image(seed=2)) * 0.5])
    mask = np.ones_like(kspace.real)
    (image, kspace2, mask2), scale = ci.kspace_inputs(kspace, mask)
    np.testing.assert_allclose(np.abs(channels_to_complex(image)).max(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(channels_to_complex(image) * scale[:, None, None], ifft2(kspace), atol=1e-5)
    assert mask2.shape == (2, 16, 20, 2)


def test_given_mask_undersamples_images_and_metrics_rank_the_truth_first():
    images = _image((2, 16, 20))
    images /= np.abs(images).max(axis=(1, 2), keepdims=True)
    mask = np.zeros((16, 20), np.float32)
    mask[::2] = 1
    (image, kspace, mask2), scale = ci.image_inputs(images, mask)
    np.testing.assert_array_equal(scale, 1.0)  # the paper's scale: the images as given
    np.testing.assert_allclose(channels_to_complex(kspace), fft2(images) * mask, atol=1e-5)
    zero_filled = channels_to_complex(image)
    np.testing.assert_allclose(zero_filled, ifft2(fft2(images) * mask), atol=1e-5)
    rows = ci.slice_metrics(images, images + 0.01, zero_filled)
    assert rows[0]["psnr"] == pytest.approx(complex_psnr(images[0], images[0] + 0.01))
    assert all(r["psnr"] > r["psnr_zero_filled"] and r["ssim"] > r["ssim_zero_filled"] for r in rows)


def test_images_of_a_zero_filled_run_are_scaled_as_k_space_input():
    images = _image((2, 16, 20))
    mask = np.zeros((16, 20), np.float32)
    mask[::2] = 1
    (image, kspace, _), scale = ci.image_inputs(images, mask, normalise="zero_filled")
    (expected, expected_kspace, _), expected_scale = ci.kspace_inputs(
        fft2(images) * mask, np.broadcast_to(mask, images.shape)
    )
    np.testing.assert_allclose(image, expected, atol=1e-6)
    np.testing.assert_allclose(kspace, expected_kspace, atol=1e-5)
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-6)
    np.testing.assert_allclose(np.abs(channels_to_complex(image)).max(axis=(1, 2)), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="normalise"):
        ci.image_inputs(images, mask, normalise="max")


def test_simulated_masks_follow_the_runs_line_density():
    from keras_zoo.datasets.mri import MASKS

    images = _image((2, 32, 20))
    for kind in ("cartesian", "uniform"):
        (_, _, mask2), _ = ci.image_inputs(images, None, 4.0, 4, seed=3, mask_kind=kind)
        expected = MASKS[kind](images.shape, 4.0, 4, centred=False, rng=np.random.default_rng(3))
        np.testing.assert_array_equal(mask2[..., 0], expected)
    with pytest.raises(ValueError, match="mask_kind"):
        ci.image_inputs(images, None, mask_kind="radial")


@pytest.mark.parametrize(
    "array, needle",
    [(np.zeros((2, 2, 4, 4), np.complex64), "single-coil"), (np.array(["a", "b"]), "holds <U1 data")],
)
def test_unfit_arrays_raise_one_line(tmp_path, array, needle):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=needle) as info:
        ci.read_kspace(tmp_path / "bad.npy")
    assert "\n" not in str(info.value)


def test_mask_that_does_not_fit_names_the_mask(tmp_path):
    np.save(tmp_path / "k.npy", fft2(_image()))
    np.save(tmp_path / "m.npy", np.ones((8, 8), np.float32))
    with pytest.raises(DataError, match="m.npy: mask \\(1, 8, 8\\) does not fit the k-space"):
        ci.read_kspace(tmp_path / "k.npy", tmp_path / "m.npy")


def test_written_reconstruction_reads_back(tmp_path):
    from PIL import Image

    from keras_zoo.datasets.mri_readers import read_cfl

    recon = _image((2, 16, 20))
    paths = ci.write_reconstruction(recon, str(tmp_path / "r"), cfl=True)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["r.npy", "r.cfl", "r.hdr", "r_0.png", "r_1.png"]
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), recon)
    np.testing.assert_array_equal(read_cfl(tmp_path / "r"), np.moveaxis(recon, 0, -1))
    png = np.asarray(Image.open(tmp_path / "r_1.png"))
    np.testing.assert_array_equal(
        png, np.round(np.abs(recon[1]) / np.abs(recon[1]).max() * 255).astype(np.uint8)
    )

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


def test_bool_mask_reads_as_the_same_0_1_mask(tmp_path):
    image = _image((16, 21))
    mask = np.zeros((16, 21), bool)
    mask[::3] = True
    mask[6:10] = True
    write_cfl(tmp_path / "k", fft2(image, centred=True) * mask)
    np.save(tmp_path / "bool.npy", mask)
    np.save(tmp_path / "float.npy", mask.astype(np.float32))
    kspace, read_mask = ci.read_kspace(tmp_path / "k.cfl", tmp_path / "bool.npy", centred=True)
    expected_kspace, expected_mask = ci.read_kspace(tmp_path / "k.cfl", tmp_path / "float.npy", centred=True)
    assert read_mask.dtype == np.float32
    np.testing.assert_array_equal(read_mask, expected_mask)
    np.testing.assert_array_equal(kspace, expected_kspace)
    np.testing.assert_array_equal(read_mask[0], np.fft.ifftshift(mask))
    np.save(tmp_path / "text.npy", np.where(mask, "y", "n"))
    with pytest.raises(DataError, match=r"text\.npy: holds <U1 data, not a mask file$") as info:
        ci.read_kspace(tmp_path / "k.cfl", tmp_path / "text.npy")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"k\.npy: holds bool data, not a k-space file"):
        np.save(tmp_path / "k.npy", mask)
        ci.read_kspace(tmp_path / "k.npy")


def test_multi_coil_bart_kspace_is_refused_naming_the_file(tmp_path):
    coils = np.stack([fft2(_image(seed=s), centred=True) for s in range(3)], axis=-1)[None]  # (1, x, y, 3)
    write_cfl(tmp_path / "ksp", coils)
    with pytest.raises(
        DataError, match=r"ksp\.cfl: BART dims \[1, 16, 20, 3\] hold 3 coils .*multi-coil k-space or coil images are not "
        r"supported.*single-coil.*bart rss 8.*bart cc -p 1"
    ) as info:  # fmt: skip
        ci.read_kspace(tmp_path / "ksp.cfl", centred=True)
    assert "\n" not in str(info.value)
    write_cfl(tmp_path / "maps", np.stack([_image(), _image(seed=1)], axis=-1)[None, :, :, None])
    with pytest.raises(DataError, match=r"maps\.hdr: BART dims \[1, 16, 20, 1, 2\] hold 2 ESPIRiT maps"):
        ci.read_complex_stack(tmp_path / "maps.hdr", "reference")
    # BART's slice dimension (z) stays a stack of single-coil slices, as written for .cfl output.
    write_cfl(tmp_path / "slices", np.moveaxis(np.stack([fft2(_image(seed=s)) for s in range(2)]), 0, -1))
    assert ci.read_kspace(tmp_path / "slices.cfl")[0].shape == (2, 16, 20)


def test_real_bart_brain_multi_coil_kspace_is_refused_and_its_bool_mask_works(tmp_path, shared_data):
    bart = shared_data / "mr_kspace_bart_brain"
    with pytest.raises(DataError, match=r"ksp\.cfl: BART dims \[1, 180, 230, 8\] hold 8 coils"):
        ci.read_kspace(bart / "ksp.cfl", bart / "sampling_mask.npy", centred=True)
    mask = np.load(bart / "sampling_mask.npy")
    assert mask.dtype == bool
    write_cfl(tmp_path / "ksp", fft2(np.load(bart / "reference_image.npy"), centred=True)[None] * mask)
    kspace, read_mask = ci.read_kspace(tmp_path / "ksp.cfl", bart / "sampling_mask.npy", centred=True)
    assert kspace.shape == read_mask.shape == (1, 180, 230)
    np.testing.assert_array_equal(read_mask[0], np.fft.ifftshift(mask).astype(np.float32))
    assert read_mask.mean() == pytest.approx(0.1266, abs=1e-4)


def test_mismatched_reference_is_refused_before_anything_is_written(tmp_path, capsys):
    from keras_zoo.cli import predict

    mask = np.zeros((16, 20), np.float32)
    mask[::2] = 1
    np.save(tmp_path / "k.npy", fft2(_image()) * mask)
    np.save(tmp_path / "ref.npy", _image((2, 16, 20)))
    with pytest.raises(DataError, match=r"ref\.npy: reference \(2, 16, 20\) does not match the k-space's"):
        ci.read_reference(tmp_path / "ref.npy", (1, 16, 20))
    argv = ["--model", "cascadenet", "--preset", "tiny", "--input", str(tmp_path / "k.npy"), "--reference",
            str(tmp_path / "ref.npy"), "--output", str(tmp_path / "out")]  # fmt: skip
    assert predict.main(argv) == 2
    assert not (tmp_path / "out").exists()  # nothing written, and the folder made for it removed
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {tmp_path / 'ref.npy'}: reference (2, 16, 20) does not match"), err
    np.save(tmp_path / "ref.npy", _image())  # the same command with a fitting reference then succeeds
    assert predict.main(argv) == 0
    assert (tmp_path / "out" / "metrics.csv").exists()

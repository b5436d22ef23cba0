"""k-space tooling (masks, undersampling, conversions), MR readers and phantoms."""

import h5py
import nibabel
import numpy as np
import pytest
import scipy.io

from keras_zoo.datasets.mri import (
    cartesian_mask,
    cascadenet_example,
    channels_to_complex,
    complex_to_channels,
    scale_to_unit_max,
    undersample,
    undersampled_examples,
    uniform_mask,
)
from keras_zoo.datasets.mri_readers import load_mr_images, read_cfl, read_mat, read_port_h5, write_cfl
from keras_zoo.datasets.phantoms import phantom_images
from keras_zoo.errors import DataError


@pytest.mark.parametrize("make_mask", [cartesian_mask, uniform_mask])
@pytest.mark.parametrize("nx, acceleration", [(64, 4), (256, 3), (50, 4.5)])
def test_masks_sample_whole_lines_at_the_exact_rate_with_centre_lines(make_mask, nx, acceleration):
    mask = make_mask((3, nx, 20), acceleration, centre_lines=8, rng=0)
    lines = int(nx / acceleration)
    assert mask.shape == (3, nx, 20) and set(np.unique(mask)) == {0.0, 1.0}
    assert np.all(mask.min(axis=-1) == mask.max(axis=-1))  # every readout point of a chosen line
    np.testing.assert_array_equal(mask[..., 0].sum(axis=1), [lines] * 3)
    assert mask.mean() == pytest.approx(lines / nx)
    centred = np.fft.fftshift(mask, axes=(-2, -1))  # default masks are uncentred (ifftshift-ed)
    assert np.all(centred[:, nx // 2 - 4 : nx // 2 + 4] == 1)
    assert np.all(
        make_mask((2, nx, 4), acceleration, 8, centred=True, rng=0)[:, nx // 2 - 4 : nx // 2 + 4] == 1
    )


def test_masks_are_independent_per_slice_seeded_and_variable_density():
    mask = cartesian_mask((400, 64, 1), 4, 8, centred=True, rng=1)
    assert len({m.tobytes() for m in mask}) > 300
    np.testing.assert_array_equal(cartesian_mask((2, 64, 1), rng=5), cartesian_mask((2, 64, 1), rng=5))
    frequency = mask[..., 0].mean(axis=0)
    near_centre = np.r_[frequency[20:28], frequency[36:44]].mean()
    edges = np.r_[frequency[:8], frequency[-8:]].mean()
    assert near_centre > 2 * edges
    uniform = uniform_mask((400, 64, 1), 4, 8, centred=True, rng=1)[..., 0].mean(axis=0)
    assert abs(np.r_[uniform[20:28], uniform[36:44]].mean() - np.r_[uniform[:8], uniform[-8:]].mean()) < 0.05


def test_mask_arguments_are_checked():
    with pytest.raises(ValueError, match="acceleration"):
        cartesian_mask((8, 8), acceleration=0.5)
    with pytest.raises(ValueError, match="centre_lines"):
        cartesian_mask((16, 8), acceleration=4, centre_lines=8)


@pytest.mark.parametrize("make_mask", [cartesian_mask, uniform_mask])
@pytest.mark.parametrize("acceleration", [0, 0.0, -2, float("nan")])
def test_acceleration_below_1_is_refused_before_the_density_divides_by_it(make_mask, acceleration):
    with pytest.raises(ValueError, match="acceleration must be >= 1"):  # 0 was a ZeroDivisionError
        make_mask((16, 8), acceleration=acceleration, centre_lines=2)


def test_undersample_matches_numpy_and_centred_masks_agree():
    rng = np.random.default_rng(2)
    image = rng.normal(size=(2, 16, 12)) + 1j * rng.normal(size=(2, 16, 12))
    mask = cartesian_mask(image.shape, 4, 4, rng=3)
    zero_filled, kspace = undersample(image, mask)
    np.testing.assert_allclose(kspace, mask * np.fft.fft2(image, norm="ortho"), atol=1e-5)
    np.testing.assert_allclose(zero_filled, np.fft.ifft2(kspace, norm="ortho"), atol=1e-5)
    centred_zf, _ = undersample(image, np.fft.fftshift(mask, axes=(-2, -1)), centred=True)
    np.testing.assert_allclose(centred_zf, zero_filled, atol=1e-5)
    magnitude_zf, _ = undersample(np.abs(image), mask)  # magnitude images are accepted
    assert magnitude_zf.dtype == np.complex64


def test_conversions_and_scaling():
    z = np.array([[1 + 2j, -3j], [0.5, 4]], dtype=np.complex64)
    channels = complex_to_channels(z)
    assert channels.shape == (2, 2, 2) and channels.dtype == np.float32
    np.testing.assert_array_equal(channels_to_complex(channels), z)
    with pytest.raises(ValueError, match="2 channels"):
        channels_to_complex(np.zeros((2, 3)))
    scaled = scale_to_unit_max(np.stack([z, 2 * z, 0 * z]))
    np.testing.assert_allclose(np.abs(scaled).max(axis=(1, 2)), [1, 1, 0])


def test_examples_and_seeded_batches_draw_fresh_masks_every_epoch():
    images = phantom_images(4, 32, seed=0)
    (zero_filled, kspace, mask), target = cascadenet_example(images[:2], rng=0, centre_lines=4)
    assert all(a.shape == (2, 32, 32, 2) for a in (zero_filled, kspace, mask, target))
    np.testing.assert_array_equal(mask[..., 0], mask[..., 1])
    np.testing.assert_allclose(channels_to_complex(target), images[:2], atol=1e-6)
    batches = undersampled_examples(images, batch_size=3, steps=2, seed=7, centre_lines=4)
    first = batches[0]
    assert all(a.shape == (3, 32, 32, 2) for a in (*first[0], first[1]))
    np.testing.assert_array_equal(first[0][2], batches[0][0][2])  # same (seed, epoch, index)
    batches.on_epoch_end()
    assert not np.array_equal(first[0][2], batches[0][0][2])
    with pytest.raises(ValueError, match="centre_lines"):
        undersampled_examples(images, batch_size=3, steps=2, centre_lines=40)
    (sequence_inputs, sequence_target) = cascadenet_example(
        phantom_images(1, 32, dynamic=True, frames=4), rng=0, centre_lines=4
    )
    assert sequence_target.shape == (1, 4, 32, 32, 2)
    masks = sequence_inputs[2][0, :, :, 0, 0]
    assert len({m.tobytes() for m in masks}) > 1  # independent masks per frame


def test_phantoms_are_seeded_and_scaled():
    a, b = phantom_images(2, 24, seed=3), phantom_images(2, 24, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.complex64 and np.allclose(np.abs(a).max(axis=(1, 2)), 1)
    assert not np.array_equal(a[0], a[1])
    sequence = phantom_images(1, 24, dynamic=True, frames=6)
    assert sequence.shape == (1, 6, 24, 24) and not np.array_equal(sequence[0, 0], sequence[0, 3])


def test_cfl_round_trip_and_errors(tmp_path):
    data = (np.arange(24) + 1j * np.arange(24)[::-1]).reshape(2, 3, 4).astype(np.complex64)
    write_cfl(tmp_path / "x", data)
    np.testing.assert_array_equal(read_cfl(tmp_path / "x.cfl"), data)
    images = load_mr_images(tmp_path / "x.hdr")  # (2, 3, n=4) -> 4 slices of 2x3
    assert images.shape == (4, 2, 3)
    (tmp_path / "x.cfl").write_bytes(b"12345678")
    with pytest.raises(DataError, match="x.cfl"):
        read_cfl(tmp_path / "x")


def test_port_h5_mat_npy_nifti_readers(tmp_path):
    rng = np.random.default_rng(4)
    label = rng.integers(0, 256, (3, 8, 8)).astype(np.uint8)
    with h5py.File(tmp_path / "chest.hdf5", "w") as f:
        f["label"], f["mask"] = label, np.ones((3, 8, 8), np.uint8)
    images, mask = read_port_h5(tmp_path / "chest.hdf5")
    np.testing.assert_array_equal(images, label) and np.testing.assert_array_equal(mask, 1)
    np.testing.assert_allclose(
        np.abs(load_mr_images(tmp_path / "chest.hdf5")),
        label / label.max(axis=(1, 2), keepdims=True),
        atol=1e-6,
    )

    seq = rng.normal(size=(8, 6, 5)) + 1j * rng.normal(size=(8, 6, 5))  # (nx, ny, nt) as cardiac.mat
    scipy.io.savemat(tmp_path / "cine.mat", {"seq": seq, "other": 1.0})
    np.testing.assert_allclose(read_mat(tmp_path / "cine.mat", "seq"), seq)
    with pytest.raises(DataError, match="choose one"):
        read_mat(tmp_path / "cine.mat")
    assert load_mr_images(tmp_path / "cine.mat", key="seq").shape == (5, 8, 6)
    sequences = load_mr_images(tmp_path / "cine.mat", key="seq", dynamic=True)
    assert sequences.shape == (1, 5, 8, 6)
    np.testing.assert_allclose(sequences[0, 2], seq[:, :, 2] / np.abs(seq).max(), atol=1e-6)

    with h5py.File(
        tmp_path / "v73.mat", "w"
    ) as f:  # MATLAB v7.3 stores arrays transposed, complex as compound
        compound = np.empty(seq.T.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
        compound["real"], compound["imag"] = seq.T.real, seq.T.imag
        f["seq"] = compound
    np.testing.assert_allclose(read_mat(tmp_path / "v73.mat"), seq)

    np.save(tmp_path / "slices.npy", label.astype(np.float32))
    assert load_mr_images(tmp_path / "slices.npy").shape == (3, 8, 8)
    nibabel.save(
        nibabel.Nifti1Image(np.moveaxis(label, 0, -1).astype(np.int16), np.eye(4)), tmp_path / "v.nii.gz"
    )
    volume_slices = load_mr_images(tmp_path / "v.nii.gz")
    assert volume_slices.shape == (3, 8, 8)
    np.testing.assert_allclose(np.abs(volume_slices[1]), label[1] / label[1].max(), atol=1e-6)


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.npy"):
        load_mr_images(tmp_path / "missing.npy")
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(DataError, match="unknown MR image format"):
        load_mr_images(tmp_path / "a.xyz")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="bad.h5"):
        load_mr_images(tmp_path / "bad.h5")


def test_shared_bart_prostate_and_dicom(shared_data):
    bart = shared_data / "mr_kspace_bart_brain"
    if bart.is_dir():
        maps = read_cfl(bart / "img")
        assert maps.shape == (1, 180, 230, 1, 2)
        np.testing.assert_array_equal(maps[0, :, :, 0, 0], np.load(bart / "reference_image.npy"))
        assert read_cfl(bart / "ksp").shape == (1, 180, 230, 8)
    prostate = shared_data / "mr_prostatex" / "ProstateX-0000_t2_tse_tra_4.nii.gz"
    if prostate.exists():
        slices = load_mr_images(prostate)
        assert slices.shape == (19, 384, 384) and np.allclose(np.abs(slices).max(axis=(1, 2)), 1)
    dicom = shared_data / "packaged_extracts" / "pydicom" / "MR_small.dcm"
    if dicom.exists():
        assert load_mr_images(dicom).shape == (1, 64, 64)

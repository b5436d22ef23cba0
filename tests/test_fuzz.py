"""Fuzz and property tests (hypothesis): corrupted files for the readers, random configurations for the
k-space masks, the Models Genesis transforms and the paired augmentation.

Readers: small valid files written here are mutated by random byte edits (bit flips, overwrites, inserts,
deletions, truncation). The contract of every reader: it returns a valid result (shape, dtype, range) or
raises a ``KerasZooError`` subclass whose one-line message names the file. Any other exception is a bug.

Generators keep their documented invariants for random shapes, rates and seeds.

CI runs the derandomized "ci" profile (30 examples a test). A longer, randomized run:
``HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py`` (500 examples a test).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import pathlib
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_zoo.datasets import augment, genesis, imagenet, isbi, mri, mri_readers, voc, voc_tfrecord, volumes
from keras_zoo.errors import KerasZooError
from tests import sample_files as sf

_COMMON = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=30, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=500, derandomize=False, **_COMMON)
# Applied per test (not loaded globally) so that other test modules keep hypothesis' defaults.
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ------------------------------------------------------------------------------------------ byte mutations
# Byte patterns that commonly break parsers: extremes, float32 NaN / +inf, int32 extremes, sign bits.
SPECIAL_BYTES = [
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f",
    b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff",
]  # fmt: skip
OFFSETS = st.one_of(st.integers(0, 511), st.integers(0, 1 << 20))  # headers first, then anywhere
PAYLOADS = st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(SPECIAL_BYTES))
EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), OFFSETS, st.integers(0, 7)),
        st.tuples(st.just("overwrite"), OFFSETS, PAYLOADS),
        st.tuples(st.just("insert"), OFFSETS, PAYLOADS),
        st.tuples(st.just("delete"), OFFSETS, st.integers(1, 64)),
        st.tuples(st.just("truncate"), OFFSETS, st.just(None)),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, edits) -> bytes:
    """Applies ``edits`` (from :data:`EDITS`) in order; offsets wrap around the current length."""
    out = bytearray(data)
    for kind, offset, arg in edits:
        if not out:
            break
        offset %= len(out)
        if kind == "flip":
            out[offset] ^= 1 << arg
        elif kind == "overwrite":
            out[offset : offset + len(arg)] = arg
        elif kind == "insert":
            out[offset:offset] = arg
        elif kind == "delete":
            del out[offset : offset + arg]
        else:
            del out[offset:]
    return bytes(out)


def test_mutate_applies_each_kind_of_edit():
    data = bytes(range(10))
    assert mutate(data, [("flip", 12, 0)]) == bytes([0, 1, 3, *range(3, 10)])  # offset 12 wraps to 2
    assert mutate(data, [("overwrite", 8, b"ab")]) == bytes(range(8)) + b"ab"
    assert mutate(data, [("insert", 1, b"x")]) == b"\x00x" + bytes(range(1, 10))
    assert mutate(data, [("delete", 2, 3)]) == bytes([0, 1, *range(5, 10)])
    assert mutate(data, [("truncate", 4, None), ("flip", 0, 7)]) == bytes([128, 1, 2, 3])


# ----------------------------------------------------------------------------------- reader fuzz cases
@dataclasses.dataclass(frozen=True)
class Case:
    """A reader under fuzzing.

    Attributes:
        write: writes valid input into a folder; returns (path given to the reader, file to mutate).
        read: the reader, called with the path.
        check: asserts that a returned result is valid.
    """

    write: Callable[[pathlib.Path], tuple[pathlib.Path, pathlib.Path]]
    read: Callable[[pathlib.Path], object]
    check: Callable[[object], None]


def _one(name: str, writer: Callable[[pathlib.Path], object]):
    def write(folder: pathlib.Path):
        writer(folder / name)
        return folder / name, folder / name

    return write


def _unit_float(ndim: int):
    def check(array):
        assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.ndim == ndim, array
        assert array.size and np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1

    return check


def _float32(ndim: int):
    def check(array):
        assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.ndim == ndim, array

    return check


def _check_port_h5(result):
    images, mask = result
    _float32(3)(images)
    assert mask is None or (isinstance(mask, np.ndarray) and mask.dtype == np.float32)


def _check_mr_images(array):
    assert isinstance(array, np.ndarray) and array.dtype == np.complex64 and array.ndim == 3, array
    assert array.size and np.isfinite(array).all() and np.abs(array).max() <= 1 + 1e-5


def _check_cubes(cubes):
    assert isinstance(cubes, np.ndarray) and cubes.dtype == np.float32 and cubes.ndim == 4, cubes
    assert 0 not in cubes.shape[1:] and np.isfinite(cubes).all()
    assert cubes.size == 0 or (cubes.min() >= -1e-6 and cubes.max() <= 1 + 1e-6)


def _check_cfl(array):
    assert isinstance(array, np.ndarray) and array.dtype == np.complex64 and array.size == 128, array


def _check_rgb(image):
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8, image
    assert image.ndim == 3 and image.shape[2] == 3 and image.size


def _check_voc_label(labels):
    assert isinstance(labels, np.ndarray) and labels.dtype == np.uint8 and labels.ndim == 2, labels
    assert set(np.unique(labels).tolist()) <= {*range(voc.NUM_CLASSES), voc.VOID_LABEL}


def _check_pil_rgb(image):
    assert image.mode == "RGB" and image.size[0] > 0 and image.size[1] > 0


def _check_tfrecords(result):
    names, images, labels = result
    assert len(names) == len(images) == len(labels)
    for image, label in zip(images, labels):
        _check_rgb(image)
        _check_voc_label(label)


def _write_dicom_series(folder: pathlib.Path):
    series = folder / "series"
    series.mkdir()
    sf.write_dicom(series / "slice1.dcm")
    sf.write_dicom(series / "slice2.dcm")
    return series, series / "slice2.dcm"


def _write_cfl(which: str):
    def write(folder: pathlib.Path):
        array = np.random.default_rng(5).normal(size=(8, 8, 2)) + 1j
        mri_readers.write_cfl(folder / "kspace", array)
        return folder / "kspace.cfl", folder / f"kspace.{which}"

    return write


def _write_mat_v5(path: pathlib.Path):
    import scipy.io

    scipy.io.savemat(path, {"seq": np.random.default_rng(6).random((8, 8, 2))}, do_compression=True)


def _write_mat_v73(path: pathlib.Path):
    with h5py.File(path, "w") as f:  # MATLAB v7.3 is HDF5; the reader tells them apart by the signature
        f["seq"] = np.random.default_rng(7).random((2, 8, 8))


def _write_voc_label(path: pathlib.Path):
    labels = np.random.default_rng(8).integers(0, voc.NUM_CLASSES, (12, 12)).astype(np.uint8)
    labels[0, :4] = voc.VOID_LABEL
    voc.save_label_png(labels, path)


def _write_cube_file(path: pathlib.Path):
    np.save(path, np.random.default_rng(9).random((2, 8, 8, 4)).astype(np.float32))


def _write_voc_tfrecord(folder: pathlib.Path):
    import tensorflow as tf

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    jpeg = sf.write_jpeg(folder / "image.jpg", size=8).read_bytes()
    label = voc_tfrecord._png_bytes(np.ones((8, 8), np.uint8))
    features = {
        "image/encoded": jpeg, "image/filename": b"2007_000032", "image/height": 8, "image/width": 8,
        "image/segmentation/class/encoded": label,
    }  # fmt: skip
    example = tf.train.Example(
        features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    )
    path = folder / "train-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example.SerializeToString())
    return folder, path


@functools.cache
def _dense_model():
    import keras

    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(4, name="dense")(inputs))


@functools.cache
def _cascadenet_model():
    from keras_zoo.models.cascadenet import cascadenet

    return cascadenet(input_shape=(8, 8, 2), n_cascades=1, n_convs=2, filters=2)


def _write_h5_weights(path: pathlib.Path):
    from keras_zoo.weights import save_h5_weights

    save_h5_weights(_dense_model(), path)


def _write_lasagne_npz(path: pathlib.Path):
    rng = np.random.default_rng(10)
    channels = [2, 2, 2]
    arrays = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        arrays += [rng.normal(size=(cout, cin, 3, 3)).astype("float32"), np.zeros(cout, "float32")]
    np.savez(path, *arrays)


def _load_h5_weights(path):
    from keras_zoo.weights import load_weights

    report = load_weights(_dense_model(), path)
    assert report.matched == ["dense"] and not report.mismatched
    return report


def _load_keras3_weights(path):
    from keras_zoo.weights import load_weights

    return load_weights(_dense_model(), path)


def _load_lasagne_npz(path):
    from keras_zoo.models.cascadenet_weights import load_lasagne_npz

    return load_lasagne_npz(_cascadenet_model(), path)


def _check_load_report(report):
    from keras_zoo.weights import LoadReport

    assert isinstance(report, LoadReport)  # matched or not, the user gets the account of what loaded


def _no_check(result):
    assert result is None  # loaders that fill a model in place return nothing


CASES = {
    "isbi_png": Case(_one("slice.png", sf.write_png), isbi.read_gray_slice, _unit_float(2)),
    "isbi_tif_image": Case(_one("slice.tif", sf.write_tiff), isbi.read_pages, _unit_float(3)),
    "isbi_tiff_stack": Case(_one("volume.tif", sf.write_tiff), isbi.read_tiff_stack, _unit_float(3)),
    "nifti": Case(_one("ct.nii", sf.write_nifti), volumes.read_volume, _float32(3)),
    "nifti_gz": Case(_one("ct.nii.gz", sf.write_nifti), volumes.read_volume, _float32(3)),
    "dicom_series": Case(_write_dicom_series, volumes.read_dicom_series, _float32(3)),
    "dicom_image": Case(_one("slice.dcm", sf.write_dicom), mri_readers.read_dicom_image, _float32(2)),
    "cube_file": Case(_one("bat_2_8x8x4_0.npy", _write_cube_file), volumes.read_cube_file, _check_cubes),
    "port_h5": Case(_one("knee.h5", sf.write_port_h5), mri_readers.read_port_h5, _check_port_h5),
    "mr_h5": Case(_one("knee.h5", sf.write_port_h5), mri_readers.load_mr_images, _check_mr_images),
    "mr_npy": Case(_one("slices.npy", sf.write_npy), mri_readers.load_mr_images, _check_mr_images),
    "mr_mat_v5": Case(_one("seq.mat", _write_mat_v5), mri_readers.load_mr_images, _check_mr_images),
    "mr_mat_v73": Case(_one("seq.mat", _write_mat_v73), mri_readers.load_mr_images, _check_mr_images),
    "cfl_header": Case(_write_cfl("hdr"), mri_readers.read_cfl, _check_cfl),
    "mr_cfl_header": Case(_write_cfl("hdr"), mri_readers.load_mr_images, _check_mr_images),
    "mr_cfl_data": Case(_write_cfl("cfl"), mri_readers.load_mr_images, _check_mr_images),
    "voc_jpeg": Case(_one("2007_000032.jpg", sf.write_jpeg), voc.read_rgb, _check_rgb),
    "voc_label": Case(_one("2007_000032.png", _write_voc_label), voc.read_label, _check_voc_label),
    "voc_tfrecord": Case(
        _write_voc_tfrecord,
        lambda folder: voc_tfrecord.load_tfrecord_split(folder, "train"),
        _check_tfrecords,
    ),
    "imagenet_jpeg": Case(_one("n01440764_1.JPEG", sf.write_jpeg), imagenet.open_rgb_image, _check_pil_rgb),
    "weights_h5": Case(_one("dense.h5", _write_h5_weights), _load_h5_weights, lambda report: None),
    "weights_keras3": Case(
        _one("dense.weights.h5", lambda p: _dense_model().save_weights(p)),
        _load_keras3_weights,
        _check_load_report,
    ),
    "weights_lasagne_npz": Case(_one("d1_c1.npz", _write_lasagne_npz), _load_lasagne_npz, _no_check),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Valid input of every case, written once: name -> (folder, path to read, file to mutate)."""
    written = {}

    def get(name: str):
        if name not in written:
            folder = tmp_path_factory.mktemp(name)
            written[name] = (folder, *CASES[name].write(folder))
        return written[name]

    return get


def read_corrupted(case: Case, folder: pathlib.Path, read_path: pathlib.Path, target: pathlib.Path, edits):
    """Copies the valid input, corrupts ``target`` and checks the reader's contract on the copy.

    Args:
        edits: a list for :func:`mutate`, or a function of the file's bytes.

    Returns:
        The error message, or None when the reader returned a valid result.
    """
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        copy = pathlib.Path(scratch) / "input"
        shutil.copytree(folder, copy)
        target = copy / target.relative_to(folder)
        data = target.read_bytes()
        target.write_bytes(edits(data) if callable(edits) else mutate(data, edits))
        path = copy / read_path.relative_to(folder)
        try:
            result = case.read(path)
        except KerasZooError as error:
            message = str(error)
            assert "\n" not in message, message
            assert str(copy) in message, f"the message does not name the file: {message}"
            return message
        case.check(result)
        return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_files_read_cleanly(name, pristine):
    """The fuzz inputs start valid, so every mutation test starts from a file the reader accepts."""
    case = CASES[name]
    _, read_path, _ = pristine(name)
    case.check(case.read(read_path))


@pytest.mark.parametrize("name", sorted(CASES))
@FUZZ
@given(edits=EDITS)
def test_corrupted_files_give_a_result_or_a_keras_zoo_error(name, pristine, edits):
    read_corrupted(CASES[name], *pristine(name), edits)


# ------------------------------------------------------------------- regressions found by fuzzing
def _huge_png(data: bytes) -> bytes:
    """IHDR claims 65535 x 65535 pixels (CRC fixed): Pillow refuses it as a decompression bomb."""
    ihdr = b"IHDR" + struct.pack(">II", 65535, 65535) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def _huge_jpeg(data: bytes) -> bytes:
    """The baseline frame header (SOF0) claims 65535 x 65535 pixels."""
    start = data.index(b"\xff\xc0") + 5
    return data[:start] + b"\xff\xff\xff\xff" + data[start + 4 :]


def _long_transfer_syntax(data: bytes) -> bytes:
    """The Transfer Syntax UID's length swallows the rest of the file (raw pixel bytes, newlines included)."""
    start = data.index(b"\x02\x00\x10\x00UI") + 6
    length = (len(data) - start - 4) // 2 * 2
    return data[:start] + struct.pack("<H", length) + data[start + 2 :]


def _npy_with(value: float, shape=(2, 8, 8), dtype=np.float32):
    """A valid .npy (replacing the file) holding ``value`` at one pixel of random data."""

    def corrupt(data: bytes) -> bytes:
        array = np.random.default_rng(0).random(shape).astype(dtype)
        array.flat[5] = value
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    return corrupt


def _cfl_header(dims: str):
    return lambda data: f"# Dimensions\n{dims}\n".encode()


# (case, corruption, words the error must hold). Each escaped as a raw exception before its reader was fixed.
REGRESSIONS = [
    ("isbi_png", _huge_png, "cannot read image"),  # PIL DecompressionBombError
    ("isbi_tif_image", [("overwrite", 320, b"\x7f"), ("overwrite", 1018093, b"wp-R\xc9\xe9")], "cannot read"),
    ("isbi_tiff_stack", [("delete", 204, 3)], "cannot read TIFF stack"),  # struct.error
    ("isbi_tiff_stack", [("delete", 191, 1)], "cannot read TIFF stack"),  # RuntimeError (keyframe)
    ("isbi_tiff_stack", [("delete", 28, 33), ("delete", 226, 7)], "expected grayscale pages"),  # (1, 0, 16)
    ("voc_jpeg", _huge_jpeg, "unreadable image"),  # DecompressionBombError
    ("voc_jpeg", [("delete", 0, 9)], "unreadable image"),  # ValueError: unknown raw mode (read as TGA)
    ("voc_label", _huge_png, "unreadable label image"),  # DecompressionBombError
    ("imagenet_jpeg", _huge_jpeg, "cannot read image"),  # DecompressionBombError
    ("nifti", [("flip", 42, 0)], "cannot read volume"),  # nibabel message over two lines
    ("dicom_image", _long_transfer_syntax, "cannot read DICOM pixels"),  # newlines in the message
    ("dicom_series", [("flip", 136, 3)], "cannot read DICOM"),  # BytesLengthException in dcmread
    ("cube_file", [("flip", 9, 0)], "not a readable .npy"),  # tokenize.TokenError from the header
    ("cube_file", _npy_with(np.nan, (2, 8, 8, 4)), "values must be in [0, 1]"),  # NaN passed the range check
    ("cube_file", [("flip", 64, 3)], "expected cubes"),  # zero-size cubes
    ("port_h5", [("flip", 17, 7)], "not a readable HDF5"),  # RuntimeError from h5py
    ("mr_h5", [("insert", 195, b"\x00")], "not a readable HDF5"),  # RuntimeError from h5py
    ("mr_npy", _npy_with(np.nan), "NaN or Inf"),  # NaN images came back unscaled
    ("mr_npy", _npy_with(1e300, dtype=np.float64), "NaN or Inf"),  # NaN after the cast to complex64
    ("mr_npy", [("flip", 10, 0)], "not a readable .npy"),  # tokenize.TokenError
    ("mr_npy", [("flip", 64, 3)], "no image data"),  # zero-size images: ValueError in the scaling
    ("mr_mat_v5", [("truncate", 1, None)], "not a readable MATLAB file"),  # MatReadError
    ("mr_mat_v5", [("flip", 200, 5)], "not a readable MATLAB file"),  # zlib.error
    ("mr_mat_v73", [("truncate", 253, None)], "not a readable MATLAB file"),  # OSError from h5py, unguarded
    ("mr_mat_v73", [("flip", 176, 4)], "not a readable MATLAB file"),  # KeyError from h5py
    ("cfl_header", _cfl_header("-8 -8 2"), "dimensions must be positive"),  # ValueError in reshape
    ("cfl_header", _cfl_header(f"{2**61 + 16} 8"), "holds 1024 bytes"),  # int64 wrap-around
    ("weights_h5", [("insert", 52, b"\x00\x00\x00\x00")], "unreadable HDF5 weights file"),  # RuntimeError
    ("weights_keras3", [("insert", 115, b"\x00")], "unreadable HDF5 weights file"),  # RuntimeError from h5py
    ("weights_lasagne_npz", [("overwrite", 134393, b"\x00\x00\x80\x7f")], "not a readable .npz"),  # zip v12.8
]


@pytest.mark.parametrize(
    "name, edits, needle", [pytest.param(*row, id=f"{row[0]}-{i}") for i, row in enumerate(REGRESSIONS)]
)
def test_fuzzing_regressions_raise_a_keras_zoo_error(name, edits, needle, pristine):
    message = read_corrupted(CASES[name], *pristine(name), edits)
    assert message is not None and needle in message, message


@st.composite
def cfl_dims(draw) -> list[int]:
    """Header sizes: half of the time a factorisation of 128 (the data file's size) with random signs and
    sometimes a factor 2**64 (which int64 products lose), otherwise any small or huge sizes."""
    if draw(st.booleans()):
        return draw(st.lists(st.one_of(st.integers(-3, 9), st.integers(2**31, 2**64)), max_size=5))
    cuts = sorted(draw(st.lists(st.integers(0, 7), max_size=3)))
    exponents = np.diff([0, *cuts, 7])
    dims = [int(2**e) * (-1 if draw(st.booleans()) else 1) for e in exponents]
    if draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] += 2**64  # 2**64 + d == d in int64 arithmetic
    return draw(st.permutations(dims))


@FUZZ
@given(dims=cfl_dims())
def test_cfl_headers_with_any_dimensions(dims, pristine):
    """Header sizes of any sign and magnitude: the 128-value data file reads only when they multiply to 128."""
    message = read_corrupted(
        CASES["cfl_header"], *pristine("cfl_header"), _cfl_header(" ".join(map(str, dims)))
    )
    assert (message is None) == (bool(dims) and min(dims) > 0 and math.prod(dims) == 128), message


# -------------------------------------------------------------------------------- k-space masks
@st.composite
def mask_configs(draw):
    """(shape (..., Nx, Ny), acceleration, centre_lines, centred, seed) with centre_lines <= Nx / acc."""
    shape = (
        *draw(st.lists(st.integers(1, 3), max_size=2)),
        draw(st.integers(4, 64)),
        draw(st.integers(1, 12)),
    )
    acceleration = draw(st.floats(1.0, 10.0))
    lines = int(shape[-2] / acceleration)
    centre_lines = draw(st.integers(0, lines))
    return shape, acceleration, centre_lines, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("make_mask", [mri.cartesian_mask, mri.uniform_mask])
@FUZZ
@given(config=mask_configs())
def test_masks_sample_whole_lines_at_the_rate_with_the_centre(make_mask, config):
    shape, acceleration, centre_lines, centred, seed = config
    mask = make_mask(shape, acceleration, centre_lines, centred=centred, rng=seed)
    nx = shape[-2]
    assert mask.shape == shape and mask.dtype == np.float32
    assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
    assert np.all(mask.min(axis=-1) == mask.max(axis=-1))  # whole readout lines
    lines = mask[..., 0].reshape(-1, nx)
    # exactly int(Nx / acceleration) lines per slice: the sampled fraction is 1/acceleration within 1/Nx
    np.testing.assert_array_equal(lines.sum(axis=1), int(nx / acceleration))
    assert np.all(np.abs(lines.mean(axis=1, dtype=np.float64) - 1 / acceleration) < 1 / nx + 1e-9)
    centre = slice(nx // 2 - centre_lines // 2, nx // 2 - centre_lines // 2 + centre_lines)
    as_centred = mask if centred else np.fft.fftshift(mask, axes=(-2, -1))
    assert np.all(as_centred[..., centre, :] == 1)
    np.testing.assert_array_equal(
        make_mask(shape, acceleration, centre_lines, centred=centred, rng=seed), mask
    )
    if not centred:  # the uncentred mask is the centred one, ifftshift-ed
        np.testing.assert_array_equal(
            np.fft.ifftshift(
                make_mask(shape, acceleration, centre_lines, centred=True, rng=seed), axes=(-2, -1)
            ),
            mask,
        )


@FUZZ
@given(nx=st.integers(4, 64), acceleration=st.floats(1.0, 10.0), extra=st.integers(1, 8))
def test_masks_refuse_more_centre_lines_than_samples(nx, acceleration, extra):
    too_many = int(nx / acceleration) + extra
    with pytest.raises(ValueError, match="centre_lines"):
        mri.cartesian_mask((nx, 4), acceleration, too_many)


def test_odd_centre_lines_sample_the_documented_number_of_lines():
    mask = mri.cartesian_mask((16, 4), acceleration=4, centre_lines=3, centred=True, rng=0)
    assert mask[:, 0].sum() == 4 and np.all(mask[7:10, 0] == 1)


def test_all_lines_central_give_a_full_mask():
    np.testing.assert_array_equal(mri.cartesian_mask((4, 1), acceleration=1.0, centre_lines=4, rng=0), 1)


# -------------------------------------------------------------------------- Models Genesis transforms
@st.composite
def cubes(draw, max_side: int = 20):
    """A random cube (rows, cols, depth) in [0, 1], float32 or float64."""
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return np.random.default_rng(draw(st.integers(0, 2**16))).random(shape).astype(dtype)


RATES = st.builds(genesis.TransformRates, *[st.floats(0.0, 1.0)] * 5)


def _flips(cube):
    return [cube, cube[::-1], cube[:, ::-1], cube[::-1, ::-1]]


@FUZZ
@given(cube=cubes(), rates=RATES, seed=st.integers(0, 2**32 - 1))
def test_genesis_pairs_keep_shape_dtype_range_and_are_seeded(cube, rates, seed):
    x, y = genesis.make_pair(cube, np.random.default_rng(seed), rates)
    assert x.shape == y.shape == cube.shape and x.dtype == y.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    # the target is the cube, flipped like the input (rows and/or columns, never depth)
    assert any(np.array_equal(y, flipped.astype(np.float32)) for flipped in _flips(cube))
    x2, y2 = genesis.make_pair(cube, np.random.default_rng(seed), rates)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


@FUZZ
@given(cube=cubes(max_side=32), blocks=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1))
def test_local_shuffling_only_moves_values_within_the_cube(cube, blocks, seed):
    out = genesis.local_pixel_shuffling(cube, np.random.default_rng(seed), num_blocks=blocks)
    assert out.shape == cube.shape and out.dtype == cube.dtype
    assert np.isin(out, cube).all()  # every voxel comes from the cube (blocks are read from the original)
    if max(cube.shape) < 20 or blocks == 0:  # blocks of 1 voxel per axis change nothing
        np.testing.assert_array_equal(out, cube)
    np.testing.assert_array_equal(
        genesis.local_pixel_shuffling(cube, np.random.default_rng(seed), blocks), out
    )


@FUZZ
@given(cube=cubes(), inverted=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_nonlinear_transform_is_a_monotone_map_into_the_unit_range(cube, inverted, seed):
    out = genesis.nonlinear_transform(cube, np.random.default_rng(seed), inverted=inverted)
    assert out.shape == cube.shape and out.dtype == cube.dtype
    assert out.min() >= 0 and out.max() <= 1
    mapped = out.ravel()[np.argsort(cube.ravel(), kind="stable")]
    steps = np.diff(mapped)
    assert np.all(steps <= 1e-6) if inverted else np.all(steps >= -1e-6)


@FUZZ
@given(cube=cubes(), seed=st.integers(0, 2**32 - 1))
def test_painting_changes_only_its_boxes(cube, seed):
    rng = np.random.default_rng(seed)
    boxes = genesis.sample_inpaint_boxes(cube.shape, rng)
    windows = genesis.sample_outpaint_windows(cube.shape, rng)
    assert len(boxes) <= 5 and 1 <= len(windows) <= 5
    for box in [*boxes, *windows]:
        assert all(0 <= s.start <= s.stop <= dim for s, dim in zip(box, cube.shape)), box
    inpainted = genesis.in_painting(cube, rng, boxes)
    outpainted = genesis.out_painting(cube, rng, windows)
    outside = np.ones(cube.shape, bool)
    for box in boxes:
        outside[box] = False
    np.testing.assert_array_equal(inpainted[outside], cube[outside])
    for window in windows:
        np.testing.assert_array_equal(outpainted[window], cube[window])
    for out in (inpainted, outpainted):
        assert out.shape == cube.shape and out.dtype == cube.dtype and out.min() >= 0 and out.max() <= 1


# ------------------------------------------------------------------------------- paired augmentation
CONFIGS = st.builds(
    augment.AugmentConfig,
    rotation=st.floats(0, 45),
    shift=st.floats(0, 0.3),
    shear=st.floats(0, 20),
    zoom=st.floats(0, 0.5),
    flip_horizontal=st.booleans(),
    flip_vertical=st.booleans(),
    rot90=st.booleans(),
    fill_mode=st.sampled_from(augment.FILL_MODES),
)
CONTINUOUS_FILL = ("reflect", "nearest", "mirror")  # extensions without jumps: bilinear stays within a pixel


@st.composite
def augment_cases(draw):
    height, width = draw(st.integers(2, 24)), draw(st.integers(2, 24))
    config = draw(CONFIGS)
    patch = None
    if draw(st.booleans()):
        patch = (draw(st.integers(1, height)), draw(st.integers(1, width)))
    return height, width, config, patch, draw(st.integers(0, 2**32 - 1))


def _augment(image, mask, config, patch, seed):
    rng = np.random.default_rng(seed)
    if patch is None:
        return augment.augment_pair(image, mask, rng, config)
    return augment.random_patch(image, mask, patch, rng, config)


@FUZZ
@given(case=augment_cases())
def test_augmentation_keeps_image_and_mask_aligned(case):
    """The image holds each pixel's (row, col); the mask holds its index. Nearest (mask) and bilinear (image)
    sampling of the same transform must point at the same input pixel, to within half a pixel."""
    height, width, config, patch, seed = case
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols], axis=-1).astype(np.float64)
    index = (rows * width + cols).astype(np.int32)
    out_image, out_index = _augment(image, index, config, patch, seed)
    size = (height, width) if patch is None else patch
    assert out_image.shape == (*size, 2) and out_index.shape == size and out_index.dtype == np.int32
    assert np.isin(out_index, index).all()  # nearest sampling: only input labels
    source = np.stack(np.divmod(out_index, width), axis=-1)
    if not config.is_affine:  # crops, flips and turns move whole pixels
        np.testing.assert_array_equal(out_image, source)
    elif config.fill_mode in CONTINUOUS_FILL:
        assert np.abs(out_image - source).max() <= 0.5 + 1e-6
    repeat_image, repeat_index = _augment(image, index, config, patch, seed)
    np.testing.assert_array_equal(repeat_image, out_image)
    np.testing.assert_array_equal(repeat_index, out_index)


@FUZZ
@given(case=augment_cases(), dtype=st.sampled_from([np.uint8, np.float32, bool]))
def test_augmented_masks_stay_binary(case, dtype):
    height, width, config, patch, seed = case
    rng = np.random.default_rng(seed)
    mask = (rng.random((height, width)) < 0.5).astype(dtype)
    image = rng.random((height, width)).astype(np.float32)
    out_image, out_mask = _augment(image, mask, config, patch, seed)
    assert out_mask.dtype == mask.dtype and set(np.unique(out_mask).tolist()) <= {0, 1}
    assert out_image.dtype == np.float32 and out_image.shape == out_mask.shape
    if not config.is_affine:  # an image equal to the mask is moved exactly like it
        np.testing.assert_array_equal(
            _augment(mask.astype(np.float32), mask, config, patch, seed)[0], out_mask
        )

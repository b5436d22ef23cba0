"""CascadeNet: parameter counts, structure, data consistency of the output, weight import vs NumPy."""

import keras
import numpy as np
import pytest
from scipy.signal import convolve2d, correlate2d

from keras_zoo.errors import WeightsError
from keras_zoo.models.cascadenet import cascadenet
from keras_zoo.models.cascadenet_weights import load_cascadenet_weights
from keras_zoo.registry import get_model
from tests.helpers import CASCADENET_ASCEND_TINY as ASCEND_TINY
from tests.helpers import check_model, mixed_precision_forward

pytestmark = pytest.mark.backend_agnostic

TINY = {"n_cascades": 2, "n_convs": 3, "filters": 4}


def undersampled_batch(rng, shape):
    """Random complex images (shape) -> [zero-filled, k-space, mask] 2-channel inputs and the target."""
    image = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    mask = (rng.random(shape[:-1] + (1,)) < 0.4) * np.ones(shape)
    kspace = np.fft.fft2(image, norm="ortho") * mask
    zero_filled = np.fft.ifft2(kspace, norm="ortho")

    def channels(z):
        return np.stack([z.real, z.imag], axis=-1).astype("float32")

    return [channels(zero_filled), channels(kspace), np.stack([mask, mask], -1).astype("float32")], channels(
        image
    )


@pytest.mark.structure
def test_parameter_counts_match_the_references():
    assert cascadenet().count_params() == 565_770  # D5-C5, the same as d5_c5.npz
    dynamic = cascadenet(input_shape=(30, 256, 32, 2), n_cascades=10, dynamic=True, data_sharing=True)
    assert dynamic.count_params() == 3_562_260  # D5-C10(S)
    ascend = get_model("cascadenet", preset="ascend")
    assert sum(int(np.prod(w.shape)) for w in ascend.trainable_weights) == 335_365
    assert ascend.count_params() - 335_365 == 1_284  # BN moving statistics


def test_tiny_2d_model_passes_common_checks_and_output_is_data_consistent(tmp_path):
    inputs, target = undersampled_batch(np.random.default_rng(0), (2, 16, 12))
    model = cascadenet(input_shape=(None, None, 2), **TINY)
    check_model(model, inputs, tmp_path, expected_output_shapes=[(2, 16, 12, 2)], targets=target)
    out = np.asarray(model.predict(inputs, verbose=0))
    k_out = np.fft.fft2(out[..., 0] + 1j * out[..., 1], norm="ortho")
    sampled = inputs[2][..., 0] > 0
    np.testing.assert_allclose(
        k_out[sampled], (inputs[1][..., 0] + 1j * inputs[1][..., 1])[sampled], atol=1e-5
    )
    names = [layer.name for layer in model.layers if layer.name.startswith("cascade1_")]
    assert sorted(names) == [
        "cascade1_conv1",
        "cascade1_conv2",
        "cascade1_conv_aggr",
        "cascade1_dc",
        "cascade1_residual",
    ]


def test_tiny_dynamic_data_sharing_model_is_data_consistent():
    inputs, _ = undersampled_batch(np.random.default_rng(1), (1, 4, 8, 8))
    model = cascadenet(input_shape=(8, 8, 2), frames=4, dynamic=True, data_sharing=True, **TINY)
    assert model.get_layer("cascade1_conv1").kernel.shape == (3, 3, 3, 12, 4)
    assert not model.get_layer("cascade1_kavg").divide_by_n and model.get_layer("cascade2_kavg").divide_by_n
    out = np.asarray(model.predict(inputs, verbose=0))
    assert out.shape == (1, 4, 8, 8, 2)
    k_out = np.fft.fft2(out[..., 0] + 1j * out[..., 1], norm="ortho")
    sampled = inputs[2][..., 0] > 0
    np.testing.assert_allclose(
        k_out[sampled], (inputs[1][..., 0] + 1j * inputs[1][..., 1])[sampled], atol=1e-5
    )


@pytest.mark.large
def test_tiny_dynamic_data_sharing_model_passes_common_checks(tmp_path):
    inputs, target = undersampled_batch(np.random.default_rng(1), (1, 4, 8, 8))
    model = cascadenet(input_shape=(8, 8, 2), frames=4, dynamic=True, data_sharing=True, **TINY)
    check_model(model, inputs, tmp_path, expected_output_shapes=[(1, 4, 8, 8, 2)], targets=target)


def test_ascend_variant_shares_one_denoiser_and_one_lambda():
    model = cascadenet(**ASCEND_TINY)
    assert [w.path for w in model.trainable_weights if "lambda" in w.path] == ["dc/lambda"]
    assert model.get_layer("shared_conv1").bias is None
    # one shared stack: 3 convs (2->4, 4->4, 4->2, no bias) + 3 BN (gamma, beta) + lambda
    assert len(model.trainable_weights) == 3 + 6 + 1


@pytest.mark.large
def test_ascend_variant_passes_common_checks(tmp_path):
    inputs, target = undersampled_batch(np.random.default_rng(2), (2, 8, 8))
    model = cascadenet(**ASCEND_TINY)
    check_model(model, inputs, tmp_path, expected_output_shapes=[(2, 8, 8, 2)], targets=target)


def test_output_is_float32_under_mixed_precision():
    inputs, _ = undersampled_batch(np.random.default_rng(3), (1, 8, 8))
    (out,) = mixed_precision_forward(cascadenet, inputs, input_shape=(8, 8, 2), **TINY)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "bad, word",
    [
        ({"input_shape": (8, 8, 1)}, "2 channels"),
        ({"n_convs": 1}, "n_convs"),
        ({"data_sharing": True}, "dynamic"),
        ({"frames": 4}, "frames"),
    ],
)
def test_bad_arguments_are_named(bad, word):
    with pytest.raises(ValueError, match=word):
        cascadenet(**{**TINY, **bad})


def numpy_dncn(image, kspace, mask, arrays, n_convs, flip):
    """Independent forward pass of the reference DnCn: Lasagne OIHW weights, complex DC with NumPy FFTs."""
    conv = convolve2d if flip else correlate2d  # Lasagne's flipping layer computes a true convolution
    x = image
    per_cascade = 2 * n_convs
    for c in range(len(arrays) // per_cascade):
        h = np.stack([x.real, x.imag])  # (2, nx, ny) channels first
        for i in range(n_convs):
            weight, bias = arrays[c * per_cascade + 2 * i], arrays[c * per_cascade + 2 * i + 1]
            h = np.stack(
                [
                    sum(conv(h[j], weight[o, j], mode="same") for j in range(h.shape[0])) + bias[o]
                    for o in range(weight.shape[0])
                ]
            )
            if i < n_convs - 1:
                h = np.maximum(h, 0)
        x = x + h[0] + 1j * h[1]
        k = np.fft.fft2(x, norm="ortho")
        x = np.fft.ifft2((1 - mask) * k + mask * kspace, norm="ortho")
    return x


def write_lasagne_npz(path, rng, n_cascades, n_convs, filters):
    arrays = []
    for _ in range(n_cascades):
        channels = [2] + [filters] * (n_convs - 1) + [2]
        for cin, cout in zip(channels[:-1], channels[1:]):
            arrays += [
                rng.normal(0, 0.3, (cout, cin, 3, 3)).astype("float32"),
                rng.normal(0, 0.1, cout).astype("float32"),
            ]
    np.savez(path, *arrays)
    return arrays


@pytest.mark.parametrize("flip", [False, True])
def test_npz_import_reproduces_numpy_forward_pass(tmp_path, flip):
    rng = np.random.default_rng(4)
    arrays = write_lasagne_npz(tmp_path / "w.npz", rng, **TINY)
    inputs, _ = undersampled_batch(rng, (1, 12, 10))
    model = cascadenet(input_shape=(None, None, 2), weights=tmp_path / "w.npz", flip_kernels=flip, **TINY)
    out = np.asarray(model.predict(inputs, verbose=0))[0]
    image, kspace, mask = (a[0, ..., 0] + 1j * a[0, ..., 1] for a in inputs)
    expected = numpy_dncn(image, kspace, mask.real, arrays, TINY["n_convs"], flip)
    np.testing.assert_allclose(out[..., 0] + 1j * out[..., 1], expected, atol=1e-4)


def test_bad_weight_files_raise_weights_error(tmp_path):
    model = cascadenet(input_shape=(8, 8, 2), **TINY)
    write_lasagne_npz(tmp_path / "three.npz", np.random.default_rng(5), n_cascades=3, n_convs=3, filters=4)
    with pytest.raises(WeightsError, match="three.npz"):
        load_cascadenet_weights(model, tmp_path / "three.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="broken.npz"):
        load_cascadenet_weights(model, tmp_path / "broken.npz")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_cascadenet_weights(model, tmp_path / "w.bin")


def test_torch_state_dict_import_matches_npz_import(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = write_lasagne_npz(tmp_path / "w.npz", np.random.default_rng(6), **TINY)
    state = {}
    for c in range(TINY["n_cascades"]):
        for i in range(TINY["n_convs"]):
            for kind, offset in (("weight", 0), ("bias", 1)):
                array = arrays[c * 2 * TINY["n_convs"] + 2 * i + offset]
                state[f"conv_blocks.{c}.{2 * i}.{kind}"] = torch.from_numpy(array)
    torch.save(state, tmp_path / "dncn.pth")
    inputs, _ = undersampled_batch(np.random.default_rng(7), (1, 8, 8))
    from_torch = cascadenet(input_shape=(8, 8, 2), weights=tmp_path / "dncn.pth", **TINY)
    from_npz = cascadenet(input_shape=(8, 8, 2), weights=tmp_path / "w.npz", flip_kernels=False, **TINY)
    np.testing.assert_allclose(
        from_torch.predict(inputs, verbose=0), from_npz.predict(inputs, verbose=0), atol=1e-6
    )


def test_authors_d5_c5_weights_load_and_improve_a_phantom(shared_data):
    path = shared_data / "cascadenet_pretrained" / "d5_c5.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    from keras_zoo.datasets.mri import cascadenet_example, channels_to_complex
    from keras_zoo.metrics.reconstruction import complex_psnr

    model = cascadenet(input_shape=(None, None, 2), weights=path)
    with np.load(path) as data:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model.get_layer("cascade1_conv1").kernel),
            data["arr_0"].transpose(2, 3, 1, 0),
        )
    image = resize(shepp_logan_phantom(), (96, 96), anti_aliasing=True)
    inputs, target = cascadenet_example(image[None] / image.max(), rng=0)
    out = model.predict(inputs, verbose=0)
    zero_filled = complex_psnr(image / image.max(), channels_to_complex(inputs[0][0]))
    assert (
        complex_psnr(image / image.max(), channels_to_complex(out[0])) > zero_filled + 5
    )  # measured 19.5 -> 26.5 dB

"""Models Genesis: reference structure, Keras-2 .h5 loading (by name, head by shape), transfer models,
sliding-window inference."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from keras_zoo.errors import WeightsError
from keras_zoo.inference import gaussian_importance, sliding_window_predict
from keras_zoo.models.genesis import genesis, genesis_classifier, genesis_segmenter
from keras_zoo.models.genesis_weights import load_genesis_weights
from keras_zoo.registry import get_entry, get_model

pytestmark = pytest.mark.backend_agnostic

TINY = {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3}


def write_keras2_h5(model: keras.Model, path, head_name: str = "conv3d_15", full_model_file: bool = False):
    """Writes ``model``'s weights as Keras 2.2 did, renaming the head conv to an auto-generated name."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model_file else f
        layers = [layer for layer in model.layers if layer.weights]
        names = [head_name if layer.name == "head_conv" else layer.name for layer in layers]
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"
        for name, layer in zip(names, layers):
            group = root.create_group(name)
            var_names = [f"{name}/{w.name}:0" for w in layer.trainable_weights + layer.non_trainable_weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in var_names])
            for var_name, weight in zip(var_names, layer.trainable_weights + layer.non_trainable_weights):
                group.create_dataset(var_name, data=keras.ops.convert_to_numpy(weight.value))


def run(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference-mode forward pass as NumPy (eager: cheaper than tracing ``predict`` for tiny models)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def randomize_bn(model: keras.Model, seed: int = 0) -> None:
    """Gives BN layers non-trivial moving statistics so that loading them is visible in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    gamma + rng.normal(0, 0.1, gamma.shape),
                    beta + rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )


@pytest.mark.structure
def test_default_matches_reference_count_and_names():
    model = genesis()
    assert model.count_params() == 16_324_929 == get_entry("genesis").reference_params
    block_names = [layer.name for layer in model.layers if layer.name.startswith("depth_")]
    assert block_names == [f"depth_{i}_{kind}" for i in range(14) for kind in ("conv", "bn", "relu")]
    assert model.get_layer("depth_7_relu").output.shape == (None, 8, 8, 4, 512)
    assert model.get_layer("depth_8_conv").input.shape == (None, 16, 16, 8, 768)
    assert model.get_layer("depth_13_relu").output.shape == (None, 64, 64, 32, 64)
    bn = model.get_layer("depth_0_bn")
    assert (bn.momentum, bn.epsilon) == (0.99, 1e-3)
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 4_672


@pytest.mark.structure
def test_upsampled_tensor_comes_first_in_concat():
    model = genesis(**TINY)
    concat = model.get_layer("concat_1")
    assert (
        concat.input[0].shape[-1] == model.get_layer("depth_5_relu").output.shape[-1]
    )  # upsampled bottleneck
    assert concat.input[1].shape[-1] == model.get_layer("depth_3_relu").output.shape[-1]  # skip


@pytest.mark.parametrize("shape", [(60, 64, 32, 1), (64, 64, 30, 1), (64, 64, 32)])
def test_bad_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="genesis"):
        genesis(input_shape=shape)


def test_tiny_preset_forward_is_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # TF has no float16 MaxPool3D on CPU
    model = get_model("genesis", preset="tiny")
    out = model(np.random.default_rng(0).random((2, 16, 16, 8, 1), dtype=np.float32))
    assert out.shape == (2, 16, 16, 8, 1)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))


@pytest.mark.parametrize("full_model_file", [False, True])
def test_keras2_h5_loads_by_name_and_head_by_shape(tmp_path, full_model_file):
    source = genesis(**TINY)
    randomize_bn(source)
    path = tmp_path / "Genesis_tiny.h5"
    write_keras2_h5(source, path, full_model_file=full_model_file)
    volume = np.random.default_rng(1).random((2, 16, 16, 8, 1), dtype=np.float32)

    target = genesis(**TINY)
    report = load_genesis_weights(target, path)
    assert "head_conv<-conv3d_15" in report.matched
    assert len(report.matched) == 2 * 10 + 1 and not report.mismatched and not report.missing
    np.testing.assert_allclose(run(target, volume), run(source, volume), atol=1e-6)

    via_factory = genesis(**TINY, weights=str(path))
    np.testing.assert_allclose(run(via_factory, volume), run(source, volume), atol=1e-6)


@pytest.mark.structure
def test_weights_of_another_architecture_fail_listing_mismatches(tmp_path):
    path = tmp_path / "wider.h5"
    write_keras2_h5(genesis(**{**TINY, "filters": 3}), path)
    with pytest.raises(WeightsError, match=r"mismatches: depth_0_conv model \[\(3, 3, 3, 1, 2\)"):
        load_genesis_weights(genesis(**TINY), path)

    with pytest.raises(WeightsError, match="no layer"):  # skipping every mismatch leaves nothing loaded
        load_genesis_weights(genesis(**TINY), path, skip_mismatch=True)


def test_unrelated_h5_fails(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
    path = tmp_path / "other.h5"
    write_keras2_h5(other, path)
    with pytest.raises(WeightsError, match="no layer"):
        load_genesis_weights(genesis(**TINY), path)


def test_keras_zoo_weights_files_round_trip(tmp_path):
    source = genesis(**TINY)
    randomize_bn(source, seed=3)
    volume = np.random.default_rng(2).random((1, 16, 16, 8, 1), dtype=np.float32)
    source.save_weights(tmp_path / "g.weights.h5")
    source.save(tmp_path / "g.keras")
    expected = run(source, volume)
    for name in ("g.weights.h5", "g.keras"):
        loaded = genesis(**TINY, weights=tmp_path / name)
        np.testing.assert_allclose(run(loaded, volume), expected, atol=1e-6)


def test_segmenter_and_classifier_take_pretrained_weights_at_larger_input(tmp_path):
    source = genesis(**TINY)
    path = tmp_path / "pre.h5"
    write_keras2_h5(source, path)
    seg = genesis_segmenter((32, 32, 16, 1), classes=3, weights=path, filters=2, depth=3, freeze_encoder=True)
    assert seg.output_shape == (None, 32, 32, 16, 3)
    np.testing.assert_array_equal(
        seg.get_layer("depth_0_conv").get_weights()[0], source.get_layer("depth_0_conv").get_weights()[0]
    )
    assert not seg.get_layer("depth_5_conv").trainable and seg.get_layer("depth_6_conv").trainable
    probs = run(seg, np.zeros((1, 32, 32, 16, 1), np.float32))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)

    cls = genesis_classifier(
        (32, 32, 16, 1), classes=1, weights=path, filters=2, depth=3, dense_units=8, freeze_batch_norm=True
    )
    assert cls.output_shape == (None, 1)
    bottleneck = cls.get_layer("cls_pool").input
    assert bottleneck.shape == (None, 8, 8, 4, 16) and bottleneck is cls.get_layer("depth_5_relu").output
    assert not any(
        layer.trainable for layer in cls.layers if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_sliding_window_equals_direct_on_cube_sized_volume():
    model = genesis(**TINY)
    volume = np.random.default_rng(4).random((16, 16, 8), dtype=np.float32)
    direct = run(model, volume[None, ..., None])[0]
    np.testing.assert_allclose(sliding_window_predict(model, volume, window=(16, 16, 8)), direct, atol=1e-6)


@pytest.mark.parametrize("blending", ["gaussian", "constant"])
def test_sliding_window_of_pointwise_model_is_exact_on_larger_volume(blending):
    inputs = keras.Input((8, 8, 4, 1))
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(inputs))
    volume = np.random.default_rng(5).normal(size=(21, 13, 9)).astype(np.float32)
    out = sliding_window_predict(
        model, volume, window=(8, 8, 4), overlap=0.5, blending=blending, batch_size=3
    )
    np.testing.assert_allclose(out[..., 0], 1 / (1 + np.exp(-volume)), atol=1e-6)


def test_gaussian_importance_peaks_in_the_centre():
    weights = gaussian_importance((9, 9, 5))
    assert weights.shape == (9, 9, 5) and weights[4, 4, 2] == 1.0 and weights.min() > 0
    assert weights[0, 4, 2] < weights[2, 4, 2] < weights[4, 4, 2]


def test_common_model_checks(tmp_path):
    from tests.helpers import check_model

    volume = np.random.default_rng(6).random((2, 16, 16, 8, 1), dtype=np.float32)
    check_model(genesis(**TINY), volume, tmp_path, expected_output_shapes=[(2, 16, 16, 8, 1)])


def test_bn_momentum_option():
    assert genesis(**TINY, bn_momentum=0.9).get_layer("depth_9_bn").momentum == 0.9
    with pytest.raises(ValueError, match="bn_momentum"):
        genesis(**TINY, bn_momentum=1.0)

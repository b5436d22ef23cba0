"""TF1 DeepLab checkpoint conversion on a checkpoint written here with the reference's variable names."""

import numpy as np
import pytest

from keras_zoo.errors import WeightsError
from keras_zoo.models.deeplab import deeplabv3plus
from keras_zoo.models.deeplab_weights import keras_target, load_tf_checkpoint

tf = pytest.importorskip("tensorflow")

TINY = {"input_shape": (33, 33, 3), "backbone": "xception41", "width": 1 / 16, "middle_units": 1}


def reference_scopes(middle_units=1):
    """The reference's conv scopes of xception_41 (with ``middle_units``) + ASPP + decoder + logits."""
    scopes = ["xception_41/entry_flow/conv1_1", "xception_41/entry_flow/conv1_2"]
    units = [f"entry_flow/block{i}/unit_1" for i in (1, 2, 3)]
    units += [f"middle_flow/block1/unit_{i}" for i in range(1, middle_units + 1)]
    units += ["exit_flow/block1/unit_1", "exit_flow/block2/unit_1"]
    for unit in units:
        for i in (1, 2, 3):
            for part in ("depthwise", "pointwise"):
                scopes.append(f"xception_41/{unit}/xception_module/separable_conv{i}_{part}")
        if unit.startswith("entry") or unit.startswith("exit_flow/block1"):
            scopes.append(f"xception_41/{unit}/xception_module/shortcut")
    scopes += ["image_pooling", "aspp0", "concat_projection", "decoder/feature_projection0"]
    scopes += [f"aspp{i}_{part}" for i in (1, 2, 3) for part in ("depthwise", "pointwise")]
    scopes += [f"decoder/decoder_conv{i}_{part}" for i in (0, 1) for part in ("depthwise", "pointwise")]
    return scopes


def write_checkpoint(model, prefix, classes_in_file=None):
    """Writes random values under reference names, shaped like ``model``'s layers; returns {name: value}."""
    rng = np.random.default_rng(0)
    values = {}
    for scope in reference_scopes():
        layer, slot = keras_target(f"{scope}/weights")
        kernel_shape = tuple(model.get_layer(layer).weights[0].shape)
        kind = "depthwise_weights" if scope.endswith("depthwise") else "weights"
        values[f"{scope}/{kind}"] = rng.normal(size=kernel_shape).astype("float32")
        for stat in ("gamma", "beta", "moving_mean", "moving_variance"):
            values[f"{scope}/BatchNorm/{stat}"] = rng.uniform(
                0.5, 1.5, size=kernel_shape[-1:] if kind == "weights" else kernel_shape[2:3]
            ).astype("float32")
    classes = classes_in_file or model.output.shape[-1]
    channels = model.get_layer("logits_semantic").weights[0].shape[2]
    values["logits/semantic/weights"] = rng.normal(size=(1, 1, channels, classes)).astype("float32")
    values["logits/semantic/biases"] = rng.normal(size=(classes,)).astype("float32")
    values["global_step"] = np.array(30000, np.int64)
    values["aspp0/weights/Momentum"] = values["aspp0/weights"]
    values["some_other_head/weights"] = np.zeros((1, 1, 2, 2), "float32")
    names = sorted(values)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n]) for n in names],
    )
    return values


def test_name_mapping_examples():
    assert keras_target(
        "xception_65/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise/depthwise_weights"
    ) == ("entry_flow_block1_unit_1_separable_conv1_depthwise", "kernel")
    assert keras_target("xception_65/exit_flow/block1/unit_1/xception_module/shortcut/BatchNorm/gamma") == (
        "exit_flow_block1_unit_1_shortcut_bn",
        "gamma",
    )
    assert keras_target("decoder/decoder_conv0_pointwise/BatchNorm/moving_variance") == (
        "decoder_conv0_pointwise_bn",
        "moving_variance",
    )
    assert keras_target("logits/semantic/biases") == ("logits_semantic", "bias")
    assert keras_target("global_step") is None


def test_checkpoint_converts_every_layer(tmp_path):
    model = deeplabv3plus(**TINY)
    values = write_checkpoint(model, tmp_path / "model.ckpt")
    report = load_tf_checkpoint(model, tmp_path / "model.ckpt", strict=True)
    assert not report.missing and not report.mismatched
    assert report.unused == ["some_other_head/weights"]
    assert len(report.matched) == sum(1 for layer in model.layers if layer.weights)
    layer = model.get_layer("entry_flow_block1_unit_1_separable_conv1_depthwise")
    np.testing.assert_array_equal(
        layer.weights[0].numpy(),
        values[
            "xception_41/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise/depthwise_weights"
        ],
    )
    bn = model.get_layer("decoder_conv1_pointwise_bn")
    np.testing.assert_array_equal(
        bn.moving_variance.numpy(), values["decoder/decoder_conv1_pointwise/BatchNorm/moving_variance"]
    )
    np.testing.assert_array_equal(
        model.get_layer("logits_semantic").bias.numpy(), values["logits/semantic/biases"]
    )
    # the factory's weights= argument takes the same prefix
    again = deeplabv3plus(**TINY, weights=str(tmp_path / "model.ckpt"))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 33, 33, 3)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_other_class_count_reports_logits_mismatch(tmp_path):
    model = deeplabv3plus(**TINY, classes=5)
    write_checkpoint(model, tmp_path / "ckpt", classes_in_file=21)
    report = load_tf_checkpoint(model, tmp_path / "ckpt")
    assert [name for name, _, _ in report.mismatched] == ["logits_semantic"]
    with pytest.raises(WeightsError, match="incomplete"):
        load_tf_checkpoint(model, tmp_path / "ckpt", strict=True)
    with pytest.raises(WeightsError, match="not a readable"):
        load_tf_checkpoint(model, tmp_path / "missing")

"""Converts TF1 DeepLab checkpoints (``research/deeplab``, e.g. ``xception65_coco_voc_trainaug``) by name.

A reference variable such as ``xception_65/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise/
depthwise_weights`` maps to layer ``entry_flow_block1_unit_1_separable_conv1_depthwise`` weight ``kernel``;
``.../BatchNorm/{gamma,beta,moving_mean,moving_variance}`` go to the ``..._bn`` layer; ``aspp0/weights``,
``decoder/decoder_conv0_pointwise/weights`` and ``logits/semantic/{weights,biases}`` map the same way. TF and
Keras share the HWIO kernel layout (depthwise ``(3, 3, in, 1)``), so values are copied unchanged. Optimizer
slots (``.../Momentum``), moving-average shadows and ``global_step`` are skipped.
"""

from __future__ import annotations

import logging
import os
import re

import keras
import numpy as np

from keras_zoo.errors import WeightsError
from keras_zoo.weights import LoadReport

logger = logging.getLogger(__name__)

_SLOTS = {
    "weights": "kernel",
    "depthwise_weights": "kernel",
    "biases": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}
_SKIPPED = re.compile(r"(^global_step$|/Momentum$|/Adam(_\d+)?$|/RMSProp(_\d+)?$|ExponentialMovingAverage)")


def keras_target(variable: str) -> tuple[str, str] | None:
    """The ``(layer name, weight name)`` of a reference variable, or None for a variable with no counterpart.

    Example: ``xception_65/exit_flow/block1/unit_1/xception_module/shortcut/BatchNorm/gamma`` ->
    ``("exit_flow_block1_unit_1_shortcut_bn", "gamma")``.
    """
    parts = variable.split("/")
    slot = _SLOTS.get(parts[-1])
    if slot is None or len(parts) < 2:
        return None
    scope = parts[:-1]
    suffix = ""
    if scope[-1] == "BatchNorm":
        scope, suffix = scope[:-1], "_bn"
    if scope and re.fullmatch(r"xception_\d+", scope[0]):
        scope = scope[1:]
    scope = [p for p in scope if p != "xception_module"]
    name = "_".join(scope)
    if name.startswith("decoder_decoder_"):  # decoder/decoder_conv0_* -> decoder_conv0_*
        name = name[len("decoder_") :]
    return name + suffix, slot


def load_tf_checkpoint(model: keras.Model, checkpoint: str | os.PathLike, strict: bool = False) -> LoadReport:
    """Copies a DeepLab TF1 checkpoint into ``model`` by name and reports what matched.

    Args:
        model: a :func:`keras_zoo.models.deeplab.deeplabv3plus` model (any output stride: no weight depends
            on it; other ``classes`` leave ``logits_semantic`` as initialised and report it mismatched).
        checkpoint: checkpoint prefix (``.../model.ckpt-30000``) or a folder with a ``checkpoint`` file.
        strict: raise WeightsError unless every model layer with weights was set.

    Returns:
        A :class:`keras_zoo.weights.LoadReport`: ``matched`` / ``missing`` / ``mismatched`` model layers and
        ``unused`` checkpoint variables (optimizer slots and ``global_step`` are skipped silently).

    Raises:
        WeightsError: an unreadable checkpoint, nothing matched, or (``strict``) an incomplete match.
    """
    import tensorflow as tf

    checkpoint = os.fspath(checkpoint)
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise WeightsError(
            f"{checkpoint}: not a readable TF checkpoint ({str(error).splitlines()[0]})"
        ) from None

    wanted: dict[str, dict[str, str]] = {}
    report = LoadReport(path=checkpoint)
    for variable in sorted(shapes):
        if _SKIPPED.search(variable):
            continue
        target = keras_target(variable)
        if target is None:
            report.unused.append(variable)
            continue
        wanted.setdefault(target[0], {})[target[1]] = variable

    layer_names = {layer.name for layer in model.layers}
    for layer_name in sorted(set(wanted) - layer_names):
        report.unused.extend(sorted(wanted[layer_name].values()))
    for layer in model.layers:
        if not layer.weights:
            continue
        variables = wanted.get(layer.name)
        if variables is None:
            report.missing.append(layer.name)
            continue
        slots = [w.path.split("/")[-1] for w in layer.weights]
        if sorted(slots) != sorted(variables):
            report.mismatched.append((layer.name, slots, sorted(variables)))
            continue
        values = [reader.get_tensor(variables[slot]) for slot in slots]
        model_shapes = [tuple(w.shape) for w in layer.weights]
        file_shapes = [tuple(np.shape(v)) for v in values]
        if model_shapes != file_shapes:
            report.mismatched.append((layer.name, model_shapes, file_shapes))
            continue
        layer.set_weights(values)
        report.matched.append(layer.name)

    if not report.matched:
        raise WeightsError(f"{checkpoint}: no checkpoint variable matches a layer of {model.name!r}")
    if strict and (report.missing or report.mismatched):
        raise WeightsError(
            f"{checkpoint}: incomplete match for {model.name!r}: " + report.summary().replace("\n", ";")
        )
    logger.info("%s", report.summary())
    return report

"""Loading Models Genesis weights: the reference's Keras-2 ``.h5`` and keras_zoo's own files.

The published ``Genesis_Chest_CT.h5`` comes from a channels-first Keras 2.2 model. Conv3D kernels are stored
as (kd, kh, kw, in, out) in both data formats and BN vectors are per channel, so the arrays load unchanged
into the channels-last model. Its 42 blocks keep the names ``depth_{i}_conv/_bn`` and load by name; the
1x1x1 head convolution has an auto-generated name (``conv3d_15``, say), so it is matched by shape: when the
file has no ``head_conv``, that layer takes the one unused file layer whose weight shapes are identical.
Target models (classifier, segmenter) load the named blocks only; their new heads stay initialised.
"""

from __future__ import annotations

import logging
import os

import keras

from keras_zoo.errors import WeightsError, require_file
from keras_zoo.registry import register_weights_loader
from keras_zoo.weights import LoadReport, load_weights, read_h5_weights

log = logging.getLogger(__name__)

HEAD = "head_conv"  # the only layer matched by shape: the reference's head conv has an auto-generated name


def _shapes(arrays) -> list[tuple[int, ...]]:
    return [tuple(a.shape) for a in arrays]


@register_weights_loader("genesis")
def load_genesis_weights(
    model: keras.Model, path: str | os.PathLike, skip_mismatch: bool = False
) -> LoadReport | None:
    """Loads weights into a genesis model (or a target model cut from one) and reports what matched.

    Args:
        model: a model built by :func:`keras_zoo.models.genesis.genesis` (or a classifier/segmenter).
        path: the reference's Keras-2 ``.h5``/``.hdf5`` (weights-only or full model file), or keras_zoo's
            ``.weights.h5`` / ``.keras``.
        skip_mismatch: leave layers whose shapes differ as initialised instead of raising.

    Returns:
        A :class:`keras_zoo.weights.LoadReport` for ``.h5``/``.keras`` files (``matched`` lists the head as
        ``"head_conv<-conv3d_15"`` when it was matched by shape); None for ``.weights.h5``.

    Raises:
        WeightsError: unreadable file, nothing matched, or shape mismatches (message lists the first ones).
    """
    path = require_file(path, "weights file")
    if path.endswith((".weights.h5", ".keras")):
        return load_weights(model, path, skip_mismatch=skip_mismatch)
    if not path.endswith((".h5", ".hdf5")):
        raise WeightsError(f"{path}: unknown weights format (expected .h5, .hdf5, .weights.h5 or .keras)")

    file_weights = read_h5_weights(path)
    report = LoadReport(path=path)
    model_layers = [layer for layer in model.layers if layer.weights]
    model_names = {layer.name for layer in model_layers}
    unused = {name: values for name, values in file_weights.items() if values and name not in model_names}
    assignments = []
    for layer in model_layers:
        targets = layer.trainable_weights + layer.non_trainable_weights
        expected = _shapes(targets)
        values = file_weights.get(layer.name)
        label = layer.name
        if values is None and layer.name == HEAD:
            same_shape = [name for name, arrays in unused.items() if _shapes(arrays) == expected]
            if len(same_shape) == 1:
                values = unused.pop(same_shape[0])
                label = f"{layer.name}<-{same_shape[0]}"
        if values is None:
            report.missing.append(layer.name)
            continue
        if _shapes(values) != expected:
            report.mismatched.append((layer.name, expected, _shapes(values)))
            continue
        assignments.append((targets, values))
        report.matched.append(label)
    report.unused = sorted(unused)

    if report.mismatched and not skip_mismatch:
        raise WeightsError(f"weights do not fit model {model.name!r}: " + report.summary().replace("\n", ";"))
    if not report.matched:
        raise WeightsError(f"{path}: no layer of model {model.name!r} matched the file")
    for targets, values in assignments:
        for variable, value in zip(targets, values):
            variable.assign(value)
    log.info(report.summary())
    return report

"""DeepLabv3+'s JAX training step lowers to no convolution that XLA:GPU handles pathologically.

A depthwise convolution lowers to a grouped convolution (with ``rhs_dilate`` when dilated: XLA:GPU pads the
kernel to its dilated extent) and its kernel gradient to a batch-grouped convolution over the whole map (with
window strides or dilation when strided or dilated); XLA:GPU autotunes every one of them against cuDNN.
``keras_zoo.layers.atrous_depthwise`` computes them otherwise; these tests read the lowered StableHLO of the
whole training step (forward, gradients, optimizer).
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from keras_zoo.layers import atrous_depthwise
from keras_zoo.models.deeplab import deeplabv3plus
from tests.helpers import lowered_train_step

pytestmark = pytest.mark.backend_agnostic

# the tiny preset at 129x129: xception41 (same blocks as xception65, fewer middle units), OS16, so it has
# every kind of depthwise conv of the default network: stride 2 (entry flow), rate 2 (exit block2) and
# rates 6/12/18 (ASPP), on 9x9 features
TINY_129 = {"input_shape": (129, 129, 3), "backbone": "xception41", "width": 1 / 16, "middle_units": 1}

_CONVOLUTION = re.compile(r"stablehlo\.convolution\b(?P<rest>.*)")


def _window(text: str, key: str) -> list[int]:
    match = re.search(rf"\b{key} = \[([^\]]*)\]", text)
    return [int(v) for v in re.findall(r"\d+", match.group(1))] if match else [1]


def _count(text: str, key: str) -> int:
    match = re.search(rf"\b{key} = (\d+)", text)
    return int(match.group(1)) if match else 1


def convolutions(stablehlo: str) -> list[dict]:
    """Window strides, dilations and group counts of every ``stablehlo.convolution`` in ``stablehlo``."""
    found = []
    for line in stablehlo.splitlines():
        match = _CONVOLUTION.search(line)
        if match is None:
            continue
        rest = match.group("rest")
        found.append(
            {
                "stride": _window(rest, "stride"),
                "lhs_dilate": _window(rest, "lhs_dilate"),
                "rhs_dilate": _window(rest, "rhs_dilate"),
                "feature_group_count": _count(rest, "feature_group_count"),
                "batch_group_count": _count(rest, "batch_group_count"),
                "line": line.strip()[:300],
            }
        )
    return found


def test_parser_reads_window_and_groups():
    line = (
        "%6 = stablehlo.convolution(%arg0, %5) dim_numbers = [f, 0, 1, b]x[i, 0, 1, o]->[0, 1, b, f], "
        "window = {stride = [2, 2], pad = [[2, 2], [2, 2]], lhs_dilate = [1, 1], rhs_dilate = [1, 3], "
        "reverse = [false, false]} {batch_group_count = 8 : i64, feature_group_count = 1 : i64}"
    )
    (conv,) = convolutions(line)
    assert conv["stride"] == [2, 2] and conv["rhs_dilate"] == [1, 3] and conv["lhs_dilate"] == [1, 1]
    assert (conv["batch_group_count"], conv["feature_group_count"]) == (8, 1)


def _lowered_step_convolutions() -> tuple[list[keras.layers.Layer], list[dict]]:
    """The tiny DeepLab's depthwise layers and the convolutions of its lowered JAX training step."""
    model = deeplabv3plus(**TINY_129)
    depthwise = [layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert {layer.dilation_rate[0] for layer in depthwise} == {1, 2, 6, 12, 18}
    assert {layer.strides[0] for layer in depthwise} == {1, 2}
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 129, 129, 3)).astype("float32")
    y = rng.random((2, 129, 129, 21), dtype=np.float32)
    return depthwise, convolutions(lowered_train_step(model, x, y))


def test_training_step_has_no_grouped_convolution(monkeypatch):
    """The default on JAX (taps): no grouped or batch-grouped convolution is left for XLA to autotune."""
    if keras.config.backend() != "jax":
        pytest.skip("lowers the JAX training step")
    monkeypatch.delenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, raising=False)
    _, convs = _lowered_step_convolutions()
    grouped = [c["line"] for c in convs if c["feature_group_count"] > 1 or c["batch_group_count"] > 1]
    assert convs and not grouped, "\n".join(grouped)


def test_phases_leave_no_dilated_grouped_or_strided_batch_grouped_convolution(monkeypatch):
    """The torch route (phases), lowered on JAX: grouped convolutions remain, none dilated or strided."""
    if keras.config.backend() != "jax":
        pytest.skip("lowers the JAX training step")
    monkeypatch.setenv(atrous_depthwise.IMPLEMENTATION_VARIABLE, "phases")
    depthwise, convs = _lowered_step_convolutions()
    # the depthwise convolutions (forward and input gradient) and their kernel gradients are all there
    assert sum(c["feature_group_count"] > 1 for c in convs) >= 2 * len(depthwise)
    assert sum(c["batch_group_count"] > 1 for c in convs) >= len(depthwise)

    dilated_grouped = [c["line"] for c in convs if c["feature_group_count"] > 1 and max(c["rhs_dilate"]) > 1]
    strided_batch_grouped = [
        c["line"]
        for c in convs
        if c["batch_group_count"] > 1 and max(c["stride"] + c["rhs_dilate"] + c["lhs_dilate"]) > 1
    ]
    assert not dilated_grouped, "\n".join(dilated_grouped)
    assert not strided_batch_grouped, "\n".join(strided_batch_grouped)

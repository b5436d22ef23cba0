"""Aligned Xception backbones (41, 65, 71) of DeepLab (tensorflow/models ``research/deeplab/core/xception.py``).

Every separable convolution is *split* as in the reference: depthwise 3x3 -> BN -> pointwise 1x1 -> BN.
Normal blocks apply a ReLU before each separable convolution and none inside; the last exit block applies
ReLU after the depthwise BN and after the pointwise BN instead. Strided convolutions use the reference's
fixed "same" padding (explicit ``ZeroPadding2D`` then a VALID convolution), so odd sizes such as 513 map
to 257, 129, 65, 33 exactly as in TensorFlow. Atrous rates follow the reference's ``stack_blocks_dense``:
once the running stride reaches the target output stride, later units run at stride 1 and the rate grows by
the stride they skipped (OS16: exit block1 rate 1 at stride 1, exit block2 rate 2; OS8: entry block3 at stride
1, middle flow and exit block1 at rate 2, exit block2 at rate 4).

Layer names mirror the TF variable scopes with ``/`` replaced by ``_`` and the ``xception_65`` root and the
``xception_module`` level dropped, e.g. scope ``xception_65/entry_flow/block1/unit_1/xception_module/
separable_conv1_depthwise`` is layer ``entry_flow_block1_unit_1_separable_conv1_depthwise``; its batch norm
(scope ``.../BatchNorm``) is ``..._depthwise_bn``. Checkpoint conversion is therefore a name mapping
(``keras_zoo.models.deeplab_weights``).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from keras_zoo.layers import atrous_depthwise
from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.layout import Conv2D

BN_MOMENTUM = 0.9997  # slim batch-norm decay of the reference
BACKBONE_BN_EPSILON = 1e-3
CONV_STDDEV = 0.09  # truncated-normal stddev of the backbone's convolution weights


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block of Xception modules (a TF scope such as ``entry_flow/block1``).

    Attributes:
        scope: reference scope, e.g. ``"entry_flow/block1"``.
        depths: output channels of the three separable convolutions.
        skip: ``"conv"`` (1x1 conv + BN shortcut), ``"sum"`` (identity) or ``"none"``.
        stride: stride of the third separable convolution (and of a conv shortcut).
        units: number of repeated modules.
        relu_inside: ReLU after each BN inside the separable conv instead of before it (exit block2).
    """

    scope: str
    depths: tuple[int, int, int]
    skip: str
    stride: int
    units: int = 1
    relu_inside: bool = False


def _entry(depth: int, stride: int, index: int) -> BlockSpec:
    return BlockSpec(f"entry_flow/block{index}", (depth,) * 3, "conv", stride)


_EXIT = (
    BlockSpec("exit_flow/block1", (728, 1024, 1024), "conv", 2),
    BlockSpec("exit_flow/block2", (1536, 1536, 2048), "none", 1, relu_inside=True),
)


def _middle(units: int) -> BlockSpec:
    return BlockSpec("middle_flow/block1", (728,) * 3, "sum", 1, units=units)


BACKBONES: dict[str, tuple[BlockSpec, ...]] = {
    "xception41": (_entry(128, 2, 1), _entry(256, 2, 2), _entry(728, 2, 3), _middle(8), *_EXIT),
    "xception65": (_entry(128, 2, 1), _entry(256, 2, 2), _entry(728, 2, 3), _middle(16), *_EXIT),
    "xception71": (
        _entry(128, 2, 1),
        _entry(256, 1, 2),
        _entry(256, 2, 3),
        _entry(728, 1, 4),
        _entry(728, 2, 5),
        _middle(16),
        *_EXIT,
    ),
}

# The stride-4 feature the DeepLab decoder reads (feature_extractor.py, DECODER_END_POINTS).
DECODER_TAPS = {
    "xception41": "entry_flow_block2_unit_1_separable_conv2_pointwise_bn",
    "xception65": "entry_flow_block2_unit_1_separable_conv2_pointwise_bn",
    "xception71": "entry_flow_block3_unit_1_separable_conv2_pointwise_bn",
}
# Name of the last backbone layer (stride 16 or 8 output, fed to ASPP).
FEATURES_LAYER = "exit_flow_block2_unit_1_separable_conv3_pointwise_relu"


def backbone_blocks(backbone: str, middle_units: int | None = None) -> tuple[BlockSpec, ...]:
    """The blocks of ``backbone``, optionally with ``middle_units`` middle-flow modules (for small test nets)."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    if middle_units is None:
        return BACKBONES[backbone]
    if middle_units < 1:
        raise ValueError(f"middle_units must be >= 1, got {middle_units}")
    return tuple(
        dataclasses.replace(b, units=middle_units) if b.scope.startswith("middle") else b
        for b in BACKBONES[backbone]
    )


def unit_schedule(
    backbone: str, output_stride: int | None, middle_units: int | None = None
) -> list[tuple[str, int, int]]:
    """The (unit scope, stride, rate) of every Xception module, following the reference's atrous logic.

    Args:
        backbone: a key of :data:`BACKBONES`.
        output_stride: 8, 16, 32 or None (no atrous convolution). The root convolution's stride 2 is
            counted first, as the reference halves the target before stacking the blocks.
        middle_units: override of the middle flow's repeat count (None keeps the reference's).

    Returns:
        One ``("entry_flow/block1/unit_1", stride, rate)`` triple per module, in build order.
    """
    blocks = backbone_blocks(backbone, middle_units)
    if output_stride is not None and output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16, 32 or None, got {output_stride}")
    target = None if output_stride is None else output_stride // 2
    current, rate, schedule = 1, 1, []
    for block in blocks:
        for unit in range(1, block.units + 1):
            scope = f"{block.scope}/unit_{unit}"
            if target is not None and current == target:
                schedule.append((scope, 1, rate))
                rate *= block.stride
            else:
                schedule.append((scope, block.stride, 1))
                current *= block.stride
    return schedule


def layer_prefix(scope: str) -> str:
    """Keras layer-name prefix of a reference scope: ``entry_flow/block1/unit_1`` -> ``entry_flow_block1_unit_1``."""
    return scope.replace("/", "_")


def _batch_norm(x, epsilon: float, name: str):
    return BatchNormalization(momentum=BN_MOMENTUM, epsilon=epsilon, name=name)(x)


def apply_fixed_padding(x, kernel_size: int, rate: int, name: str):
    """Pads like the reference's ``fixed_padding``: total ``k_eff - 1``, the smaller half first."""
    effective = kernel_size + (kernel_size - 1) * (rate - 1)
    begin = (effective - 1) // 2
    end = effective - 1 - begin
    return layers.ZeroPadding2D(((begin, end), (begin, end)), name=name)(x)


def apply_separable_conv(
    x,
    filters: int,
    stride: int = 1,
    rate: int = 1,
    relu_inside: bool = False,
    epsilon: float = BACKBONE_BN_EPSILON,
    weight_decay: float = 0.0,
    depthwise_stddev: float = CONV_STDDEV,
    pointwise_stddev: float = CONV_STDDEV,
    name: str = "separable_conv",
):
    """Split separable convolution: depthwise 3x3 -> BN [-> ReLU] -> pointwise 1x1 -> BN [-> ReLU].

    Args:
        x: tensor (batch, height, width, channels).
        filters: pointwise output channels.
        stride: depthwise stride; > 1 uses explicit fixed padding and a VALID convolution.
        rate: depthwise dilation rate.
        relu_inside: apply ReLU after both batch norms (the caller applies any pre-activation otherwise).
        epsilon: batch-norm epsilon (1e-3 in the backbone, 1e-5 in ASPP and the decoder).
        weight_decay: reference weight decay ``wd``; the pointwise kernel gets ``L2(wd / 2)`` (slim's
            ``l2_regularizer`` halves), the depthwise kernel is not regularised, as in the reference.
        depthwise_stddev: truncated-normal stddev of the depthwise kernel.
        pointwise_stddev: truncated-normal stddev of the pointwise kernel.
        name: scope prefix; layers are ``{name}_depthwise``, ``{name}_depthwise_bn``, ``{name}_pointwise``, ...

    Returns:
        Tensor (batch, ceil(height / stride), ceil(width / stride), filters).
    """
    if filters < 1:
        raise ValueError(f"filters must be >= 1, got {filters}")
    if stride < 1 or rate < 1:
        raise ValueError(f"stride and rate must be >= 1, got stride={stride}, rate={rate}")
    padding = "same"
    if stride > 1:
        x = apply_fixed_padding(x, 3, rate, name=f"{name}_pad")
        padding = "valid"
    x = atrous_depthwise.DepthwiseConv2D(  # keras' layer, its atrous and strided forms XLA-friendly
        3,
        strides=stride,
        dilation_rate=rate,
        padding=padding,
        use_bias=False,
        depthwise_initializer=keras.initializers.TruncatedNormal(stddev=depthwise_stddev),
        name=f"{name}_depthwise",
    )(x)
    x = _batch_norm(x, epsilon, name=f"{name}_depthwise_bn")
    if relu_inside:
        x = layers.ReLU(name=f"{name}_depthwise_relu")(x)
    x = Conv2D(
        filters,
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=pointwise_stddev),
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
        name=f"{name}_pointwise",
    )(x)
    x = _batch_norm(x, epsilon, name=f"{name}_pointwise_bn")
    if relu_inside:
        x = layers.ReLU(name=f"{name}_pointwise_relu")(x)
    return x


def apply_conv_bn(x, filters: int, kernel_size: int, stride: int, relu: bool, weight_decay: float, name: str):
    """Backbone convolution (fixed padding when strided, no bias) + BN (+ ReLU), like slim ``conv2d``."""
    padding = "same"
    if stride > 1 and kernel_size > 1:
        x = apply_fixed_padding(x, kernel_size, 1, name=f"{name}_pad")
        padding = "valid"
    x = Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=CONV_STDDEV),
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
        name=name,
    )(x)
    x = _batch_norm(x, BACKBONE_BN_EPSILON, name=f"{name}_bn")
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def apply_xception_module(
    x,
    block: BlockSpec,
    stride: int,
    rate: int,
    width: float,
    weight_decay: float,
    name: str,
    endpoints: dict | None = None,
):
    """One Xception module: three separable convolutions (the last strided) plus the block's skip.

    Args:
        x: tensor (batch, height, width, channels).
        block: the block's :class:`BlockSpec`.
        stride: stride of this unit (1 once the target output stride is reached).
        rate: atrous rate of this unit's depthwise convolutions (multi-grid is [1, 1, 1]).
        width: channel multiplier (1.0 is the reference).
        weight_decay: reference weight decay ``wd``.
        name: unit prefix, e.g. ``"entry_flow_block1_unit_1"``.
        endpoints: optional dict that receives each separable conv's output under its pointwise BN's name.
    """
    residual = x
    for i, depth in enumerate(block.depths):
        conv_name = f"{name}_separable_conv{i + 1}"
        if not block.relu_inside:
            residual = layers.ReLU(name=f"{conv_name}_preact")(residual)
        residual = apply_separable_conv(
            residual,
            scaled(depth, width),
            stride=stride if i == 2 else 1,
            rate=rate,
            relu_inside=block.relu_inside,
            weight_decay=weight_decay,
            name=conv_name,
        )
        if endpoints is not None:
            endpoints[f"{conv_name}_pointwise_bn"] = residual
    if block.skip == "conv":
        shortcut = apply_conv_bn(
            x, scaled(block.depths[-1], width), 1, stride, False, weight_decay, name=f"{name}_shortcut"
        )
        return layers.Add(name=f"{name}_add")([residual, shortcut])
    if block.skip == "sum":
        return layers.Add(name=f"{name}_add")([residual, x])
    return residual


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * width)))


def apply_xception(
    x,
    backbone: str = "xception65",
    output_stride: int | None = 16,
    width: float = 1.0,
    weight_decay: float = 0.0,
    middle_units: int | None = None,
):
    """Builds the aligned Xception feature extractor on ``x``.

    Args:
        x: image tensor (batch, height, width, 3), already scaled to [-1, 1].
        backbone: ``"xception41"``, ``"xception65"`` or ``"xception71"``.
        output_stride: 8, 16, 32 or None; see :func:`unit_schedule`.
        width: channel multiplier (1.0 is the reference; small values make test-sized networks).
        weight_decay: reference weight decay ``wd`` (``L2(wd / 2)`` on conv and pointwise kernels).
        middle_units: override of the middle flow's repeat count (None keeps the reference's 8 or 16).

    Returns:
        ``(features, tap)``: features (batch, ceil(height / output_stride), ..., 2048 * width) after the last
        ReLU (layer :data:`FEATURES_LAYER`), and the stride-4 decoder tap, the output of layer
        ``DECODER_TAPS[backbone]`` (before its ReLU).
    """
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    schedule = unit_schedule(backbone, output_stride, middle_units)
    x = apply_conv_bn(x, scaled(32, width), 3, 2, True, weight_decay, name="entry_flow_conv1_1")
    x = apply_conv_bn(x, scaled(64, width), 3, 1, True, weight_decay, name="entry_flow_conv1_2")
    units = iter(schedule)
    endpoints: dict = {}
    for block in backbone_blocks(backbone, middle_units):
        for _ in range(block.units):
            scope, stride, rate = next(units)
            x = apply_xception_module(
                x, block, stride, rate, width, weight_decay, name=layer_prefix(scope), endpoints=endpoints
            )
    return x, endpoints[DECODER_TAPS[backbone]]

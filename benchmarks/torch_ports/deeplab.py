"""PyTorch port of keras_zoo's DeepLabv3+ with an aligned Xception backbone (measuring equipment).

This is a layer-for-layer torch.nn copy of ``keras_zoo.models.deeplab.deeplabv3plus`` and
``keras_zoo.models.xception``, used only to compare keras_zoo's training throughput with PyTorch's on the same
machine (``benchmarks/torch_ports/harness.py``); it is not part of the installed package.

What it reproduces, channels first (N, C, H, W):

* every separable convolution split as depthwise 3x3 -> BN [-> ReLU] -> pointwise 1x1 -> BN [-> ReLU], no
  biases; normal Xception modules put a (non in-place) ReLU *before* each separable conv, exit block2 puts
  the ReLUs inside instead;
* strided convolutions use the reference's fixed padding (``keras_zoo.models.xception.apply_fixed_padding``:
  total ``k_eff - 1``, the smaller half first, explicit ``F.pad`` when the halves differ), so 513 maps to 257,
  129, 65, 33 as in Keras; stride-1 convolutions use Keras "same" padding, symmetric ``rate * (k - 1) / 2``
  for the odd 3x3 kernels; the 1x1 stride-2 shortcut's Keras "same" padding is always zero;
* the atrous schedule of ``unit_schedule`` (stride 1 and a growing rate once the output stride is reached);
* batch norms with Keras momentum 0.9997 (torch momentum 1 - 0.9997) and epsilon 1e-3 in the backbone,
  1e-5 in ASPP and the decoder;
* ASPP branches concatenated as image pooling (global mean, 1x1 conv, BN, ReLU, broadcast: Keras'
  nearest ``UpSampling2D`` of a 1x1 map), ``aspp0``, ``aspp1..3``; projection, dropout 0.1;
* decoder: 1x1 projection (48) of the stride-4 tap (the pointwise BN output before the next ReLU), bilinear
  resize of the ASPP output (only when the sizes differ, as Keras), concatenation ``[aspp, projection]``,
  two separable convs, 1x1 logits with bias, bilinear resize to the input size in float32. Keras'
  ``Resizing(interpolation="bilinear")`` uses half-pixel centres without antialiasing, which is torch's
  ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``.

Usage: ``python benchmarks/torch_ports/deeplab.py --batch-size 2 [--input-size 513 513] [--classes 21]
[--output-stride 16] [--backbone xception65] [--width 1.0] [--middle-units N] [--precision bf16]
[--channels-last] [--device cuda] [--compile [--compile-mode MODE]]`` prints one JSON line (the device
and compile options: ``harness.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402
from keras_weights import copy_weights_by_name, tag, tagged_modules  # noqa: E402

KERAS_BN_MOMENTUM = 0.9997
BN_MOMENTUM = 1.0 - KERAS_BN_MOMENTUM  # torch's momentum is Keras' 1 - momentum
BACKBONE_BN_EPSILON = 1e-3
HEAD_BN_EPSILON = 1e-5
DEFAULT_ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block of Xception modules, as ``keras_zoo.models.xception.BlockSpec``."""

    scope: str
    depths: tuple[int, int, int]
    skip: str  # "conv", "sum" or "none"
    stride: int
    units: int = 1
    relu_inside: bool = False


def _entry(depth: int, stride: int, index: int) -> BlockSpec:
    return BlockSpec(f"entry_flow/block{index}", (depth,) * 3, "conv", stride)


def _middle(units: int) -> BlockSpec:
    return BlockSpec("middle_flow/block1", (728,) * 3, "sum", 1, units=units)


_EXIT = (
    BlockSpec("exit_flow/block1", (728, 1024, 1024), "conv", 2),
    BlockSpec("exit_flow/block2", (1536, 1536, 2048), "none", 1, relu_inside=True),
)
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
# Unit whose separable_conv2 pointwise-BN output is the stride-4 decoder tap.
DECODER_TAP_UNITS = {
    "xception41": "entry_flow_block2_unit_1",
    "xception65": "entry_flow_block2_unit_1",
    "xception71": "entry_flow_block3_unit_1",
}


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, at least 1 (as keras_zoo's ``scaled``)."""
    return max(1, int(round(channels * width)))


def backbone_blocks(backbone: str, middle_units: int | None = None) -> tuple[BlockSpec, ...]:
    """The blocks of ``backbone``, with ``middle_units`` middle-flow modules when given."""
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
) -> list[tuple[BlockSpec, str, int, int]]:
    """(block, Keras unit prefix, stride, rate) per Xception module, the reference's atrous logic.

    The root convolution's stride 2 counts first; once the running stride reaches the output stride, later
    units run at stride 1 and the rate multiplies by the stride they skip.
    """
    if output_stride is not None and output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16, 32 or None, got {output_stride}")
    target = None if output_stride is None else output_stride // 2
    current, rate, schedule = 1, 1, []
    for block in backbone_blocks(backbone, middle_units):
        for unit in range(1, block.units + 1):
            prefix = f"{block.scope}/unit_{unit}".replace("/", "_")
            if target is not None and current == target:
                schedule.append((block, prefix, 1, rate))
                rate *= block.stride
            else:
                schedule.append((block, prefix, block.stride, 1))
                current *= block.stride
    return schedule


def _batch_norm(channels: int, epsilon: float, name: str) -> nn.BatchNorm2d:
    return tag(nn.BatchNorm2d(channels, eps=epsilon, momentum=BN_MOMENTUM), name)


def _fixed_padding(kernel_size: int, rate: int) -> tuple[int, int]:
    """(begin, end) of the reference's fixed padding: total ``k_eff - 1``, the smaller half first."""
    effective = kernel_size + (kernel_size - 1) * (rate - 1)
    begin = (effective - 1) // 2
    return begin, effective - 1 - begin


class _PaddedConv(nn.Module):
    """A conv with Keras' padding: fixed padding when strided, "same" at stride 1 (odd kernels only).

    Symmetric padding goes into the convolution; asymmetric padding (never produced by 3x3 kernels, kept for
    exactness) is an explicit ``F.pad`` before a VALID convolution. Maps (N, C, H, W) to
    (N, out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, conv_args: dict, kernel_size: int, stride: int, rate: int, name: str):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("only odd kernels are supported")
        begin, end = _fixed_padding(kernel_size, rate) if stride > 1 else ((kernel_size - 1) * rate // 2,) * 2
        self.pad = None if begin == end else (begin, end, begin, end)
        self.conv = tag(
            nn.Conv2d(
                kernel_size=kernel_size,
                stride=stride,
                dilation=rate,
                padding=begin if self.pad is None else 0,
                bias=False,
                **conv_args,
            ),
            name,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.conv(x)


class SeparableConv(nn.Module):
    """Split separable conv: depthwise 3x3 -> BN [-> ReLU] -> pointwise 1x1 -> BN [-> ReLU] (no biases).

    (N, C, H, W) -> (N, filters, ceil(H / stride), ceil(W / stride)). Keras layers ``{name}_depthwise``,
    ``{name}_depthwise_bn``, ``{name}_pointwise``, ``{name}_pointwise_bn``.
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        stride: int = 1,
        rate: int = 1,
        relu_inside: bool = False,
        epsilon: float = BACKBONE_BN_EPSILON,
        name: str = "separable_conv",
    ):
        super().__init__()
        depthwise_args = {"in_channels": in_channels, "out_channels": in_channels, "groups": in_channels}
        self.depthwise = _PaddedConv(depthwise_args, 3, stride, rate, f"{name}_depthwise")
        self.depthwise_bn = _batch_norm(in_channels, epsilon, f"{name}_depthwise_bn")
        self.pointwise = tag(nn.Conv2d(in_channels, filters, 1, bias=False), f"{name}_pointwise")
        self.pointwise_bn = _batch_norm(filters, epsilon, f"{name}_pointwise_bn")
        self.relu_inside = relu_inside

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise_bn(self.depthwise(x))
        if self.relu_inside:
            x = F.relu(x, inplace=True)
        x = self.pointwise_bn(self.pointwise(x))
        if self.relu_inside:
            x = F.relu(x, inplace=True)
        return x


class ConvBN(nn.Module):
    """Backbone conv (fixed padding when strided, no bias) + BN (eps 1e-3) [+ ReLU]: ``apply_conv_bn``."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int, stride: int, relu: bool, name: str):
        super().__init__()
        self.conv = _PaddedConv(
            {"in_channels": in_channels, "out_channels": filters}, kernel_size, stride, 1, name
        )
        self.bn = _batch_norm(filters, BACKBONE_BN_EPSILON, f"{name}_bn")
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


class XceptionModule(nn.Module):
    """Three separable convs (the third strided) plus the block's skip; returns (output, their outputs)."""

    def __init__(self, in_channels: int, block: BlockSpec, stride: int, rate: int, width: float, name: str):
        super().__init__()
        self.relu_inside = block.relu_inside
        self.skip = block.skip
        convs, channels = [], in_channels
        for i, depth in enumerate(block.depths):
            filters = scaled(depth, width)
            convs.append(
                SeparableConv(
                    channels,
                    filters,
                    stride=stride if i == 2 else 1,
                    rate=rate,
                    relu_inside=block.relu_inside,
                    name=f"{name}_separable_conv{i + 1}",
                )
            )
            channels = filters
        self.convs = nn.ModuleList(convs)
        self.out_channels = channels
        self.shortcut = None
        if block.skip == "conv":
            self.shortcut = ConvBN(in_channels, channels, 1, stride, False, f"{name}_shortcut")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        residual, outputs = x, []
        for conv in self.convs:
            if not self.relu_inside:
                residual = F.relu(residual)  # not in place: x feeds the skip, the outputs may be the tap
            residual = conv(residual)
            outputs.append(residual)
        if self.skip == "conv":
            residual = residual + self.shortcut(x)
        elif self.skip == "sum":
            residual = residual + x
        return residual, outputs


class Xception(nn.Module):
    """Aligned Xception: (N, 3, H, W) -> (features (N, 2048w, H / OS, W / OS), stride-4 tap before ReLU)."""

    def __init__(
        self,
        backbone: str = "xception65",
        output_stride: int | None = 16,
        width: float = 1.0,
        middle_units: int | None = None,
    ):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.conv1_1 = ConvBN(3, scaled(32, width), 3, 2, True, "entry_flow_conv1_1")
        self.conv1_2 = ConvBN(scaled(32, width), scaled(64, width), 3, 1, True, "entry_flow_conv1_2")
        channels, units = scaled(64, width), []
        self.tap_index = None
        for block, prefix, stride, rate in unit_schedule(backbone, output_stride, middle_units):
            if prefix == DECODER_TAP_UNITS[backbone]:
                self.tap_index = len(units)
                self.tap_channels = scaled(block.depths[1], width)
            units.append(XceptionModule(channels, block, stride, rate, width, prefix))
            channels = units[-1].out_channels
        self.units = nn.ModuleList(units)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1_2(self.conv1_1(x))
        tap = None
        for i, unit in enumerate(self.units):
            x, outputs = unit(x)
            if i == self.tap_index:
                tap = outputs[1]
        return x, tap


class ConvBNReLU(nn.Module):
    """Head 1x1 conv (no bias) + BN (eps 1e-5) + ReLU, Keras ``_conv_bn_relu``."""

    def __init__(self, in_channels: int, filters: int, name: str):
        super().__init__()
        self.conv = tag(nn.Conv2d(in_channels, filters, 1, bias=False), name)
        self.bn = _batch_norm(filters, HEAD_BN_EPSILON, f"{name}_bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ASPP(nn.Module):
    """Image pooling, ``aspp0``, one separable conv per rate; concat, 1x1 projection, dropout.

    (N, C, h, w) -> (N, filters, h, w).
    """

    def __init__(self, in_channels: int, atrous_rates: Sequence[int], filters: int, dropout: float):
        super().__init__()
        if any(rate < 1 for rate in atrous_rates):
            raise ValueError(f"atrous_rates must all be >= 1, got {tuple(atrous_rates)}")
        self.image_pooling = ConvBNReLU(in_channels, filters, "image_pooling")
        self.aspp0 = ConvBNReLU(in_channels, filters, "aspp0")
        self.separable = nn.ModuleList(
            SeparableConv(
                in_channels, filters, rate=rate, relu_inside=True, epsilon=HEAD_BN_EPSILON, name=f"aspp{i}"
            )
            for i, rate in enumerate(atrous_rates, start=1)
        )
        self.projection = ConvBNReLU(filters * (2 + len(atrous_rates)), filters, "concat_projection")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pooling(x.mean(dim=(2, 3), keepdim=True))
        branches = [pooled.expand(-1, -1, x.shape[2], x.shape[3]), self.aspp0(x)]
        branches += [conv(x) for conv in self.separable]
        return self.dropout(self.projection(torch.cat(branches, dim=1)))


class Decoder(nn.Module):
    """Project the stride-4 tap, resize the ASPP output to it, concat [aspp, tap], two separable convs.

    (N, C, h, w), tap (N, T, H4, W4) -> (N, filters, H4, W4).
    """

    def __init__(self, in_channels: int, tap_channels: int, filters: int, projection_filters: int):
        super().__init__()
        self.projection = ConvBNReLU(tap_channels, projection_filters, "decoder_feature_projection0")
        self.conv0 = SeparableConv(
            in_channels + projection_filters,
            filters,
            relu_inside=True,
            epsilon=HEAD_BN_EPSILON,
            name="decoder_conv0",
        )
        self.conv1 = SeparableConv(
            filters, filters, relu_inside=True, epsilon=HEAD_BN_EPSILON, name="decoder_conv1"
        )

    def forward(self, x: torch.Tensor, tap: torch.Tensor) -> torch.Tensor:
        projection = self.projection(tap)
        if x.shape[2:] != tap.shape[2:]:
            x = F.interpolate(x, size=tap.shape[2:], mode="bilinear", align_corners=False, antialias=False)
        x = torch.cat([x, projection], dim=1)
        return self.conv1(self.conv0(x))


class DeepLabV3Plus(nn.Module):
    """DeepLabv3+: (N, 3, H, W) in [-1, 1] -> (N, classes, H, W) float32 logits (or softmax probabilities)."""

    def __init__(
        self,
        classes: int = 21,
        output_stride: int = 16,
        backbone: str = "xception65",
        atrous_rates: Sequence[int] | None = None,
        width: float = 1.0,
        middle_units: int | None = None,
        dropout: float = 0.1,
        classifier_activation: str | None = None,
    ):
        super().__init__()
        if classes < 1:
            raise ValueError(f"classes must be >= 1, got {classes}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if classifier_activation not in (None, "softmax"):
            raise ValueError(
                f"classifier_activation must be None or 'softmax', got {classifier_activation!r}"
            )
        rates = tuple(DEFAULT_ATROUS_RATES[output_stride] if atrous_rates is None else atrous_rates)
        self.backbone = Xception(backbone, output_stride, width, middle_units)
        head = scaled(256, width)
        self.aspp = ASPP(self.backbone.out_channels, rates, head, dropout)
        self.decoder = Decoder(head, self.backbone.tap_channels, head, scaled(48, width))
        self.logits = tag(nn.Conv2d(head, classes, 1, bias=True), "logits_semantic")
        self.classifier_activation = classifier_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        features, tap = self.backbone(x)
        x = self.decoder(self.aspp(features), tap)
        x = self.logits(x).float()  # Keras: float32 logits and resize under mixed precision
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
        if self.classifier_activation == "softmax":
            x = torch.softmax(x, dim=1)
        return x


def build(
    input_shape: Sequence[int] = (513, 513, 3),
    classes: int = 21,
    output_stride: int = 16,
    backbone: str = "xception65",
    atrous_rates: Sequence[int] | None = None,
    width: float = 1.0,
    middle_units: int | None = None,
    dropout: float = 0.1,
    classifier_activation: str | None = None,
) -> DeepLabV3Plus:
    """The port with the Keras factory's architecture arguments (defaults: the reference VOC model).

    ``input_shape`` is (height, width, 3) as in Keras; the port itself takes any size (the logits resize
    follows the input), the argument is validated and kept as ``model.input_shape`` (channels last).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 1:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    model = DeepLabV3Plus(
        classes, output_stride, backbone, atrous_rates, width, middle_units, dropout, classifier_activation
    )
    model.input_shape = input_shape
    return model


def copy_keras_weights(keras_model, torch_model: nn.Module) -> None:
    """Copies every Keras weight into the port by layer name (kernels to OIHW, BN statistics too).

    Conv2D kernels (kh, kw, in, out) become (out, in, kh, kw); DepthwiseConv2D kernels (kh, kw, C, 1) become
    (C, 1, kh, kw) (``keras_weights``). Raises ValueError on a shape or epsilon mismatch or when a Keras
    layer with weights has no counterpart (or the other way round).
    """
    copy_weights_by_name(keras_model, tagged_modules(torch_model), port="deeplab port", check_constants=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_timing_arguments(parser)
    parser.add_argument("--input-size", type=int, nargs=2, default=(513, 513), metavar=("H", "W"))
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--output-stride", type=int, default=16, choices=(8, 16, 32))
    parser.add_argument("--backbone", default="xception65", choices=sorted(BACKBONES))
    parser.add_argument("--atrous-rates", type=int, nargs="+", default=None)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument("--middle-units", type=int, default=None, help="middle-flow repeats")
    args = harness.parse_args(parser, argv)
    height, width = args.input_size
    model = build(
        input_shape=(height, width, 3),
        classes=args.classes,
        output_stride=args.output_stride,
        backbone=args.backbone,
        atrous_rates=args.atrous_rates,
        width=args.width,
        middle_units=args.middle_units,
    )
    harness.print_record(harness.time_training(model, [(3, height, width)], args, "deeplabv3plus"))


if __name__ == "__main__":
    main()

"""PyTorch port of keras_zoo's AmoebaNet-D (``keras_zoo/models/amoebanet.py``), used as measuring equipment.

This is a layer-for-layer torch.nn copy of the Keras network, kept only to compare keras_zoo's training
throughput with PyTorch's on the same machine; it is not part of the installed package. Layers carry the
Keras layer names (``keras_name``) so :func:`copy_keras_weights` can copy a Keras model's weights into
the port and the tests can check that both compute the same function.

Layout (channels first, NCHW), as the Keras build:

- stem: 3x3 stride-2 VALID convolution + batch norm, then two stem cells (reduction-cell spec, stride 2,
  F/4 and F/2 filters); the first stem cell's state 1 is the raw stem output.
- ``num_cells`` normal cells, a reduction cell (filters x2) before cells ``int(num_cells / 3)`` and
  ``int(2 * num_cells / 3)``; optional auxiliary head after the cell before the second reduction.
- ReLU, global average pooling, dropout, dense.

Keras ``padding="same"`` is TensorFlow's: the total padding ``max((ceil(n / s) - 1) * s + k - n, 0)`` is
split with the extra cell at the bottom/right. Where that split is asymmetric (stride 2 on even sizes) the
port pads explicitly; 'same' max pooling pads with -inf and 'same' average pooling divides by the number of
real (unpadded) cells, as Keras does (``count_include_pad=False``).

Command line (one JSON line, see ``harness.py``)::

    python benchmarks/torch_ports/amoebanet.py --batch-size 8 [--input-shape 224 224 3] [--classes 1001]
        [--num-cells 6] [--filters 256] [--stem-filters 32] [--aux-head] [--precision bf16] [--channels-last]
        [--device cuda] [--compile [--compile-mode MODE]]   (the device options: harness.py)
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402
from keras_weights import (  # noqa: E402
    assign_,
    copy_layer_weights,
    copy_weights_by_name,
    tag,
    tagged_modules,
    variance_scaling_,
)

# Cell specs, as keras_zoo.models.amoebanet_cells (operation / state index per combination, left then right).
NORMAL_CELL = {
    "operations": [
        "1x1", "max_pool_3x3", "none", "1x7_7x1", "1x1",
        "1x7_7x1", "max_pool_3x3", "none", "avg_pool_3x3", "1x1",
    ],
    "hiddenstate_indices": [1, 1, 1, 0, 0, 0, 2, 2, 1, 5],
    "used_hiddenstates": [0, 1, 1, 0, 0, 1, 0],
}  # fmt: skip
REDUCTION_CELL = {
    "operations": [
        "max_pool_2x2", "max_pool_3x3", "none", "3x3", "1x7_7x1",
        "max_pool_3x3", "none", "max_pool_2x2", "avg_pool_3x3", "1x1",
    ],
    "hiddenstate_indices": [0, 0, 2, 1, 2, 2, 3, 1, 2, 3],
    "used_hiddenstates": [1, 1, 1, 1, 0, 0, 0],
}  # fmt: skip
NUM_STEM_CELLS = 2
NUM_REDUCTION_LAYERS = 2
AUX_SCALING = 0.4
BN_MOMENTUM = 0.1  # torch convention: 1 - Keras momentum (decay 0.9)
BN_EPSILON = 1e-5


# ----------------------------------------------------------------------------------------------------------
# 'same' padding and the basic layers
# ----------------------------------------------------------------------------------------------------------


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) of one axis of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of one axis for Keras 'same' / 'valid' padding."""
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def _same_pads(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) 'same' padding for the spatial axes of ``x`` (N, C, H, W)."""
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1])
    return top, bottom, left, right


class Conv2d(nn.Conv2d):
    """Bias-free Keras ``Conv2D`` with 'same' (TensorFlow split) or 'valid' padding; (N, C, H, W) input.

    Symmetric 'same' padding is passed to the convolution, asymmetric padding is applied with ``F.pad``.
    The initializer is the Keras one: truncated normal, variance scaling 2 / fan_out.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel, name: str, stride=1, padding: str = "same"
    ):
        super().__init__(
            in_channels, out_channels, _pair(kernel), stride=_pair(stride), padding=0, bias=False
        )
        tag(self, name)
        self.same = padding == "same"
        variance_scaling_(self.weight, 2.0, "fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = 0
        if self.same:
            top, bottom, left, right = _same_pads(x, self.kernel_size, self.stride)
            if top == bottom and left == right:
                padding = (top, left)
            else:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, padding)


class BatchNorm2d(nn.BatchNorm2d):
    """Keras ``BatchNormalization(momentum=0.9, epsilon=1e-5)`` over channels of (N, C, H, W)."""

    def __init__(self, channels: int, name: str):
        super().__init__(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)
        tag(self, name)


class Linear(nn.Linear):
    """Keras ``Dense`` with bias; kernel initializer truncated normal, variance scaling 2 / fan_out."""

    def __init__(self, in_features: int, out_features: int, name: str):
        super().__init__(in_features, out_features)
        tag(self, name)
        variance_scaling_(self.weight, 2.0, "fan_out")
        nn.init.zeros_(self.bias)


class SamePool2d(nn.Module):
    """Keras ``MaxPooling2D`` / ``AveragePooling2D`` with ``padding="same"`` on (N, C, H, W).

    Max pooling pads with -inf; average pooling averages over the real cells of each window only.
    """

    def __init__(self, kind: str, size: int, stride: int):
        super().__init__()
        self.kind, self.kernel, self.stride = kind, (size, size), (stride, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = _same_pads(x, self.kernel, self.stride)
        symmetric = top == bottom and left == right
        if self.kind == "max":
            if symmetric:
                return F.max_pool2d(x, self.kernel, self.stride, padding=(top, left))
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride)
        if symmetric:
            return F.avg_pool2d(x, self.kernel, self.stride, padding=(top, left), count_include_pad=False)
        pads = (left, right, top, bottom)
        total = F.avg_pool2d(F.pad(x, pads), self.kernel, self.stride, divisor_override=1)
        ones = x.new_ones((1, 1, x.shape[-2], x.shape[-1]))
        count = F.avg_pool2d(F.pad(ones, pads), self.kernel, self.stride, divisor_override=1)
        return total / count


class DropPath(nn.Module):
    """Per-sample drop-path as ``keras_zoo.layers.drop_path.DropPath``; identity in eval mode.

    In training each sample is kept with probability ``keep = 1 - progress * (1 - keep_prob)`` and divided
    by ``keep``: ``x / keep * floor(keep + U[0, 1))``. ``progress`` is a scalar in [0, 1] (0 at creation,
    set by a schedule), held as a non-trainable ``Parameter`` so that it is counted like the Keras
    non-trainable variable of the same name.
    """

    def __init__(self, keep_prob: float, name: str):
        super().__init__()
        self.keep_prob = float(keep_prob)
        tag(self, name)
        self.progress = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep_prob >= 1.0:
            return x
        keep = (1.0 - self.progress.clamp(0.0, 1.0) * (1.0 - self.keep_prob)).to(x.dtype)
        uniform = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x / keep * torch.floor(keep + uniform)


# ----------------------------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------------------------


class FactorizedReduction(nn.Module):
    """ReLU'd input (N, C, H, W) -> (N, filters, ceil(H / 2), ceil(W / 2)): two shifted stride-2 1x1 paths.

    Path 1 takes pixels (0, 0), (0, 2), ...; path 2 the input shifted one up-left with a zero row/column
    appended (Keras ZeroPadding2D + Cropping2D), then every second pixel. Concatenated, then batch norm.
    """

    def __init__(self, in_channels: int, filters: int, name: str):
        super().__init__()
        if filters % 2:
            raise ValueError(f"factorized reduction needs an even number of filters, got {filters}")
        self.path1_conv = Conv2d(in_channels, filters // 2, 1, name=f"{name}_path1_conv")
        self.path2_conv = Conv2d(in_channels, filters // 2, 1, name=f"{name}_path2_conv")
        self.bn = BatchNorm2d(filters, name=f"{name}_final_path_bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path1 = self.path1_conv(x[:, :, ::2, ::2])
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        path2 = self.path2_conv(shifted[:, :, ::2, ::2])
        return self.bn(torch.cat([path1, path2], dim=1))


def make_operation(
    operation: str, in_channels: int, filters: int, strides: int, drop_path_keep_prob: float, name: str
) -> nn.Module:
    """One AmoebaNet operation as an ``nn.Sequential`` (identity when empty); see ``apply_operation``.

    (N, in_channels, H, W) -> (N, filters, H / strides, W / strides).
    """
    layers: list[nn.Module] = []
    if operation in ("none", "1x1"):
        if strides > 1 or operation == "1x1" or in_channels != filters:
            layers += [
                nn.ReLU(),
                Conv2d(in_channels, filters, 1, stride=strides, name=f"{name}_1x1"),
                BatchNorm2d(filters, name=f"{name}_bn_1"),
            ]
    elif "pool" in operation:
        pool_type, _, shape = operation.split("_")
        layers.append(SamePool2d(pool_type, int(shape.split("x")[0]), strides))
        if in_channels != filters:
            layers += [
                Conv2d(in_channels, filters, 1, name=f"{name}_1x1"),
                BatchNorm2d(filters, name=f"{name}_bn_1"),
            ]
    elif operation in ("3x3", "1x7_7x1"):
        bottleneck = filters // 4
        inner = bottleneck if bottleneck >= 1 else filters
        layers.append(nn.ReLU())
        channels = in_channels
        if bottleneck >= 1:
            layers += [
                Conv2d(channels, bottleneck, 1, name=f"{name}_pre_1x1"),
                BatchNorm2d(bottleneck, name=f"{name}_pre_bn"),
                nn.ReLU(),
            ]
            channels = bottleneck
        if operation == "3x3":
            layers.append(Conv2d(channels, inner, 3, stride=strides, name=f"{name}_3x3"))
        else:
            layers += [
                Conv2d(channels, inner, (1, 7), stride=(1, strides), name=f"{name}_1x7"),
                BatchNorm2d(inner, name=f"{name}_bn_1x7_7x1"),
                nn.ReLU(),
                Conv2d(inner, inner, (7, 1), stride=(strides, 1), name=f"{name}_7x1"),
            ]
        layers.append(BatchNorm2d(inner, name=f"{name}_bn"))
        if bottleneck >= 1:
            layers += [
                nn.ReLU(),
                Conv2d(inner, filters, 1, name=f"{name}_post_1x1"),
                BatchNorm2d(filters, name=f"{name}_post_bn"),
            ]
    else:
        raise ValueError(f"unknown AmoebaNet operation {operation!r}")
    if operation != "none" and drop_path_keep_prob < 1.0:
        layers.append(DropPath(drop_path_keep_prob, name=f"{name}_drop_path"))
    return nn.Sequential(*layers)


class Cell(nn.Module):
    """One AmoebaNet cell: (x (N, C, H, W), prev (N, C', H', W') or None) -> (N, n * F, H / s, W / s).

    State 0 is ReLU-1x1-BN of ``x``; state 1 is ``prev`` made to match (factorized reduction when its
    spatial size differs, ReLU-1x1-BN when only its channels differ, ``x`` itself when there is none). Five
    combinations add two operations each; the unused states are concatenated in index order.

    Args:
        spec: ``NORMAL_CELL`` or ``REDUCTION_CELL``.
        in_shape: (channels, height, width) of ``x``.
        prev_shape: (channels, height, width) of ``prev``, or None.
        filters: F.
        strides: 2 for reduction and stem cells, else 1.
        drop_path_keep_prob: target drop-path keep probability (1: no drop-path).
        name: Keras scope, e.g. ``"cell_0"``.
    """

    def __init__(
        self,
        spec: dict,
        in_shape: tuple[int, int, int],
        prev_shape: tuple[int, int, int] | None,
        filters: int,
        strides: int,
        drop_path_keep_prob: float,
        name: str,
    ):
        super().__init__()
        self.has_prev = prev_shape is not None
        self.prev_reduce: nn.Module = nn.Identity()
        prev_channels = in_shape[0]
        if prev_shape is not None:
            prev_channels = prev_shape[0]
            if prev_shape[1:] != in_shape[1:]:
                self.prev_reduce = nn.Sequential(
                    nn.ReLU(), FactorizedReduction(prev_shape[0], filters, name=name)
                )
                prev_channels = filters
            elif prev_shape[0] != filters:
                self.prev_reduce = nn.Sequential(
                    nn.ReLU(),
                    Conv2d(prev_shape[0], filters, 1, name=f"{name}_prev_1x1"),
                    BatchNorm2d(filters, name=f"{name}_prev_bn"),
                )
                prev_channels = filters
        self.begin = nn.Sequential(
            nn.ReLU(),
            Conv2d(in_shape[0], filters, 1, name=f"{name}_1x1"),
            BatchNorm2d(filters, name=f"{name}_beginning_bn"),
        )
        channels = [filters, prev_channels]
        operations, indices = spec["operations"], spec["hiddenstate_indices"]
        self.indices = list(indices)
        self.ops = nn.ModuleList()
        for comb in range(5):
            for side, i in (("left", 2 * comb), ("right", 2 * comb + 1)):
                state = indices[i]
                op_strides = strides if state < 2 else 1
                self.ops.append(
                    make_operation(
                        operations[i],
                        channels[state],
                        filters,
                        op_strides,
                        drop_path_keep_prob,
                        name=f"{name}_comb_iter_{comb}_{side}",
                    )
                )
            channels.append(filters)
        self.outputs = [i for i, used in enumerate(spec["used_hiddenstates"]) if not used]
        self.out_channels = sum(channels[i] for i in self.outputs)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        prev = self.prev_reduce(prev) if self.has_prev else x
        states = [self.begin(x), prev]
        for comb in range(5):
            left, right = self.ops[2 * comb], self.ops[2 * comb + 1]
            states.append(left(states[self.indices[2 * comb]]) + right(states[self.indices[2 * comb + 1]]))
        return torch.cat([states[i] for i in self.outputs], dim=1)


class AuxHead(nn.Module):
    """(N, C, H, W) with H, W >= 5 -> logits (N, classes): ReLU, 5x5/3 VALID avg pool, 1x1 conv 51, BN,
    ReLU, conv over the whole remaining map to 307, BN, ReLU, flatten, dense."""

    def __init__(self, in_shape: tuple[int, int, int], classes: int, name: str):
        super().__init__()
        height, width = (output_size(s, 5, 3, "valid") for s in in_shape[1:])
        mid, out = int(128 * AUX_SCALING), int(768 * AUX_SCALING)
        self.layers = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3),
            Conv2d(in_shape[0], mid, 1, name=f"{name}_proj"),
            BatchNorm2d(mid, name=f"{name}_aux_bn0"),
            nn.ReLU(),
            Conv2d(mid, out, (height, width), padding="valid", name=f"{name}_conv"),
            BatchNorm2d(out, name=f"{name}_aux_bn1"),
            nn.ReLU(),
            nn.Flatten(),
            Linear(out, classes, name=f"{name}_fc"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ----------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------


def reduction_indices(num_cells: int) -> list[int]:
    """Normal-cell indices preceded by a reduction cell: ``int(i / 3 * num_cells)`` for i = 1, 2."""
    return [int(i / (NUM_REDUCTION_LAYERS + 1) * num_cells) for i in range(1, NUM_REDUCTION_LAYERS + 1)]


class AmoebaNet(nn.Module):
    """AmoebaNet-D: images (N, C, H, W) -> float32 logits (N, classes), or (logits, aux_logits) with the
    auxiliary head. Arguments as :func:`build`."""

    def __init__(
        self,
        input_shape: Sequence[int] = (224, 224, 3),
        classes: int = 1001,
        num_cells: int = 6,
        filters: int = 256,
        stem_filters: int = 32,
        aux_head: bool = False,
        drop_path_keep_prob: float = 1.0,
        dropout_keep_prob: float = 0.5,
    ):
        super().__init__()
        height, width, channels = (int(s) for s in input_shape)
        if min(height, width) < 32 or num_cells < 3 or filters < 8 or filters % 8 or classes < 1:
            raise ValueError("amoebanet: see keras_zoo.models.amoebanet for the valid arguments")
        reductions = reduction_indices(num_cells)
        aux_cell = reductions[1] - 1

        self.stem_conv = Conv2d(channels, stem_filters, 3, stride=2, padding="valid", name="stem_conv0")
        self.stem_bn = BatchNorm2d(stem_filters, name="stem_conv0_bn")
        shape = (stem_filters, output_size(height, 3, 2, "valid"), output_size(width, 3, 2, "valid"))
        shapes: list[tuple[int, int, int] | None] = [None, shape]
        self.cells = nn.ModuleList()
        self.aux_position: int | None = None
        self.aux_head: AuxHead | None = None

        def add_cell(spec: dict, cell_filters: int, strides: int, name: str) -> None:
            current = shapes[-1]
            cell = Cell(spec, current, shapes[-2], cell_filters, strides, drop_path_keep_prob, name=name)
            self.cells.append(cell)
            size = [output_size(s, 1, strides, "same") for s in current[1:]]
            shapes.append((cell.out_channels, *size))

        for stem_cell in range(NUM_STEM_CELLS):
            scale = 2 ** (stem_cell - NUM_STEM_CELLS)
            add_cell(REDUCTION_CELL, int(filters * scale), 2, name=f"cell_stem_{stem_cell}")
        scale = 1
        for cell in range(num_cells):
            if cell in reductions:
                scale *= 2
                add_cell(REDUCTION_CELL, filters * scale, 2, name=f"reduction_cell_{reductions.index(cell)}")
            add_cell(NORMAL_CELL, filters * scale, 1, name=f"cell_{cell}")
            if aux_head and cell == aux_cell:
                if min(shapes[-1][1:]) < 5:
                    raise ValueError(f"amoebanet: the auxiliary head needs a 5x5 map, got {shapes[-1][1:]}")
                self.aux_position = len(self.cells) - 1
                self.aux_head = AuxHead(shapes[-1], classes, name=f"aux_{cell}")

        self.final_relu = nn.ReLU()
        self.dropout = nn.Dropout(1.0 - dropout_keep_prob) if dropout_keep_prob < 1.0 else nn.Identity()
        self.fc = Linear(shapes[-1][0], classes, name="final_layer_fc")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.stem_bn(self.stem_conv(x))
        outputs: list[torch.Tensor | None] = [None, x]
        aux_logits = None
        for position, cell in enumerate(self.cells):
            x = cell(x, outputs[-2])
            outputs.append(x)
            if position == self.aux_position:
                aux_logits = self.aux_head(x).float()
        x = self.final_relu(x).mean(dim=(2, 3))
        logits = self.fc(self.dropout(x)).float()
        return logits if aux_logits is None else (logits, aux_logits)


def build(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 1001,
    num_cells: int = 6,
    filters: int = 256,
    stem_filters: int = 32,
    aux_head: bool = False,
    drop_path_keep_prob: float = 1.0,
    dropout_keep_prob: float = 0.5,
) -> AmoebaNet:
    """Builds the port with the Keras factory's architecture arguments (defaults: the "default" preset).

    Args:
        input_shape: (height, width, channels) as in Keras; the port takes (N, channels, height, width).
        classes: output classes (1001 in the reference, background class included).
        num_cells: normal cells in total.
        filters: reduction size F of the first normal stage (multiple of 8).
        stem_filters: filters of the stem convolution.
        aux_head: add the auxiliary classifier; the model then returns ``(logits, aux_logits)``.
        drop_path_keep_prob: target drop-path keep probability; 1 builds no drop-path layers.
        dropout_keep_prob: keep probability of the dropout before the final dense layer.
    """
    return AmoebaNet(
        input_shape,
        classes,
        num_cells,
        filters,
        stem_filters,
        aux_head,
        drop_path_keep_prob,
        dropout_keep_prob,
    )


def copy_keras_weights(keras_model, torch_model: nn.Module) -> None:
    """Copies the weights of the Keras ``amoebanet`` model built with the same arguments into the port.

    Conv kernels (kh, kw, in, out) become (out, in, kh, kw), dense kernels (in, out) become (out, in); batch
    norm copies gamma, beta and the moving statistics (``keras_weights``); drop-path copies ``progress``.
    Every Keras weight must be used exactly once.

    Raises:
        ValueError: when a Keras layer with weights has no counterpart in the port (or the other way
            round), or the number or shapes of the weights differ.
    """

    def copy(layer, module: nn.Module, port: str, check_constants: bool) -> None:
        if isinstance(module, DropPath):
            values = [np.asarray(v, dtype=np.float32) for v in layer.get_weights()]
            assign_(layer.name, [module.progress], [v.reshape(()) for v in values[:1]] + values[1:], port)
        else:
            copy_layer_weights(layer, module, port, check_constants)

    copy_weights_by_name(keras_model, tagged_modules(torch_model), port="amoebanet port", copy=copy)


def main(argv: Sequence[str] | None = None) -> None:
    parser = harness.add_timing_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--input-shape", type=int, nargs=3, default=(224, 224, 3), metavar=("H", "W", "C"))
    parser.add_argument("--classes", type=int, default=1001)
    parser.add_argument("--num-cells", type=int, default=6)
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--stem-filters", type=int, default=32)
    parser.add_argument(
        "--aux-head",
        action="store_true",
        help="with the auxiliary head; the loss is then the mean squared error over both outputs together",
    )
    parser.add_argument("--drop-path-keep-prob", type=float, default=1.0)
    parser.add_argument("--dropout-keep-prob", type=float, default=0.5)
    args = harness.parse_args(parser, argv)
    height, width, channels = args.input_shape
    model = build(
        input_shape=(height, width, channels),
        classes=args.classes,
        num_cells=args.num_cells,
        filters=args.filters,
        stem_filters=args.stem_filters,
        aux_head=args.aux_head,
        drop_path_keep_prob=args.drop_path_keep_prob,
        dropout_keep_prob=args.dropout_keep_prob,
    )
    forward = None
    if args.aux_head:
        # The harness takes one output: logits and aux logits side by side, so its mean squared error is
        # the mean of the two outputs' errors (Keras "mse" sums them: the same work, half the loss scale).
        def forward(m: nn.Module, xs: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat(m(*xs), dim=1)

    record = harness.time_training(model, [(channels, height, width)], args, "amoebanet", forward=forward)
    harness.print_record(record)


if __name__ == "__main__":
    main()

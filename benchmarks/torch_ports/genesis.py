"""PyTorch port of keras_zoo's Models Genesis 3D U-Net (``keras_zoo/models/genesis.py``): measuring equipment.

The port exists to compare training throughput with the reference implementations' framework on the same
machine; it is not part of the installed package. It builds the Keras network layer for layer, channels
first (N, C, rows, cols, depth), keeping the Keras block numbering (``blocks[i]`` is ``depth_{i}_*``):

- level ``l`` of the encoder (``l = 0 .. depth-1``): conv-BN-ReLU to ``f * 2**l`` channels, then to
  ``f * 2**l * 2``; every level but the last keeps its output as a skip and max-pools by 2;
- decoder level ``l`` (``depth-2 .. 0``): nearest 2x upsampling (no learned up-convolution), concatenation
  with the upsampled tensor *first* and the skip second, two conv-BN-ReLU blocks with the skip's channels;
- head: 1x1x1 convolution to ``classes``, sigmoid (1 class) or softmax over the channel axis.

Each convolution is 3x3x3 'same' with a bias (also before batch norm, as in the reference) and Keras'
glorot_uniform kernel. Batch norm uses epsilon 1e-3 and torch momentum ``1 - bn_momentum``.

Command line (one JSON line from ``harness.time_training``)::

    python benchmarks/torch_ports/genesis.py --batch-size 2 [--filters 32] [--depth 4]
        [--input-shape 64 64 32 1] [--no-batch-norm] [--precision bf16] [--channels-last]
        [--device cuda] [--compile [--compile-mode MODE]]   (the device options: harness.py)
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402
from keras_weights import copy_weights_by_name, init_keras_  # noqa: E402

BN_EPSILON = 1e-3  # the reference's Keras-2 BatchNormalization epsilon (torch's default is 1e-5)

# Architecture presets, as Keras keyword arguments: the registry's "default" (the reference) and "tiny".
PRESETS: dict[str, dict] = {
    "default": {},
    "tiny": {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3},
}


class ConvBNReLU(nn.Module):
    """Conv3d 3x3x3 'same' (bias) -> BatchNorm3d (optional) -> ReLU.

    Shapes: (N, Cin, rows, cols, depth) -> (N, Cout, rows, cols, depth).
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool, bn_momentum: float):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        init_keras_(self.conv, "glorot_uniform")
        self.bn = nn.BatchNorm3d(out_channels, BN_EPSILON, 1.0 - bn_momentum) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return torch.relu(x)


class Genesis(nn.Module):
    """The keras_zoo Models Genesis U-Net: (N, C, rows, cols, depth) -> (N, classes, rows, cols, depth)."""

    def __init__(
        self,
        in_channels: int = 1,
        classes: int = 1,
        filters: int = 32,
        depth: int = 4,
        batch_norm: bool = True,
        bn_momentum: float = 0.99,
    ):
        super().__init__()
        self.depth = depth
        self.classes = classes
        blocks = []
        channels = in_channels
        skip_channels = []
        for level in range(depth):
            width = filters * 2**level
            blocks.append(ConvBNReLU(channels, width, batch_norm, bn_momentum))
            blocks.append(ConvBNReLU(width, 2 * width, batch_norm, bn_momentum))
            channels = 2 * width
            if level < depth - 1:
                skip_channels.append(channels)
        for level in reversed(range(depth - 1)):
            skip = skip_channels[level]
            blocks.append(ConvBNReLU(channels + skip, skip, batch_norm, bn_momentum))
            blocks.append(ConvBNReLU(skip, skip, batch_norm, bn_momentum))
            channels = skip
        self.blocks = nn.ModuleList(blocks)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.head_conv = nn.Conv3d(channels, classes, 1)
        init_keras_(self.head_conv, "glorot_uniform")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, rows, cols, depth) -> (N, classes, rows, cols, depth), before the head activation."""
        skips = []
        index = 0
        for level in range(self.depth):
            x = self.blocks[index + 1](self.blocks[index](x))
            index += 2
            if level < self.depth - 1:
                skips.append(x)
                x = nn.functional.max_pool3d(x, 2)
        for level in reversed(range(self.depth - 1)):
            x = torch.cat([self.upsample(x), skips[level]], dim=1)  # upsampled first, as in Keras
            x = self.blocks[index + 1](self.blocks[index](x))
            index += 2
        return self.head_conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        return torch.sigmoid(logits) if self.classes == 1 else torch.softmax(logits, dim=1)

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> the module holding its weights (Conv3d or BatchNorm3d)."""
        mapping: dict[str, nn.Module] = {"head_conv": self.head_conv}
        for index, block in enumerate(self.blocks):
            mapping[f"depth_{index}_conv"] = block.conv
            if block.bn is not None:
                mapping[f"depth_{index}_bn"] = block.bn
        return mapping


def build(
    input_shape: Sequence[int | None] = (64, 64, 32, 1),
    classes: int = 1,
    filters: int = 32,
    depth: int = 4,
    batch_norm: bool = True,
    bn_momentum: float = 0.99,
) -> Genesis:
    """Builds the port with the Keras factory's arguments (defaults: the reference, 16,324,929 parameters).

    Args:
        input_shape: Keras order (rows, cols, depth, channels); only channels shape the weights, known
            spatial sizes must divide by ``2**(depth-1)`` as in Keras.
        classes, filters, depth, batch_norm, bn_momentum: as ``keras_zoo.models.genesis.genesis``.

    Returns:
        ``Genesis`` in training mode, mapping (N, channels, rows, cols, depth) to
        (N, classes, rows, cols, depth).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"genesis: input_shape must be (rows, cols, depth, channels), got {input_shape}")
    factor = 2 ** (depth - 1)
    for size in input_shape[:3]:
        if size is not None and (size < factor or size % factor):
            raise ValueError(f"genesis: spatial size {input_shape[:3]} must be divisible by {factor}")
    return Genesis(input_shape[3], classes, filters, depth, batch_norm, bn_momentum)


def copy_keras_weights(keras_model, torch_model: Genesis) -> None:
    """Copies every weight (and BN moving statistic) of the Keras genesis model into the port, by layer name.

    Kernels go from Keras (k, k, k, in, out) to torch (out, in, k, k, k) (``keras_weights``).

    Raises:
        ValueError: when a Keras layer with weights has no counterpart in the port (or the other way
            round), or shapes differ.
    """
    copy_weights_by_name(keras_model, torch_model.keras_layers(), port="genesis port")


def main(argv: Sequence[str] | None = None) -> None:
    parser = harness.add_timing_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="base configuration")
    parser.add_argument("--input-shape", type=int, nargs=4, metavar=("R", "C", "D", "CH"), help="Keras order")
    parser.add_argument("--classes", type=int)
    parser.add_argument("--filters", type=int)
    parser.add_argument("--depth", type=int)
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--bn-momentum", type=float)
    args = harness.parse_args(parser, argv)
    config = dict(PRESETS[args.preset])
    for key in ("input_shape", "classes", "filters", "depth", "batch_norm", "bn_momentum"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    torch.manual_seed(0)
    model = build(**config)
    rows, cols, depth, channels = config.get("input_shape", (64, 64, 32, 1))
    harness.print_record(harness.time_training(model, [(channels, rows, cols, depth)], args, "genesis"))


if __name__ == "__main__":
    main()

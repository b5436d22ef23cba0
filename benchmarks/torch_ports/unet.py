"""PyTorch port of keras_zoo's 2D U-Net (``keras_zoo/models/unet.py``): measuring equipment, not keras_zoo.

The port exists to compare training throughput with the reference implementations' framework on the same
machine; it is not part of the installed package. It builds the Keras network layer for layer, channels
first (N, C, H, W):

- encoder level ``i`` (filters ``f * 2**i``): two 3x3 'same' convolutions, each followed by ReLU (or, with
  ``batch_norm``, a bias-free convolution, BatchNorm and ReLU); dropout after the deepest level (its dropped
  tensor is also the skip); 2x2 max pooling;
- bottleneck with ``f * 2**depth`` filters and dropout;
- decoder: nearest 2x upsampling, a 2x2 'same' convolution with ReLU (TensorFlow's 'same' pads an even
  kernel by 0 before and 1 after, done here with an explicit ``ZeroPad2d``), concatenation of the skip
  *first*, a conv block;
- head: 3x3 convolution to 2 channels with ReLU, 1x1 convolution to ``classes``, sigmoid (1 class) or
  softmax over the channel axis.

Batch norm uses Keras' epsilon 1e-3 and torch momentum ``1 - bn_momentum``. Initialisers follow Keras
(he_normal, a truncated normal, on the 3x3/2x2 convolutions; glorot_uniform on the 1x1 head; zero biases).

Command line (one JSON line from ``harness.time_training``)::

    python benchmarks/torch_ports/unet.py --batch-size 2 [--filters 64] [--depth 4] [--batch-norm]
        [--input-shape 256 256 1] [--preset isbi_cpu] [--precision bf16] [--channels-last]
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

BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default (torch's is 1e-5)

# Architecture presets, as Keras keyword arguments: "default" and "tiny" are the registry's; "isbi_cpu" is
# configs/unet_isbi_cpu.yaml (12 filters with batch norm, trained on 256x256 crops).
PRESETS: dict[str, dict] = {
    "default": {},
    "tiny": {"input_shape": (32, 32, 1), "filters": 4, "depth": 2},
    "isbi_cpu": {"input_shape": (256, 256, 1), "filters": 12, "batch_norm": True},
}


def make_conv(
    in_channels: int, out_channels: int, kernel: int, bias: bool = True, he: bool = True
) -> nn.Conv2d:
    """A Conv2d initialised as Keras does (he_normal or glorot_uniform kernel, zero bias).

    Odd kernels are padded 'same' here; the even 2x2 kernel gets TensorFlow's asymmetric padding in UpConv.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2 if kernel % 2 else 0, bias=bias)
    init_keras_(conv, "he_normal" if he else "glorot_uniform")
    return conv


class ConvBlock(nn.Module):
    """Two 3x3 'same' convolutions with ReLU (conv-BN-ReLU with ``batch_norm``).

    Shapes: (N, Cin, H, W) -> (N, C, H, W).
    """

    def __init__(self, in_channels: int, channels: int, batch_norm: bool, bn_momentum: float):
        super().__init__()
        self.conv1 = make_conv(in_channels, channels, 3, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(channels, BN_EPSILON, 1.0 - bn_momentum) if batch_norm else None
        self.conv2 = make_conv(channels, channels, 3, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(channels, BN_EPSILON, 1.0 - bn_momentum) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            x = conv(x)
            if bn is not None:
                x = bn(x)
            x = torch.relu(x)
        return x


class UpConv(nn.Module):
    """Nearest 2x upsampling, then a 2x2 TensorFlow-'same' convolution with ReLU.

    Shapes: (N, Cin, H, W) -> (N, C, 2H, 2W).
    """

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        # (left, right, top, bottom): TensorFlow puts an even kernel's extra padding after, not before
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = make_conv(in_channels, channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(self.pad(self.upsample(x))))


class UNet(nn.Module):
    """The keras_zoo U-Net, channels first: (N, C, H, W) images -> (N, classes, H, W) probabilities."""

    def __init__(
        self,
        in_channels: int = 1,
        classes: int = 1,
        filters: int = 64,
        depth: int = 4,
        dropout: float = 0.5,
        batch_norm: bool = False,
        bn_momentum: float = 0.99,
    ):
        super().__init__()
        self.depth = depth
        self.classes = classes
        widths = [filters * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList(
            ConvBlock(widths[level - 1] if level else in_channels, widths[level], batch_norm, bn_momentum)
            for level in range(depth)
        )
        self.encoder_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.bottleneck = ConvBlock(widths[depth - 1], widths[depth], batch_norm, bn_momentum)
        self.bottleneck_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        # indexed by level like the encoders; the decoder runs them from level depth-1 down to 0
        self.upconvs = nn.ModuleList(UpConv(widths[level + 1], widths[level]) for level in range(depth))
        self.decoders = nn.ModuleList(
            ConvBlock(2 * widths[level], widths[level], batch_norm, bn_momentum) for level in range(depth)
        )
        self.head_conv = make_conv(widths[0], 2, 3)
        self.head_logits = make_conv(2, classes, 1, he=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, classes, H, W) pre-activation outputs (Keras layer ``head_logits``)."""
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x)
            if level == self.depth - 1:
                x = self.encoder_dropout(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck_dropout(self.bottleneck(x))
        for level in reversed(range(self.depth)):
            x = self.upconvs[level](x)
            x = torch.cat([skips[level], x], dim=1)  # skip first, as the Keras Concatenate
            x = self.decoders[level](x)
        return self.head_logits(torch.relu(self.head_conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        return torch.sigmoid(logits) if self.classes == 1 else torch.softmax(logits, dim=1)

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> the module holding its weights (Conv2d or BatchNorm2d)."""
        mapping: dict[str, nn.Module] = {}

        def add_block(prefix: str, block: ConvBlock) -> None:
            for i in (1, 2):
                mapping[f"{prefix}_conv{i}"] = getattr(block, f"conv{i}")
                if getattr(block, f"bn{i}") is not None:
                    mapping[f"{prefix}_bn{i}"] = getattr(block, f"bn{i}")

        for level in range(self.depth):
            add_block(f"enc{level + 1}", self.encoders[level])
            mapping[f"dec{level + 1}_upconv"] = self.upconvs[level].conv
            add_block(f"dec{level + 1}", self.decoders[level])
        add_block("bottleneck", self.bottleneck)
        mapping["head_conv"] = self.head_conv
        mapping["head_logits"] = self.head_logits
        return mapping


def build(
    input_shape: Sequence[int | None] = (256, 256, 1),
    classes: int = 1,
    filters: int = 64,
    depth: int = 4,
    dropout: float = 0.5,
    batch_norm: bool = False,
    bn_momentum: float = 0.99,
) -> UNet:
    """Builds the port with the Keras factory's arguments (defaults: the reference, 31,031,685 parameters).

    Args:
        input_shape: Keras order (height, width, channels); only channels shape the weights, known spatial
            sizes must divide by ``2**depth`` as in Keras.
        classes, filters, depth, dropout, batch_norm, bn_momentum: as ``keras_zoo.models.unet.unet``.

    Returns:
        ``UNet`` in training mode, mapping (N, channels, H, W) to (N, classes, H, W).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"unet: input_shape must be (height, width, channels), got {input_shape}")
    for size in input_shape[:2]:
        if size is not None and (size < 2**depth or size % 2**depth):
            raise ValueError(f"unet: input spatial size {input_shape[:2]} must be divisible by {2**depth}")
    return UNet(input_shape[2], classes, filters, depth, dropout, batch_norm, bn_momentum)


def copy_keras_weights(keras_model, torch_model: UNet) -> None:
    """Copies every weight (and BN moving statistic) of the Keras U-Net into the port, by layer name.

    Kernels go from Keras (kh, kw, in, out) to torch (out, in, kh, kw) (``keras_weights``).

    Raises:
        ValueError: when a Keras layer with weights has no counterpart in the port (or the other way
            round), or shapes differ.
    """
    copy_weights_by_name(keras_model, torch_model.keras_layers(), port="unet port")


def main(argv: Sequence[str] | None = None) -> None:
    parser = harness.add_timing_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="base configuration")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("H", "W", "C"), help="Keras order")
    parser.add_argument("--classes", type=int)
    parser.add_argument("--filters", type=int)
    parser.add_argument("--depth", type=int)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--bn-momentum", type=float)
    args = harness.parse_args(parser, argv)
    config = dict(PRESETS[args.preset])
    for key in ("input_shape", "classes", "filters", "depth", "dropout", "batch_norm", "bn_momentum"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    torch.manual_seed(0)
    model = build(**config)
    height, width, channels = config.get("input_shape", (256, 256, 1))
    harness.print_record(harness.time_training(model, [(channels, height, width)], args, "unet"))


if __name__ == "__main__":
    main()

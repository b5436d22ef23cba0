"""``train.py --model unet``: the zhixuhao/unet recipe for ISBI 2012 membrane segmentation.

Defaults follow the reference: Adam 1e-4, binary cross-entropy, batch 2, 256x256 inputs, 300 steps per
epoch (``main.py``) for 5 epochs (the notebook's epoch count), 64 base filters. Differences, each a flag:
images are fitted to the input by random crops at native resolution by default (``--fit resize`` is the
reference's resizing; crops measured at least as good on held-out slices), validation runs on whole
held-out slices, and the best checkpoint is picked by validation membrane Dice (membrane = label 0).
``configs/unet_isbi_cpu.yaml`` holds a recipe that trains in minutes on a CPU.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.errors import ConfigError
from keras_zoo.runtime.traits import ModelTraits

if TYPE_CHECKING:
    import keras

AUGMENTATIONS = ("none", "reference", "strong")  # keras_zoo.datasets.augment.AugmentConfig presets
FITS = ("crop", "resize")  # keras_zoo.datasets.isbi.FITS
SYNTHETIC_SLICES = 20
DEPTH = 4


class UNetTask(Task):
    """2D U-Net on ISBI 2012 (PNG folders or TIFF stacks) or on synthetic membranes."""

    name = "unet"
    defaults = {
        "epochs": 5,
        "steps_per_epoch": 300,
        "batch_size": 2,
        "lr": 1e-4,
        "input_size": [256, 256],
        "filters": 64,
    }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("unet")
        g.add_argument(
            "--fit",
            choices=FITS,
            default="crop",
            help="fit slices to the input: random crops at native resolution, or resize (the reference)",
        )
        g.add_argument("--val-fraction", type=float, default=0.2, help="slices held out for validation")
        g.add_argument(
            "--augment",
            choices=AUGMENTATIONS,
            default="reference",
            help="transform ranges: the reference's, stronger (any dihedral turn, 15 deg, shear, zoom) or none",
        )
        g.add_argument(
            "--loss", choices=("bce", "bce_dice"), default="bce", help="binary cross-entropy (+ Dice)"
        )
        g.add_argument(
            "--batch-norm", action="store_true", help="batch norm after each 3x3 conv (not in reference)"
        )
        g.add_argument(
            "--bn-momentum", type=float, default=0.99, help="moving-statistics momentum with --batch-norm"
        )
        g.add_argument("--dropout", type=float, default=0.5, help="dropout after enc4 and the bottleneck")
        g.add_argument(
            "--tta",
            action="store_true",
            help="evaluate with test-time augmentation: the mean over the 8 flips and quarter turns",
        )
        g.add_argument(
            "--lr-schedule",
            choices=("constant", "cosine"),
            default="constant",
            help="cosine: decay to 5%% of --lr",
        )

    def _input_size(self, args: argparse.Namespace) -> tuple[int, int]:
        size = tuple(args.input_size)
        if len(size) != 2 or min(size) < 1 or any(s % 2**DEPTH for s in size):
            raise ConfigError(
                f"--input-size must be H W, each a positive multiple of {2**DEPTH}; got {list(size)}"
            )
        return size

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict:
        height, width = self._input_size(args)
        # Crops train a fully convolutional model that then segments whole slices of any divisible size.
        shape = (None, None, 1) if args.fit == "crop" else (height, width, 1)
        config = {
            "input_shape": shape,
            "filters": args.filters,
            "depth": DEPTH,
            "dropout": args.dropout,
            "batch_norm": args.batch_norm,
            "bn_momentum": args.bn_momentum,
        }
        return {"variant": None, "config": config}

    def traits(self, args: argparse.Namespace) -> ModelTraits:
        return ModelTraits(full_resolution_2d=True, width=args.filters)

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        return "val_membrane_dice", "max"

    def final_metric(self, args: argparse.Namespace) -> str:
        return "val_pixel_accuracy"

    def load_data(self, args: argparse.Namespace) -> Data:
        from keras_zoo.datasets import isbi
        from keras_zoo.datasets.augment import AugmentConfig
        from keras_zoo.datasets.base import describe_workers

        size = self._input_size(args)
        if not 0.0 < args.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        if args.data:
            slices = isbi.read_isbi(args.data)
        else:
            slices = isbi.synthetic_membranes(SYNTHETIC_SLICES, (2 * size[0], 2 * size[1]), seed=args.seed)
        train, val = isbi.hold_out(slices, args.val_fraction, seed=0)
        if args.fit == "crop" and (size[0] > slices.images.shape[1] or size[1] > slices.images.shape[2]):
            raise ConfigError(
                f"--input-size {list(size)} is larger than the slices {slices.images.shape[1:3]}; use --fit resize"
            )
        batches = isbi.training_batches(
            train,
            args.batch_size,
            size,
            args.steps_per_epoch,
            args.fit,
            AugmentConfig.named(args.augment),
            args.seed,
            input_workers(args),
        )
        val_slices = isbi.validation_slices(val, args.fit, size, 2**DEPTH)
        description = (
            f"{slices.source}: {len(train.images)} train / {len(val.images)} validation slices of "
            f"{slices.images.shape[1]}x{slices.images.shape[2]}, fit={args.fit}, augment={args.augment}, "
            f"{describe_workers(batches)}"
        )
        return Data(
            train=batches,
            val=isbi.validation_batches(val_slices, batch_size=1),
            description=description,
            extras={"val_native": val},
        )

    def optimizer(self, args: argparse.Namespace, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        lr = args.lr
        if args.lr_schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(args.lr, steps_per_epoch * args.epochs, alpha=0.05)
        return keras.optimizers.Adam(learning_rate=lr)

    def loss(self, args: argparse.Namespace, data: Data):
        import keras

        if args.loss == "bce_dice":
            from keras_zoo.losses import BCEDice

            return BCEDice()
        return keras.losses.BinaryCrossentropy()

    def metrics(self, args: argparse.Namespace) -> list:
        from keras_zoo.metrics import ClassIoU, DiceCoefficient, ThresholdPixelAccuracy

        return [
            ThresholdPixelAccuracy(name="pixel_accuracy"),
            DiceCoefficient(class_id=0, name="membrane_dice"),
            ClassIoU(class_id=0, name="membrane_iou"),
        ]

    def evaluate(self, model: keras.Model, data: Data, args: argparse.Namespace) -> dict[str, float]:
        """Pixel accuracy, membrane Dice and membrane IoU over all held-out slices at native resolution."""
        from keras_zoo.inference.segmentation import evaluate_slices

        val = data.extras["val_native"]
        scores, _ = evaluate_slices(model, val.images, val.labels, list(val.names), args.tta)
        return {f"val_{key}": value for key, value in scores.items()}

    def save_previews(self, model: keras.Model, data: Data, path: str, args: argparse.Namespace) -> None:
        """Input, label and predicted membrane probability for up to three held-out slices."""
        from keras_zoo.callbacks.panels import save_image_grid
        from keras_zoo.inference.segmentation import segment_slice

        val = data.extras["val_native"].subset(range(min(3, len(data.extras["val_native"].images))))
        columns = {
            "held-out slice": val.images,
            "label (black = membrane)": val.labels,
            "predicted membrane probability": [1.0 - segment_slice(model, x, args.tta) for x in val.images],
        }
        save_image_grid(path, columns, len(val.images), cell_inches=3.0)

"""DeepLabv3+ recipe (``research/deeplab/train.py`` and ``utils/train_utils.py`` defaults).

Momentum SGD 0.9 with the 'poly' schedule ``lr = base * (1 - step / total) ** 0.9`` over the run's total
steps (epochs x steps per epoch, ending at 0), base LR 1e-4 (the reference's comment: use 0.007 on train_aug
from ImageNet weights, 1e-4 when fine-tuning), batch 8 (the Ascend port used 7), crop 513, output stride 16,
weight decay 4e-5 as ``L2(wd / 2)``, batch norm fine-tuned (``--freeze-bn`` turns that off). Biases get no 2x
gradient multiplier. Loss: softmax cross-entropy over non-void pixels.

Data: ``--data`` is a VOCdevkit folder (``--train-split`` / ``--val-split`` lists in ImageSets/Segmentation)
or a folder of DeepLab tfrecords (``{split}-*.tfrecord``, from ``keras-zoo prepare voc``). Training crops
use the reference's augmentation (scale 0.5..2.0, mean-pixel / void padding, random crop, flip). Evaluation
runs on whole images padded to the crop, optionally at several scales (``--eval-scales 0.5 0.75 ... 1.75``)
and with left-right flips (``--flip``), averaging softmax probabilities as the reference's
``predict_labels_multi_scale``. Without ``--data``: seeded synthetic scenes.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from typing import TYPE_CHECKING

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.datasets.voc import NUM_CLASSES, VOID_LABEL  # keras-free
from keras_zoo.errors import ConfigError
from keras_zoo.runtime.traits import ModelTraits

if TYPE_CHECKING:
    import keras
    import numpy as np

log = logging.getLogger(__name__)


class DeepLabTask(Task):
    """DeepLabv3+ / Xception-65 on PASCAL VOC (or synthetic scenes)."""

    name = "deeplabv3plus"
    defaults = {
        "epochs": 30,
        "steps_per_epoch": 1000,
        "batch_size": 8,
        "lr": 1e-4,
        "input_size": [513, 513],
        "filters": 32,
    }

    preset_flags = {"width": lambda width: {"filters": round(width * 32)}}  # --filters: the root conv's 32

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("deeplabv3plus")
        g.add_argument(
            "--output-stride", type=int, default=16, choices=(8, 16), help="backbone output stride"
        )
        g.add_argument("--backbone", default="xception65", choices=("xception41", "xception65", "xception71"))
        g.add_argument(
            "--atrous-rates", type=int, nargs=3, help="ASPP rates (default 6 12 18 at OS16, 12 24 36 at OS8)"
        )
        g.add_argument("--middle-units", type=int, help="middle-flow repeats (default: the backbone's)")
        g.add_argument("--classes", type=int, default=NUM_CLASSES)
        g.add_argument(
            "--weight-decay", type=float, default=4e-5, help="reference weight decay (applied as L2(wd/2))"
        )
        g.add_argument("--momentum", type=float, default=0.9)
        g.add_argument("--poly-power", type=float, default=0.9)
        g.add_argument(
            "--freeze-bn", action="store_true", help="keep batch norm fixed (fine_tune_batch_norm=False)"
        )
        g.add_argument(
            "--bn-momentum",
            type=float,
            default=0.9997,
            help="batch-norm moving-average decay (reference 0.9997, ~3000 steps; lower it for short runs)",
        )
        g.add_argument(
            "--train-split", default="train", help="training list (train, train_aug, trainval, ...)"
        )
        g.add_argument("--val-split", default="val", help="evaluation list")
        g.add_argument("--min-scale", type=float, default=0.5)
        g.add_argument("--max-scale", type=float, default=2.0)
        g.add_argument(
            "--eval-scales",
            type=float,
            nargs="+",
            default=[1.0],
            help="multi-scale inference, e.g. 0.5 0.75 1 1.25 1.5 1.75",
        )
        g.add_argument("--flip", action="store_true", help="add left-right flipped inference")
        g.add_argument(
            "--class-weights",
            nargs="+",
            metavar="W",
            help="loss weight per class (--classes values), or 'balanced': n / (classes present * pixels of "
            "the class), counted on the training labels (default: all 1, as the reference)",
        )
        g.add_argument("--synthetic-samples", type=int, default=64, help="synthetic scenes without --data")

    def _config(self, args: argparse.Namespace, size) -> dict:
        return {
            "input_shape": (*size, 3),
            "classes": args.classes,
            "output_stride": args.output_stride,
            "backbone": args.backbone,
            "atrous_rates": args.atrous_rates,
            "width": args.filters / 32,  # --filters is the root conv's 32
            "middle_units": args.middle_units,
            "weight_decay": args.weight_decay,
            "bn_momentum": args.bn_momentum,
            "freeze_batch_norm": args.freeze_bn,
        }

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict:
        return {"variant": None, "config": self._config(args, self._crop(args))}

    def traits(self, args: argparse.Namespace) -> ModelTraits:
        return ModelTraits(xla_fails_in_mixed_precision=True)

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        return "val_mean_iou", "max"

    def _crop(self, args) -> tuple[int, int]:
        size = list(args.input_size)
        if len(size) == 1:
            size = size * 2
        if len(size) != 2 or min(size) < 8:
            raise ConfigError(f"--input-size takes H W (>= 8) for deeplabv3plus, got {args.input_size}")
        return int(size[0]), int(size[1])

    def load_data(self, args: argparse.Namespace) -> Data:
        from keras_zoo.datasets import voc
        from keras_zoo.datasets.base import ArrayBatches, describe_workers
        from keras_zoo.inference.deeplab import pad_for_eval
        from keras_zoo.models.deeplab import preprocess_input

        crop = self._crop(args)
        scales = voc.scales_between(args.min_scale, args.max_scale)
        streamed = bool(args.data) and bool(
            glob.glob(os.path.join(args.data, f"{args.train_split}-*.tfrecord"))
        )
        if streamed:  # tfrecords: the training split is streamed through tf.data, never held in memory
            from keras_zoo.datasets import voc_tfrecord

            train = voc_tfrecord.training_dataset(
                args.data,
                args.train_split,
                args.batch_size,
                args.steps_per_epoch,
                crop,
                scales,
                args.seed,
                input_workers(args),
            )
            labels, names, images = [], [], None
            if args.classes < NUM_CLASSES or args.class_weights == ["balanced"]:
                labels = voc_tfrecord.load_tfrecord_labels(args.data, args.train_split)
                names = [f"{args.train_split} record {i}" for i in range(len(labels))]
        elif args.data:
            names, images, labels = voc.load_split(args.data, args.train_split)
        if args.data:
            val_names, val_images, val_labels = voc.load_split(args.data, args.val_split)
        else:
            if args.synthetic_samples < 2:
                raise ConfigError(f"--synthetic-samples must be >= 2, got {args.synthetic_samples}")
            (names, images, labels), (val_names, val_images, val_labels) = voc.synthetic_splits(
                args.synthetic_samples, crop, args.seed, args.classes
            )
        voc.check_label_classes(
            [*names, *val_names], [*labels, *val_labels], args.classes, f"--classes {args.classes}"
        )
        class_weights = self._class_weights(args, labels)
        if images is not None:  # in memory: seeded samples, augmented by NumPy and Pillow in worker threads
            train = voc.training_samples(
                images, labels, crop, scales, args.batch_size, args.steps_per_epoch, args.seed,
                preprocess_input, input_workers(args),
            )  # fmt: skip
        count = f"{len(images)}" if images is not None else "streamed"
        if args.data:
            description = (
                f"VOC {args.train_split}/{args.val_split} at {args.data} ({count}/{len(val_images)})"
            )
        else:
            description = f"synthetic scenes {crop[0]}x{crop[1]} ({count}/{len(val_images)})"
        workers = describe_workers(train) if images is not None else "tf.data"
        eval_images, eval_labels = pad_for_eval(val_images, val_labels, crop, val_names)
        extras = {
            "images": eval_images,
            "labels": eval_labels,
            "names": list(val_names),
            "sizes": [im.shape[:2] for im in val_images],
        }
        return Data(
            train=train,
            val=ArrayBatches(preprocess_input(eval_images), eval_labels, args.batch_size),
            description=f"{description}, {workers}",
            extras=extras,
            class_weights=class_weights,
        )

    def _class_weights(self, args: argparse.Namespace, labels) -> list[float] | None:
        """``--class-weights`` as a list of floats (None without the flag); logs them."""
        from keras_zoo.losses.segmentation_ignore import class_weights_from

        if not args.class_weights:
            return None
        try:
            weights = class_weights_from(args.class_weights, labels, args.classes, VOID_LABEL)
        except ValueError as exc:
            raise ConfigError(f"--class-weights {exc}") from None
        log.info("class weights: %s", ", ".join(f"{w:.3g}" for w in weights))
        return weights

    def optimizer(self, args: argparse.Namespace, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        total = max(1, args.epochs * steps_per_epoch)
        schedule = keras.optimizers.schedules.PolynomialDecay(
            args.lr, total, end_learning_rate=0.0, power=args.poly_power
        )
        return keras.optimizers.SGD(learning_rate=schedule, momentum=args.momentum)

    def loss(self, args: argparse.Namespace, data: Data):
        from keras_zoo.losses.segmentation_ignore import IgnoreLabelCrossentropy

        return IgnoreLabelCrossentropy(ignore_label=VOID_LABEL, class_weights=data.class_weights)

    def metrics(self, args: argparse.Namespace) -> list:
        from keras_zoo.metrics.miou import SegmentationMeanIoU, VoidIgnoringPixelAccuracy

        return [SegmentationMeanIoU(args.classes), VoidIgnoringPixelAccuracy(args.classes)]

    def predict(self, model: keras.Model, images: np.ndarray, args: argparse.Namespace) -> np.ndarray:
        """Class probabilities (n, H, W, classes) with the run's ``--eval-scales`` and ``--flip``."""

        from keras_zoo.inference.deeplab import predict_probabilities
        from keras_zoo.registry import get_model

        def build(size):
            return get_model(self.name, **self._config(args, size))

        return predict_probabilities(model, images, args.eval_scales, args.flip, args.batch_size, build)

    def evaluate(self, model: keras.Model, data: Data, args: argparse.Namespace) -> dict[str, float]:
        from keras_zoo.datasets.voc import class_names
        from keras_zoo.inference.deeplab import confusion_matrix, iou_report

        images, labels = data.extras["images"], data.extras["labels"]
        predicted = self.predict(model, images, args).argmax(-1)
        report = iou_report(confusion_matrix(labels, predicted, args.classes), class_names(args.classes))
        return {f"val_{key}": value for key, value in report.items()}

    def save_previews(self, model: keras.Model, data: Data, path: str, args: argparse.Namespace) -> None:
        """Rows of image | ground truth overlay | prediction overlay (VOC palette, 50 % blend)."""
        from PIL import Image

        from keras_zoo.inference.deeplab import overlay_rows

        images, labels = data.extras["images"][:4], data.extras["labels"][:4]
        predicted = self.predict(model, images, args).argmax(-1)
        Image.fromarray(overlay_rows(images, labels, predicted, data.extras["sizes"])).save(path)

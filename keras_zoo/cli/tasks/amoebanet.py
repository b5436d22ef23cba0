"""AmoebaNet-D recipe (tensorflow/tpu amoeba_net, Ascend port defaults).

Defaults are the Ascend port's: 6 cells, 224x224, 35 epochs, batch 64, RMSProp (decay 0.9, momentum 0.9,
epsilon 1.0), lr 2.56 with a linear warm-up over 0.35 epochs then x0.88 per epoch (floor 1e-4 x lr), label
smoothing 0.1, weight decay 4e-5 (slim L2), dense dropout keep 0.5, drop-path off, 1001 classes.
Note: lr 2.56 was tuned for batch 1024 (the README's fast recipe); the Ascend port keeps it at batch 64.
``--scale-lr`` multiplies ``--lr`` by batch/1024 instead. ``--aux-head`` trains with the auxiliary head
(loss weight 0.4), as the reference does. ``--ema 0.9999`` keeps an exponential moving average of the
trainable weights (Keras ``use_ema``); Keras writes the averages into the model at the end of ``fit``, so
the final evaluation and summary.json use them (the reference also averages BN statistics; Keras does not,
and it has no warm-up of the decay, so use it only for long runs).

Data (``--data``): a folder of TF-slim/TPU shards (``train-*``, ``validation-*``), or an image tree:
``DIR/train`` and ``DIR/val`` (or ``DIR/validation``) of ``<wnid>/*.JPEG`` folders, or a single
``<wnid>/*.JPEG`` tree used for training and, with evaluation preprocessing, for validation (a pipeline
check). Without ``--data``, a seeded synthetic set. Metrics: top-1 and top-5 accuracy of the main logits.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.errors import ConfigError, require_dir

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

REFERENCE_BATCH = 1024  # the batch lr 2.56 was tuned for
AUX_LOSS_WEIGHT = 0.4


class AmoebaNetTask(Task):
    """AmoebaNet-D ImageNet classification."""

    name = "amoebanet"
    defaults = {"epochs": 35, "batch_size": 64, "lr": 2.56, "input_size": [224, 224], "filters": 256}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("amoebanet")
        g.add_argument("--num-cells", type=int, default=6, help="normal cells (6 fast recipe, 12/18 paper)")
        g.add_argument("--stem-filters", type=int, default=32)
        g.add_argument("--classes", type=int, default=1001, help="1001 (background + 1000) or 1000")
        g.add_argument("--aux-head", action="store_true", help="train with the auxiliary head (weight 0.4)")
        g.add_argument("--drop-path-keep-prob", type=float, default=1.0, help="target drop-path keep prob")
        g.add_argument("--dropout-keep-prob", type=float, default=0.5, help="keep prob before the final FC")
        g.add_argument("--optimizer", choices=("rmsprop", "momentum", "sgd"), default="rmsprop")
        g.add_argument("--lr-decay", type=float, default=0.88, help="exponential decay factor")
        g.add_argument("--lr-decay-epochs", type=float, default=1.0, help="epochs per decay step")
        g.add_argument("--warmup-epochs", type=float, default=0.35, help="linear warm-up from 0")
        g.add_argument("--scale-lr", action="store_true", help="lr x batch/1024 (2.56 was tuned for 1024)")
        g.add_argument("--label-smoothing", type=float, default=0.1)
        g.add_argument("--weight-decay", type=float, default=4e-5, help="slim L2 factor on kernels")
        g.add_argument(
            "--ema", type=float, default=0.0, help="EMA momentum of the weights (0: off; ref 0.9999)"
        )
        g.add_argument("--no-color-distort", action="store_true", help="skip the colour distortion")
        g.add_argument("--synthetic-samples", type=int, default=512, help="synthetic training images")

    def _image_size(self, args) -> int:
        size = args.input_size
        if len(size) == 1 or (len(size) == 2 and size[0] == size[1]):
            return int(size[0])
        raise ConfigError(f"--input-size needs one size or two equal sizes for amoebanet, got {size}")

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict:
        size = self._image_size(args)
        config = {
            "input_shape": (size, size, 3),
            "classes": args.classes,
            "num_cells": args.num_cells,
            "filters": args.filters,
            "stem_filters": args.stem_filters,
            "aux_head": args.aux_head,
            "drop_path_keep_prob": args.drop_path_keep_prob,
            "dropout_keep_prob": args.dropout_keep_prob,
            "weight_decay": args.weight_decay,
        }
        return {"variant": None, "config": config}

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        return ("val_logits_top1" if args.aux_head else "val_top1"), "max"

    def final_metric(self, args: argparse.Namespace) -> str:
        return "val_logits_top5" if args.aux_head else "val_top5"

    def learning_rate(self, args) -> float:
        """The peak learning rate: ``--lr``, times batch/1024 with ``--scale-lr``."""
        if args.scale_lr:
            return args.lr * args.batch_size / REFERENCE_BATCH
        if args.lr == self.defaults["lr"] and args.batch_size < REFERENCE_BATCH:
            log.warning(
                "lr %g is the reference's, tuned for batch %d; at batch %d it can diverge (a tiny or synthetic "
                "run does at once): --scale-lr gives %g",
                args.lr,
                REFERENCE_BATCH,
                args.batch_size,
                args.lr * args.batch_size / REFERENCE_BATCH,
            )
        return args.lr

    def optimizer(self, args, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        from keras_zoo.optimizers import WarmupExponentialDecay

        schedule = WarmupExponentialDecay(
            self.learning_rate(args),
            decay_steps=max(1, int(round(steps_per_epoch * args.lr_decay_epochs))),
            decay_rate=args.lr_decay,
            warmup_steps=int(args.warmup_epochs * steps_per_epoch),
        )
        ema = {"use_ema": args.ema > 0, "ema_momentum": args.ema or 0.99}
        if args.optimizer == "rmsprop":
            return keras.optimizers.RMSprop(schedule, rho=0.9, momentum=0.9, epsilon=1.0, **ema)
        momentum = 0.9 if args.optimizer == "momentum" else 0.0
        return keras.optimizers.SGD(schedule, momentum=momentum, **ema)

    def loss(self, args, data):
        from keras_zoo.losses.classification import SmoothedSparseCrossentropy

        main = SmoothedSparseCrossentropy(args.label_smoothing)
        if not args.aux_head:
            return main
        return {
            "logits": main,
            "aux_logits": SmoothedSparseCrossentropy(args.label_smoothing, AUX_LOSS_WEIGHT),
        }

    def metrics(self, args):
        import keras

        top = [
            keras.metrics.SparseCategoricalAccuracy(name="top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        ]
        if args.aux_head:
            return {"logits": top, "aux_logits": []}
        return top

    def callbacks(self, args, data, output_dir):
        from keras_zoo.callbacks.drop_path import DropPathSchedule

        if args.drop_path_keep_prob >= 1.0:
            return []
        return [DropPathSchedule(total_steps=args.epochs * len(data.train))]

    def save_previews(self, model: keras.Model, data: Data, path: str, args: argparse.Namespace) -> None:
        """Up to eight images of the first validation batch, each with its label and the model's most
        probable class (ImageNet names for 1000 or 1001 classes)."""
        import keras

        from keras_zoo.callbacks.panels import save_captioned_images
        from keras_zoo.inference.amoebanet import class_label, class_probabilities, top_k

        if data.val is None:
            return
        images, labels = first_batch(data.val)
        images, labels = images[:8], labels[:8]
        logits = model if len(model.outputs) == 1 else keras.Model(model.inputs, model.outputs[0])
        ids, probabilities = top_k(class_probabilities(logits, images, batch_size=len(images)), 1)
        classes = int(model.outputs[0].shape[-1])
        captions = [
            f"label: {class_label(int(label), classes)[1]}\n"
            f"top-1: {class_label(int(top), classes)[1]} ({float(p):.0%})"
            for label, top, p in zip(labels, ids[:, 0], probabilities[:, 0])
        ]
        save_captioned_images(path, (images + 1.0) / 2.0, captions)

    def load_data(self, args: argparse.Namespace) -> Data:
        from keras_zoo.datasets import imagenet

        if args.data is not None:
            imagenet.check_classes(args.classes)
        if args.data is None:
            data = self._synthetic(args)
        elif glob.glob(os.path.join(args.data, "train-*")):
            data = self._tfrecords(args)
        else:
            data = self._folders(args)
        if args.aux_head:
            data.train = imagenet.with_aux_targets(data.train)
            data.val = imagenet.with_aux_targets(data.val) if data.val is not None else None
        return data

    def _synthetic(self, args) -> Data:
        from keras_zoo.datasets import imagenet

        size = self._image_size(args)
        steps = args.steps_per_epoch or max(1, args.synthetic_samples // args.batch_size)
        train, val = imagenet.synthetic_batches(
            args.classes, size, args.batch_size, steps, args.seed, input_workers(args)
        )
        return Data(
            train=train,
            val=val,
            description=f"synthetic {args.classes}-class images {size}x{size} (seed {args.seed}, {steps} steps)",
        )

    def _tfrecords(self, args) -> Data:
        from keras_zoo.datasets import imagenet_tfrecord as records

        size = self._image_size(args)
        steps = args.steps_per_epoch
        if steps is None:
            steps = records.train_epoch_steps(args.data, args.batch_size)
        common = {
            "batch_size": args.batch_size,
            "image_size": size,
            "classes": args.classes,
            "workers": input_workers(args),
        }
        train = records.imagenet_tfrecord_dataset(
            args.data,
            "train",
            training=True,
            seed=args.seed,
            steps=steps,
            color_distort=not args.no_color_distort,
            **common,
        )
        val = None
        if glob.glob(os.path.join(args.data, "validation-*")):
            val = records.imagenet_tfrecord_dataset(args.data, "validation", training=False, **common)
        return Data(
            train=train, val=val, description=f"ImageNet tfrecords at {args.data} ({size}x{size}), tf.data"
        )

    def _folders(self, args) -> Data:
        from keras_zoo.datasets import imagenet
        from keras_zoo.datasets.base import describe_workers

        root = require_dir(args.data, "ImageNet folder")
        size = self._image_size(args)
        train_dir, val_dir = imagenet.folder_splits(root)
        paths, labels = imagenet.list_image_folder(train_dir, args.classes)
        train = imagenet.ImageFolderBatches(
            paths,
            labels,
            args.batch_size,
            size,
            seed=args.seed,
            steps=args.steps_per_epoch,
            color_distort=not args.no_color_distort,
            workers=input_workers(args),
        )
        val = None
        if val_dir is not None:
            val_paths, val_labels = imagenet.list_image_folder(val_dir, args.classes)
            val = imagenet.ImageFolderEvalBatches(
                val_paths, val_labels, args.batch_size, size, workers=input_workers(args)
            )
        same = " (validation = the training images, eval preprocessing)" if val_dir == train_dir else ""
        description = f"ImageNet folders at {root}: {len(paths)} images{same}, {describe_workers(train)}"
        return Data(train=train, val=val, description=description)


def first_batch(batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, H, W, 3), labels (n,))`` of the first batch of a ``PyDataset`` or a ``tf.data.Dataset``
    (the main head's labels where the batches carry the auxiliary head's too)."""
    import keras

    if isinstance(batches, keras.utils.PyDataset):
        images, labels = batches[0]
    else:
        images, labels = next(iter(batches.take(1)))
    if isinstance(labels, dict):
        labels = labels["logits"]
    return np.asarray(images), np.asarray(labels)

"""Models Genesis recipe: self-supervised restoration pretraining, and fine-tuning of target models.

``--task pretrain`` (default) follows ``keras/Genesis_Chest_CT.py``: SGD lr 1.0 momentum 0.9 (the Ascend
README's "lr 0.04" is a documentation error; its code uses 1.0), batch 6, MSE loss, MAE metric,
ReduceLROnPlateau x0.5 after 10 epochs without val_loss improvement (min_delta 1e-4, min_lr 1e-6), early
stopping after 50, 64x64x32 cubes from ``bat_<N>_s_64x64x32_<fold>.npy`` files (folds 0-4 train, 5-6 valid),
and PNG panels of (transformed, restored, original) slices after every epoch in ``OUTPUT/panels``.

``--task segment|classify`` fine-tunes a target model cut from genesis (``--weights`` = pretrained ``.h5``,
loaded by name): a segmenter from ``depth_13_relu`` (Dice) or a classifier from ``depth_7_relu``
(accuracy, AUC), with Adam at lr 1e-3 unless ``--lr`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.errors import ConfigError

log = logging.getLogger(__name__)

PRETRAIN_LR, FINETUNE_LR = 1.0, 1e-3
VARIANTS = {"pretrain": None, "segment": "segmenter", "classify": "classifier"}


class GenesisTask(Task):
    """Models Genesis: restoration pretraining (reference recipe) and target-task fine-tuning."""

    name = "genesis"
    defaults = {"epochs": 10_000, "batch_size": 6, "lr": None, "input_size": [64, 64, 32], "filters": 32}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("genesis")
        g.add_argument("--task", choices=("pretrain", "segment", "classify"), default="pretrain")
        g.add_argument("--classes", type=int, default=1, help="target classes (1: sigmoid)")
        g.add_argument("--train-folds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="cube file folds")
        g.add_argument("--valid-folds", type=int, nargs="+", default=[5, 6], help="cube file folds")
        g.add_argument(
            "--cubes", type=int, default=48, help="synthetic cubes (or cubes per volume for NIfTI)"
        )
        g.add_argument(
            "--modality", choices=("ct", "mr"), default="ct", help="intensity window of NIfTI data"
        )
        g.add_argument("--freeze-encoder", action="store_true", help="fine-tuning: freeze depth_0..depth_7")
        g.add_argument("--freeze-batch-norm", action="store_true", help="fine-tuning: freeze every BN layer")
        g.add_argument("--bn-momentum", type=float, default=0.99, help="BN moving-statistics momentum")
        g.add_argument(
            "--optimizer",
            choices=("sgd", "adam"),
            help="default: the reference's, SGD (momentum 0.9) for pretraining, Adam for fine-tuning",
        )
        g.add_argument("--panel-every", type=int, default=1, help="pretraining panel interval in epochs")

    # ------------------------------------------------------------------------------------------ model
    def _input_shape(self, args) -> tuple[int, int, int, int]:
        if len(args.input_size) != 3:
            raise ConfigError(f"--input-size needs rows cols depth for genesis, got {args.input_size}")
        return (*args.input_size, 1)

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict:
        config = {
            "input_shape": self._input_shape(args),
            "filters": args.filters,
            "bn_momentum": args.bn_momentum,
        }
        if args.task != "pretrain":
            config.update(
                classes=args.classes,
                freeze_encoder=args.freeze_encoder,
                freeze_batch_norm=args.freeze_batch_norm,
            )
        return {"variant": VARIANTS[args.task], "config": config}

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        return {
            "pretrain": ("val_loss", "min"),
            "segment": ("val_dice", "max"),
            "classify": ("val_auc", "max"),
        }[args.task]

    def optimizer(self, args, steps_per_epoch):
        import keras

        kind = args.optimizer or ("sgd" if args.task == "pretrain" else "adam")
        lr = args.lr or (PRETRAIN_LR if kind == "sgd" and args.task == "pretrain" else FINETUNE_LR)
        if kind == "sgd":
            return keras.optimizers.SGD(lr, momentum=0.9)
        return keras.optimizers.Adam(lr)

    def loss(self, args, data):
        from keras_zoo.losses.segmentation import BCEDice

        if args.task == "pretrain":
            return "mse"
        if args.task == "segment":
            return BCEDice() if args.classes == 1 else "sparse_categorical_crossentropy"
        return "binary_crossentropy" if args.classes == 1 else "sparse_categorical_crossentropy"

    def metrics(self, args):
        import keras

        from keras_zoo.metrics.segmentation import DiceCoefficient

        if args.task == "pretrain":
            return ["mae"]
        if args.task == "segment":
            return [DiceCoefficient(class_id=1, name="dice")]
        if args.classes == 1:
            return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def callbacks(self, args, data, output_dir):
        import keras

        from keras_zoo.callbacks.genesis_panels import save_restoration_panel
        from keras_zoo.callbacks.prediction_panels import PredictionPanels

        watch = "val_loss" if data.val is not None else "loss"
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(watch, factor=0.5, patience=10, min_delta=1e-4, min_lr=1e-6),
            keras.callbacks.EarlyStopping(watch, patience=50),
        ]
        if args.task == "pretrain" and "panel_x" in data.extras:
            panels = os.path.join(output_dir, "panels")
            x, y = data.extras["panel_x"], data.extras["panel_y"]
            callbacks.append(PredictionPanels(x, y, save_restoration_panel, panels, args.panel_every))
        return callbacks

    # ------------------------------------------------------------------------------------------ data
    def load_data(self, args: argparse.Namespace) -> Data:
        if args.task == "pretrain":
            return self._pretrain_data(args)
        return self._target_data(args)

    def _pretrain_data(self, args) -> Data:
        from keras_zoo.datasets.base import ArrayBatches, describe_workers
        from keras_zoo.datasets.genesis import fixed_pairs, genesis_pairs, pretraining_cubes

        cube_shape = tuple(args.input_size)
        train, val, source = pretraining_cubes(
            args.data, args.train_folds, args.valid_folds, cube_shape, args.cubes, args.seed
        )
        if args.validation_steps:
            val = val[: args.validation_steps * args.batch_size]
        stream = genesis_pairs(
            train, args.batch_size, args.steps_per_epoch, args.seed, workers=input_workers(args)
        )
        val_x, val_y = fixed_pairs(val, seed=args.seed + 1)
        return Data(
            train=stream,
            val=ArrayBatches(val_x, val_y, args.batch_size),
            description=f"{source}: {len(train)} train / {len(val)} validation cubes {cube_shape}, "
            f"{describe_workers(stream)}",
            extras={"panel_x": val_x[:4], "panel_y": val_y[:4], "val_x": val_x, "val_y": val_y},
        )

    def _target_data(self, args) -> Data:
        from keras_zoo.datasets.base import ArrayBatches, describe_workers
        from keras_zoo.datasets.genesis_targets import (
            read_target,
            split_target,
            synthetic_target,
            target_batches,
        )

        shape = tuple(args.input_size)
        if args.data:
            x, y = read_target(
                args.data, args.task, shape, args.cubes, args.modality, args.seed, classes=args.classes
            )
            source = f"{args.data}"
        else:
            x, y = synthetic_target(args.task, args.cubes, shape, args.seed)
            source = f"synthetic CT cubes ({'body masks' if args.task == 'segment' else 'nodule present'})"
        (x_train, y_train), (x_val, y_val) = split_target(
            x, y, args.task, args.seed, args.data or "synthetic"
        )
        steps = args.steps_per_epoch or max(1, len(x_train) // args.batch_size)
        train = target_batches(x_train, y_train, args.batch_size, steps, args.seed, input_workers(args))
        return Data(
            train=train,
            val=ArrayBatches(x_val, y_val, args.batch_size),
            description=f"{source}: {len(x_train)} train / {len(x_val)} validation samples {shape}, "
            f"{describe_workers(train)}",
            extras={"val_x": x_val, "val_y": y_val},
        )

    # ------------------------------------------------------------------------------------------ reports
    def evaluate(self, model, data, args):
        import numpy as np

        results = super().evaluate(model, data, args)
        if args.task == "pretrain":
            x, y = data.extras["val_x"], data.extras["val_y"]
            results["val_corrupted_mse"] = float(np.mean((x - y) ** 2))
        return results

    def save_previews(self, model, data, path, args):
        import keras

        from keras_zoo.callbacks.genesis_panels import save_restoration_panel, save_volume_panel

        x, y = data.extras["val_x"][:4], data.extras["val_y"][:4]
        prediction = keras.ops.convert_to_numpy(model(x, training=False))
        if args.task == "pretrain":
            save_restoration_panel(path, x, prediction, y)
        elif args.task == "segment" and args.classes == 1:
            save_volume_panel(path, {"image": x, "prediction": prediction, "label": y})

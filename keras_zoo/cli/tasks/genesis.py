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

import keras
import numpy as np

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.datasets import volumes
from keras_zoo.datasets.base import (
    ArrayBatches,
    SeededSamples,
    describe_workers,
    split_indices,
    worker_options,
)
from keras_zoo.datasets.genesis import fixed_pairs, genesis_pairs
from keras_zoo.errors import ConfigError, data_error, require_dir

log = logging.getLogger(__name__)

PRETRAIN_LR, FINETUNE_LR = 1.0, 1e-3
BODY_HU = -500.0  # synthetic segmentation target: body (tissue, bone) vs air and lung


class GenesisTask(Task):
    """Models Genesis: restoration pretraining (reference recipe) and target-task fine-tuning."""

    name = "genesis"
    handles_weights = True  # --weights goes into the genesis backbone by name (head by shape)
    defaults = {"epochs": 10_000, "batch_size": 6, "lr": None, "input_size": [64, 64, 32], "filters": 32}
    monitor = "val_loss"
    mode = "min"
    final_metric = "val_loss"

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
        g.add_argument("--panel-every", type=int, default=1, help="pretraining panel interval in epochs")

    # ------------------------------------------------------------------------------------------ model
    def _input_shape(self, args) -> tuple[int, int, int, int]:
        if len(args.input_size) != 3:
            raise ConfigError(f"--input-size needs rows cols depth for genesis, got {args.input_size}")
        return (*args.input_size, 1)

    def build_model(self, args: argparse.Namespace) -> keras.Model:
        from keras_zoo.models.genesis import genesis, genesis_classifier, genesis_segmenter
        from keras_zoo.models.genesis_weights import load_genesis_weights

        shape = self._input_shape(args)
        try:
            if args.task == "pretrain":
                model = genesis(shape, filters=args.filters, bn_momentum=args.bn_momentum)
            else:
                build = genesis_segmenter if args.task == "segment" else genesis_classifier
                model = build(
                    shape,
                    args.classes,
                    filters=args.filters,
                    freeze_encoder=args.freeze_encoder,
                    freeze_batch_norm=args.freeze_batch_norm,
                    bn_momentum=args.bn_momentum,
                )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if args.weights:
            load_genesis_weights(model, args.weights)  # logs what matched
        if args.task == "segment":
            self.monitor, self.mode, self.final_metric = "val_dice", "max", "val_dice"
        elif args.task == "classify":
            self.monitor, self.mode, self.final_metric = "val_auc", "max", "val_auc"
        return model

    def optimizer(self, args, steps_per_epoch):
        if args.task == "pretrain":
            return keras.optimizers.SGD(args.lr or PRETRAIN_LR, momentum=0.9)
        return keras.optimizers.Adam(args.lr or FINETUNE_LR)

    def loss(self, args):
        from keras_zoo.losses.segmentation import BCEDice

        if args.task == "pretrain":
            return "mse"
        if args.task == "segment":
            return BCEDice() if args.classes == 1 else "sparse_categorical_crossentropy"
        return "binary_crossentropy" if args.classes == 1 else "sparse_categorical_crossentropy"

    def metrics(self, args):
        from keras_zoo.metrics.segmentation import DiceCoefficient

        if args.task == "pretrain":
            return ["mae"]
        if args.task == "segment":
            return [DiceCoefficient(class_id=1, name="dice")]
        if args.classes == 1:
            return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def callbacks(self, args, data, output_dir):
        from keras_zoo.callbacks.genesis_panels import RestorationPanels

        watch = "val_loss" if data.val is not None else "loss"
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(watch, factor=0.5, patience=10, min_delta=1e-4, min_lr=1e-6),
            keras.callbacks.EarlyStopping(watch, patience=50),
        ]
        if args.task == "pretrain" and "panel_x" in data.extras:
            panels = os.path.join(output_dir, "panels")
            callbacks.append(
                RestorationPanels(data.extras["panel_x"], data.extras["panel_y"], panels, args.panel_every)
            )
        return callbacks

    # ------------------------------------------------------------------------------------------ data
    def load_data(self, args: argparse.Namespace) -> Data:
        if args.task == "pretrain":
            return self._pretrain_data(args)
        return self._target_data(args)

    def _pretrain_data(self, args) -> Data:
        cube_shape = tuple(args.input_size)
        if args.data:
            train = volumes.read_cube_folds(args.data, args.train_folds)
            val = volumes.read_cube_folds(args.data, args.valid_folds)
            if train.shape[1:] != cube_shape:
                raise data_error(args.data, f"cubes are {train.shape[1:]}, --input-size is {cube_shape}")
            source = f"cube files at {args.data} (folds {args.train_folds} / {args.valid_folds})"
        else:
            cubes = volumes.synthetic_cubes(args.cubes, seed=args.seed, cube_shape=cube_shape)
            train_idx, val_idx = split_indices(len(cubes), 0.25, args.seed)
            train, val = cubes[train_idx], cubes[val_idx]
            source = "synthetic CT cubes"
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
        shape = tuple(args.input_size)
        if args.data:
            x, y = self._read_target(args, shape)
            source = f"{args.data}"
        else:
            x, y = synthetic_target(args.task, args.cubes, shape, args.seed)
            source = f"synthetic CT cubes ({'body masks' if args.task == 'segment' else 'nodule present'})"
        train_idx, val_idx = split_indices(len(x), 0.25, args.seed)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise data_error(args.data or "synthetic", f"need at least 2 samples, got {len(x)}")
        x, y = x[..., None], (y[..., None] if args.task == "segment" else y)
        x_train, y_train = x[train_idx], y[train_idx]

        def make_sample(rng: np.random.Generator, item: int):
            return x_train[item], y_train[item]

        steps = args.steps_per_epoch or max(1, len(x_train) // args.batch_size)
        # Copying samples holds the GIL only briefly: threads, which spare the batches a trip through a pipe.
        train = SeededSamples(
            make_sample, len(x_train), args.batch_size, steps, args.seed, order="permutation",
            **worker_options(input_workers(args)),
        )  # fmt: skip
        return Data(
            train=train,
            val=ArrayBatches(x[val_idx], y[val_idx], args.batch_size),
            description=f"{source}: {len(train_idx)} train / {len(val_idx)} validation samples {shape}, "
            f"{describe_workers(train)}",
            extras={"val_x": x[val_idx], "val_y": y[val_idx]},
        )

    def _read_target(self, args, shape) -> tuple[np.ndarray, np.ndarray]:
        """``DIR/x.npy`` + ``DIR/y.npy``, or (segmentation) ``DIR/images/*.nii*`` + ``DIR/labels/<same names>``."""
        root = require_dir(args.data, "fine-tuning data folder")
        if os.path.isfile(os.path.join(root, "x.npy")):
            x = np.load(os.path.join(root, "x.npy"), allow_pickle=False).astype(np.float32)
            y = np.load(os.path.join(root, "y.npy"), allow_pickle=False).astype(np.float32)
            expected = (len(x), *shape) if args.task == "segment" else (len(x),)
            if x.shape[1:] != shape or y.shape != expected:
                raise data_error(root, f"x.npy {x.shape} / y.npy {y.shape} do not fit --input-size {shape}")
            return x, y
        if args.task != "segment":
            raise data_error(root, "classification data must be x.npy (n, rows, cols, depth) + y.npy (n,)")
        images = require_dir(os.path.join(root, "images"), "images folder")
        rng = np.random.default_rng(args.seed)
        xs, ys = [], []
        for name in sorted(os.listdir(images)):
            label_path = os.path.join(root, "labels", name)
            volume = volumes.hu_window(volumes.read_volume(os.path.join(images, name)), args.modality)
            label = np.rint(volumes.read_volume(label_path))
            try:
                x, y = volumes.extract_paired_cubes(volume, label, args.cubes, rng, shape)
            except ValueError as exc:
                raise data_error(label_path, str(exc)) from None
            xs.append(x)
            ys.append(y)
        if not xs:
            raise data_error(images, "no volumes")
        return np.concatenate(xs), np.concatenate(ys)

    # ------------------------------------------------------------------------------------------ reports
    def evaluate(self, model, data, args):
        results = super().evaluate(model, data, args)
        if args.task == "pretrain":
            x, y = data.extras["val_x"], data.extras["val_y"]
            results["val_corrupted_mse"] = float(np.mean((x - y) ** 2))
        return results

    def save_previews(self, model, data, path, args):
        from keras_zoo.callbacks.genesis_panels import save_volume_panel

        x, y = data.extras["val_x"][:4], data.extras["val_y"][:4]
        prediction = keras.ops.convert_to_numpy(model(x, training=False))
        if args.task == "pretrain":
            save_volume_panel(path, {"transformed": x, "restored": prediction, "original": y})
        elif args.task == "segment" and args.classes == 1:
            save_volume_panel(path, {"image": x, "prediction": prediction, "label": y})


def synthetic_target(task: str, count: int, shape, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic fine-tuning data: CT cubes with body masks (HU > -500), or with/without a bright nodule."""
    cubes = volumes.synthetic_cubes(count, seed=seed + 1000, cube_shape=shape)
    if task == "segment":
        return cubes, (cubes > volumes.hu_window(np.float32(BODY_HU))).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 2).astype(np.float32)
    grid = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), -1)
    for cube, label in zip(cubes, labels):
        if label:
            radius = rng.uniform(2, max(3, min(shape) / 5))
            centre = rng.uniform(radius, np.array(shape) - radius)
            cube[np.linalg.norm(grid - centre, axis=-1) < radius] = 0.6  # +200 HU nodule
    return cubes, labels

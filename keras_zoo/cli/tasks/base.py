"""The contract between the train CLI and one network's training recipe.

A :class:`Task` says how to build the model from the parsed arguments, where its data comes from
(a reader of the real format when ``--data`` is given, the embedded synthetic set otherwise), which
optimizer, loss, metrics and extra callbacks the reference uses, how to report final metrics and how to
draw preview panels. The CLI (``keras_zoo.cli.train``) does everything that is common: runtime set-up,
checkpoints, resume, timing, logs, summary.json and error handling.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import keras


@dataclasses.dataclass
class Data:
    """Training and validation data for one run.

    Attributes:
        train: ``keras.utils.PyDataset`` (or any object ``model.fit`` takes) yielding ``(x, y)`` batches.
            If it has a ``set_epoch(epoch)`` method the CLI calls it on ``--resume`` so that a resumed run
            sees the same batches as an uninterrupted one.
        val: validation batches, or None.
        description: one line for the log and summary.json, e.g. ``"ISBI 2012 PNG folders at DIR (20/5)"``.
        extras: task-specific arrays (e.g. validation images for preview panels).
    """

    train: Any
    val: Any
    description: str
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


def input_workers(args: argparse.Namespace) -> int | None:
    """``--workers`` of ``args``: the input-pipeline workers, None (every core but one) when not given.

    Namespaces built by hand, without the train CLI's parser, may lack the flag altogether.
    """
    return getattr(args, "workers", None)


class Task:
    """Training recipe of one registered network; subclass per model in ``keras_zoo/cli/tasks/``.

    Attributes:
        name: registry name of the model (the ``--model`` value).
        defaults: values of the common flags taken from the reference (``epochs``, ``steps_per_epoch``,
            ``batch_size``, ``lr``, ``input_size``, ``filters``, ...). Flags and ``-c config.yaml`` override them.
        monitor: the logged metric that picks the best checkpoint (``"val_loss"``, ``"val_dice"``, ...).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        final_metric: the metric printed as ``Final accuracy : <value>`` (Ascend perf-script format).
    """

    name: str = ""
    defaults: dict[str, Any] = {}
    monitor: str = "val_loss"
    mode: str = "min"
    final_metric: str = "val_loss"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Adds the model-specific flags (an argument group named after the model)."""

    def build_model(self, args: argparse.Namespace) -> keras.Model:
        raise NotImplementedError

    def load_data(self, args: argparse.Namespace) -> Data:
        raise NotImplementedError

    def optimizer(self, args: argparse.Namespace, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(learning_rate=args.lr)

    def loss(self, args: argparse.Namespace) -> Any:
        raise NotImplementedError

    def metrics(self, args: argparse.Namespace) -> list[Any]:
        return []

    def callbacks(
        self, args: argparse.Namespace, data: Data, output_dir: str
    ) -> list[keras.callbacks.Callback]:
        """Extra callbacks of the recipe (LR schedules on plateau, early stopping, per-epoch panels)."""
        return []

    def evaluate(self, model: keras.Model, data: Data, args: argparse.Namespace) -> dict[str, float]:
        """Final metrics on the validation split for summary.json; defaults to ``model.evaluate``."""
        if data.val is None:
            return {}
        results = model.evaluate(data.val, verbose=0, return_dict=True)
        return {f"val_{k}": float(v) for k, v in results.items()}

    def save_previews(self, model: keras.Model, data: Data, path: str, args: argparse.Namespace) -> None:
        """Writes a PNG of predictions beside their inputs and targets to ``path`` (optional)."""

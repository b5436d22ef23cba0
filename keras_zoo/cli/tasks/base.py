"""The contract between the train CLI and one network's training recipe.

A :class:`Task` is a recipe: it declares the network's flags and reference defaults, says what the
configured network is (:meth:`Task.model_config`, built through :func:`keras_zoo.registry.get_model`) and
what the runtime must know of it (:meth:`Task.traits`), where its data comes from, and which optimizer,
loss, metrics, extra callbacks and final report the reference uses. Each method reads ``args`` and the
:class:`Data` that :meth:`Task.load_data` returned; none of them keeps state on the task, so their order
is free but for the data. The CLI (``keras_zoo.cli.train``) does everything that is common.

Task modules import Keras, TensorFlow and the dataset readers inside their methods only: the CLI imports
them to parse the command line and to choose the runtime before Keras loads.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keras_zoo.runtime.traits import ModelTraits

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass
class Data:
    """Training and validation data for one run, and what the model and loss need to know of it.

    Attributes:
        train: ``keras.utils.PyDataset`` (or any object ``model.fit`` takes) yielding ``(x, y)`` batches.
            If it has a ``set_epoch(epoch)`` method the CLI calls it on ``--resume`` so that a resumed run
            sees the same batches as an uninterrupted one.
        val: validation batches, or None.
        description: one line for the log and summary.json, e.g. ``"ISBI 2012 PNG folders at DIR (20/5)"``.
        extras: task-specific arrays (e.g. validation images for preview panels).
        input_shape: the model input shape the data decided (e.g. CascadeNet's image size), or None when
            the arguments alone decide it.
        class_weights: per-class loss weights counted on the training labels, or None.
    """

    train: Any
    val: Any
    description: str
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_shape: tuple[int | None, ...] | None = None
    class_weights: list[float] | None = None


def input_workers(args: argparse.Namespace) -> int | None:
    """``--workers`` of ``args``: the input-pipeline workers, None (every core but one) when not given.

    Namespaces built by hand, without the train CLI's parser, may lack the flag altogether.
    """
    return getattr(args, "workers", None)


class Task:
    """Training recipe of one registered network; one subclass per module in ``keras_zoo/cli/tasks/``.

    Attributes:
        name: registry name of the model (the ``--model`` value).
        defaults: values of the common flags taken from the reference (``epochs``, ``steps_per_epoch``,
            ``batch_size``, ``lr``, ``input_size``, ``filters``, ...). Flags and ``-c config.yaml`` override them.
        preset_flags: factory argument -> (its value -> {flag destination: value}), for the flags that set a
            factory argument under another name, scale or layout (a registry preset sets them through it).
    """

    name: str = ""
    defaults: dict[str, Any] = {}
    preset_flags: dict[str, Callable[[Any], dict[str, Any]]] = {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Adds the model-specific flags (an argument group named after the model)."""

    def resolve_defaults(self, args: argparse.Namespace) -> None:
        """Fills defaults that depend on other flags (e.g. the batch size of a variant); runs first."""

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict[str, Any]:
        """The keyword arguments of the registered factory that builds this run's network.

        Args:
            args: the parsed arguments.
            data: what :meth:`load_data` returned (its ``input_shape``), or None when only ``args`` are
                known (a run rebuilt without its ``model.json``).

        Returns:
            ``{"variant": None or a registered variant, "config": factory keyword arguments}``; the config
            is JSON-serialisable (it is written to ``model.json``) and never names weight files.
        """
        raise NotImplementedError

    def traits(self, args: argparse.Namespace) -> ModelTraits:
        """What the runtime needs to know of the configured network (CPU kernels, XLA)."""
        return ModelTraits()

    def weights_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Options of the network's weights loader for ``--weights`` (e.g. CascadeNet's ``flip_kernels``)."""
        return {}

    def load_data(self, args: argparse.Namespace) -> Data:
        raise NotImplementedError

    def optimizer(self, args: argparse.Namespace, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        return keras.optimizers.Adam(learning_rate=args.lr)

    def loss(self, args: argparse.Namespace, data: Data) -> Any:
        raise NotImplementedError

    def metrics(self, args: argparse.Namespace) -> Any:
        return []

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        """``(metric, mode)``: the logged validation metric that picks the best checkpoint, and "min"/"max"."""
        return "val_loss", "min"

    def final_metric(self, args: argparse.Namespace) -> str:
        """The logged validation metric printed in the run's final line (Ascend perf-script format)."""
        return self.monitor(args)[0]

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

"""Per-epoch TensorBoard summaries written with the tensorboard package alone, without TensorFlow.

Keras' ``keras.callbacks.TensorBoard`` writes through ``tf.summary`` on every backend, so a JAX or torch run
that logs to TensorBoard imports TensorFlow, which then initialises CUDA beside the backend's own runtime
(docs/benchmarks.md, "Seeding and TensorBoard without TensorFlow"). :class:`EpochTensorBoard` writes the same
per-epoch summaries as Keras' callback does with ``update_freq="epoch"`` (the tags, steps, values and run
folders), through :class:`keras_zoo.callbacks.event_file.EventFile`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import keras

from keras_zoo.runtime.tensorflow_import import imports_tensorflow

if TYPE_CHECKING:
    from keras_zoo.callbacks.event_file import EventFile


class EpochTensorBoard(keras.callbacks.Callback):
    """Per-epoch TensorBoard summaries: what ``keras.callbacks.TensorBoard(update_freq="epoch")`` writes.

    At each epoch end, every training log ``name`` goes to ``<log_dir>/train`` as ``epoch_<name>`` and every
    ``val_<name>`` to ``<log_dir>/validation`` as ``epoch_<name>``, with the optimizer's learning rate as
    ``epoch_learning_rate``, at step ``epoch``; at the end of each evaluation its logs go to ``validation``
    as ``evaluation_<name>_vs_iterations`` at the optimizer's step count. Records are flushed as they are
    written (once per epoch and evaluation), so an interrupted run keeps its curves. At the start of
    training the model's Keras configuration goes to ``train`` as ``keras`` (TensorBoard's conceptual
    graph), except where serialising it would import TensorFlow (under JAX or torch with TensorFlow
    installed but not loaded). A resumed run adds new event files beside the old ones.

    The callback has no batch hooks, which keeps Keras' asynchronous callback dispatch
    (:mod:`keras_zoo.callbacks.stride`).

    Args:
        log_dir: folder of the ``train`` and ``validation`` run folders.
    """

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self._files: dict[str, EventFile] = {}

    def _file(self, run: str) -> EventFile:
        from keras_zoo.callbacks.event_file import EventFile  # the tensorboard package, on first use

        if run not in self._files:
            self._files[run] = EventFile(os.path.join(self.log_dir, run))
        return self._files[run]

    def on_train_begin(self, logs=None):
        graph_network = type(self.model).__name__ in ("Functional", "Sequential")
        if graph_network and not imports_tensorflow(keras.config.backend()):
            self._file("train").keras_model("keras", self.model.to_json(), 0)
            self._file("train").flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {name: value for name, value in logs.items() if not name.startswith("val_")}
        validation = {name[len("val_") :]: value for name, value in logs.items() if name.startswith("val_")}
        train.update(self._learning_rates())
        for run, values in (("train", train), ("validation", validation)):
            if values:
                for name, value in values.items():
                    self._file(run).scalar(f"epoch_{name}", float(value), epoch)
                self._file(run).flush()

    def on_test_end(self, logs=None):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is not None and logs:
            step = int(keras.ops.convert_to_numpy(iterations))
            for name, value in logs.items():
                self._file("validation").scalar(f"evaluation_{name}_vs_iterations", float(value), step)
            self._file("validation").flush()

    def _learning_rates(self) -> dict[str, float]:
        """``{"learning_rate": lr}`` of the optimizer (the inner one of a loss-scale optimizer)."""
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            return {}
        return {"learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate))}

    def on_train_end(self, logs=None):
        for events in self._files.values():
            events.close()
        self._files = {}

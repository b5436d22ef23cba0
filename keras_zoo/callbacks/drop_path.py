"""Linear drop-path schedule: raises the drop probability of every DropPath layer over training."""

from __future__ import annotations

import keras

from keras_zoo.layers.drop_path import DropPath


def drop_path_layers(model: keras.Model) -> list[DropPath]:
    """All :class:`DropPath` layers of ``model`` (searching nested models)."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, DropPath):
            found.append(layer)
    return found


class DropPathSchedule(keras.callbacks.Callback):
    """Sets ``progress = min(1, step / total_steps)`` on every DropPath layer (reference version 'v1').

    The step is the optimizer's iteration count, so a resumed run continues the ramp where it stopped.
    On the TensorFlow and PyTorch backends the value is updated before every batch; on JAX, whose trainer
    keeps the variables in its own state during an epoch, it is updated before every epoch.

    Args:
        total_steps: steps over which the keep probability ramps down (the whole run in the reference).
    """

    def __init__(self, total_steps: int):
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"DropPathSchedule: total_steps must be >= 1, got {total_steps}")
        self.total_steps = int(total_steps)
        self.layers: list[DropPath] = []

    def on_train_begin(self, logs=None):
        self.layers = drop_path_layers(self.model)
        self._update()

    def on_epoch_begin(self, epoch, logs=None):
        self._update()

    def on_train_batch_begin(self, batch, logs=None):
        if keras.config.backend() != "jax":
            self._update()

    def progress(self) -> float:
        """The schedule value at the optimizer's current step."""
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        return min(1.0, step / self.total_steps)

    def _update(self) -> None:
        if not self.layers:
            return
        value = self.progress()
        for layer in self.layers:
            layer.progress.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.layers:
            logs["drop_path_keep_prob"] = float(
                keras.ops.convert_to_numpy(self.layers[-1].current_keep_prob())
            )

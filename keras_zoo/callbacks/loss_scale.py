"""Dynamic loss-scale logging under float16 mixed precision (the Ascend ports print it as ScaleValue)."""

from __future__ import annotations

import logging

import keras

from keras_zoo.callbacks.stride import epoch_steps, steps_per_execution

log = logging.getLogger(__name__)


class LossScaleMonitor(keras.callbacks.Callback):
    """Logs the loss scale and the number of overflow-skipped steps of each epoch.

    A step whose gradients overflow is skipped by ``keras.optimizers.LossScaleOptimizer``: it halves the
    scale and leaves the inner optimizer, whose ``iterations`` count the applied updates, untouched. The
    monitor therefore counts an epoch's skipped steps as the steps run minus the growth of ``iterations``,
    reading the optimizer at the start and the end of each epoch only (the steps run are counted on the
    host in ``on_train_batch_begin``, which runs in the training loop and does not affect Keras'
    asynchronous dispatch of ``on_train_batch_end``). This is also right on JAX, whose trainer keeps the
    optimizer variables to itself until the epoch ends. Adds ``loss_scale`` and ``skipped_steps`` to the
    epoch logs. Does nothing when the optimizer does not scale the loss. Assumes no gradient accumulation
    (with it, ``iterations`` counts accumulated updates, not steps) and, for epochs of unknown length
    trained with ``steps_per_execution > 1``, a last chunk of full length.
    """

    def on_train_begin(self, logs=None):
        self.total_skipped = 0
        self._per_execution = steps_per_execution(self.model)

    def _optimizer(self) -> keras.optimizers.LossScaleOptimizer | None:
        optimizer = getattr(self.model, "optimizer", None)
        return optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else None

    @staticmethod
    def _read(variable) -> float:
        return float(keras.ops.convert_to_numpy(variable))

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = 0
        optimizer = self._optimizer()
        self._iterations = int(self._read(optimizer.iterations)) if optimizer is not None else 0

    def on_train_batch_begin(self, batch, logs=None):
        self._steps = batch + self._per_execution

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self._optimizer()
        if optimizer is None or logs is None:
            return
        steps = min(self._steps, epoch_steps(self.params) or self._steps)
        applied = int(self._read(optimizer.iterations)) - self._iterations
        skipped = max(0, steps - applied)
        scale = self._read(optimizer.dynamic_scale)
        self.total_skipped += skipped
        logs["loss_scale"] = scale
        logs["skipped_steps"] = skipped
        log.info("epoch %d ScaleValue %g, overflow-skipped steps %d", epoch + 1, scale, skipped)

"""Dynamic loss-scale logging under float16 mixed precision (the Ascend ports print it as ScaleValue)."""

from __future__ import annotations

import logging

import keras

log = logging.getLogger(__name__)


class LossScaleMonitor(keras.callbacks.Callback):
    """Logs the loss scale and the number of overflow-skipped steps of each epoch.

    A step whose gradients overflow is skipped by ``keras.optimizers.LossScaleOptimizer``, which halves the
    scale; the monitor counts the steps after which the scale went down. Adds ``loss_scale`` and
    ``skipped_steps`` to the epoch logs. Does nothing when the optimizer does not scale the loss.
    """

    def on_train_begin(self, logs=None):
        self.total_skipped = 0

    def _scale(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
        return None

    def on_epoch_begin(self, epoch, logs=None):
        self._skipped = 0
        self._previous = self._scale()

    def on_train_batch_end(self, batch, logs=None):
        if self._previous is None:
            return
        scale = self._scale()
        if scale < self._previous:
            self._skipped += 1
        self._previous = scale

    def on_epoch_end(self, epoch, logs=None):
        scale = self._scale()
        if scale is None or logs is None:
            return
        self.total_skipped += self._skipped
        logs["loss_scale"] = scale
        logs["skipped_steps"] = self._skipped
        log.info("epoch %d ScaleValue %g, overflow-skipped steps %d", epoch + 1, scale, self._skipped)

"""Stops training when the loss becomes NaN or Inf, checking every few steps without a per-step sync."""

from __future__ import annotations

import logging
import math
import threading

import keras

from keras_zoo.callbacks.stride import check_every, chunk_steps, crosses, epoch_steps, steps_per_execution

log = logging.getLogger(__name__)


class NaNGuard(keras.callbacks.Callback):
    """Sets ``model.stop_training`` when the training loss is NaN or Inf, every ``every`` steps and per epoch.

    A replacement for ``keras.callbacks.TerminateOnNaN`` that keeps Keras' asynchronous callback dispatch
    (``async_safe``; see :mod:`keras_zoo.callbacks.stride`). The ``loss`` Keras logs during an epoch is the
    running mean of the epoch's step losses, so one non-finite step makes it non-finite until the epoch
    ends: checking it after the chunk that completes every ``every``-th step, at the epoch's last chunk and
    at the end of the epoch misses no such step and stops training at most ``every`` steps (plus the steps
    already dispatched) after it.

    Args:
        every: steps between two checks within an epoch.
        monitor: log key checked (the training loss).

    Attributes:
        stopped_at: ``(epoch, step)`` (0-based epoch; steps done in it, None for the end-of-epoch check) of
            the check that stopped training, or None.
    """

    async_safe = True

    def __init__(self, every: int = 10, monitor: str = "loss"):
        super().__init__()
        self.every = check_every(every)
        self.monitor = monitor
        self.stopped_at: tuple[int, int | None] | None = None
        self._lock = threading.Lock()

    def on_train_begin(self, logs=None):
        self.stopped_at = None
        self._per_execution = steps_per_execution(self.model)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        steps = epoch_steps(self.params)
        start, end = chunk_steps(batch, self._per_execution, steps)
        if crosses(start, end, self.every) or end == steps:
            self._check(logs, f"step {end} of epoch {self._epoch + 1}", end)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"end of epoch {epoch + 1}", None)

    def _check(self, logs, where: str, step: int | None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if math.isfinite(value):
            return
        with self._lock:
            first = self.stopped_at is None
            if first:
                self.stopped_at = (self._epoch, step)
        # ``self._model``, not ``self.model``: on JAX the property re-attaches the trainer's state to the
        # model, which from a pool thread races with the steps the loop dispatches meanwhile (Keras 3.15
        # then fails with "Buffer has been deleted or donated").
        self._model.stop_training = True
        if first:
            log.error("%s: %s is %s, stopping training", where, self.monitor, value)

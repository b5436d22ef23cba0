"""HDF5 checkpoints of the last and the best epochs, written atomically, with the state to resume.

Each checkpoint is one legacy ``.h5`` weights file (loadable with plain ``model.load_weights(path)``)
that also holds, in the group ``keras_zoo_state``, the optimizer variables, the number of completed
epochs and the best monitored value so far. :func:`restore_checkpoint` puts all of it back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil

import h5py
import keras
import numpy as np

from keras_zoo.callbacks.stride import check_count
from keras_zoo.errors import WeightsError, require_file
from keras_zoo.io import atomic_path
from keras_zoo.weights import load_h5_weights, write_h5_weights_group

log = logging.getLogger(__name__)

STATE_GROUP = "keras_zoo_state"


@dataclasses.dataclass
class CheckpointState:
    """Training state stored beside the weights.

    Attributes:
        epoch: number of completed epochs (the epoch to continue at, 0-based).
        best: best monitored value so far (inf/-inf when none).
        monitor: name of the monitored log value.
        best_files: ``[(value, file name)]`` of the kept best checkpoints, best first.
    """

    epoch: int
    best: float
    monitor: str
    best_files: list[tuple[float, str]]


def write_checkpoint(path: str, model: keras.Model, state: CheckpointState, optimizer=None) -> None:
    """Writes weights, optimizer variables and ``state`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_h5_weights_group(f, model)
            g = f.create_group(STATE_GROUP)
            g.attrs["state"] = json.dumps(dataclasses.asdict(state))
            if optimizer is not None and optimizer.built:
                opt = g.create_group("optimizer")
                for i, variable in enumerate(optimizer.variables):
                    ds = opt.create_dataset(f"{i:05d}", data=keras.ops.convert_to_numpy(variable.value))
                    ds.attrs["name"] = variable.path


def read_checkpoint_state(path: str) -> CheckpointState:
    """Reads the training state of a checkpoint written by :class:`HDF5Checkpoint`."""
    path = require_file(path, "checkpoint")
    try:
        with h5py.File(path, "r") as f:
            if STATE_GROUP not in f:
                raise WeightsError(f"{path}: not a keras_zoo checkpoint (no training state inside)")
            raw = json.loads(f[STATE_GROUP].attrs["state"])
    except OSError as exc:
        raise WeightsError(f"{path}: unreadable checkpoint ({exc})") from None
    raw["best_files"] = [tuple(item) for item in raw["best_files"]]
    return CheckpointState(**raw)


def restore_checkpoint(model: keras.Model, path: str) -> CheckpointState:
    """Loads weights and optimizer state from ``path`` into a compiled ``model``.

    Returns:
        The stored :class:`CheckpointState`; training continues at ``state.epoch``.
    """
    state = read_checkpoint_state(path)
    load_h5_weights(model, path, by_name=False)  # same architecture: layer order, immune to auto-names
    optimizer = model.optimizer
    with h5py.File(path, "r") as f:
        opt = f[STATE_GROUP].get("optimizer")
        if opt is None or optimizer is None:
            return state
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        values = [opt[key][()] for key in sorted(opt)]
        if len(values) != len(optimizer.variables):
            raise WeightsError(
                f"{path}: optimizer state has {len(values)} variables, the optimizer has "
                f"{len(optimizer.variables)} (was the optimizer changed?)"
            )
        for variable, value in zip(optimizer.variables, values):
            if tuple(variable.shape) != tuple(np.shape(value)):
                raise WeightsError(f"{path}: optimizer variable {variable.path} has another shape")
            variable.assign(value)
    return state


class HDF5Checkpoint(keras.callbacks.Callback):
    """Saves ``last.h5`` every epoch and ``best.h5`` (plus the top-k best epochs) by a monitored value.

    Files in ``directory``: ``last.h5``, ``best.h5`` and ``best-epoch{E:04d}.h5`` for the ``keep_best`` best
    epochs of the run (an epoch that ranks among them without beating ``best.h5`` is kept too). Every file is written to a temporary name and renamed, so a crash at any moment leaves the
    previous complete file in place. An epoch whose loss is NaN/Inf is not saved.

    Args:
        directory: output folder.
        monitor: log key to rank epochs by; falls back to ``"loss"`` when absent from the logs.
        mode: ``"min"`` or ``"max"``.
        keep_best: how many best-epoch files to keep (0 keeps only ``best.h5``).
        initial_state: state of a resumed run (from :func:`restore_checkpoint`).
    """

    def __init__(
        self,
        directory: str,
        monitor: str = "val_loss",
        mode: str = "min",
        keep_best: int = 3,
        initial_state: CheckpointState | None = None,
    ):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.keep_best = check_count(keep_best, "keep_best", minimum=0)
        self.directory = directory
        self.monitor = monitor
        self.mode = mode
        self.initial_state = initial_state

    @property
    def last_path(self) -> str:
        return os.path.join(self.directory, "last.h5")

    @property
    def best_path(self) -> str:
        return os.path.join(self.directory, "best.h5")

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        worst = math.inf if self.mode == "min" else -math.inf
        state = self.initial_state
        self.best = state.best if state else worst
        self.best_files = list(state.best_files) if state else []

    def _better(self, value: float, than: float) -> bool:
        return value < than if self.mode == "min" else value > than

    def _ranks_among_kept(self, value: float) -> bool:
        """Whether an epoch of ``value`` is one of the ``keep_best`` best so far (ties: the earlier stays)."""
        if not self.keep_best:
            return False
        return len(self.best_files) < self.keep_best or self._better(value, self.best_files[-1][0])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            log.error("epoch %d: loss is %s, checkpoint not written (last good one kept)", epoch + 1, loss)
            return
        key = self.monitor if self.monitor in logs else "loss"
        value = float(logs.get(key, math.nan))
        improved = math.isfinite(value) and self._better(value, self.best)
        kept = math.isfinite(value) and self._ranks_among_kept(value)
        dropped: list[tuple[float, str]] = []
        name = f"best-epoch{epoch + 1:04d}.h5"
        if improved:
            self.best = value
        if kept:
            ranked = sorted(self.best_files + [(value, name)], key=lambda t: t[0], reverse=self.mode == "max")
            self.best_files, dropped = ranked[: self.keep_best], ranked[self.keep_best :]
        state = CheckpointState(epoch + 1, self.best, key, self.best_files)
        try:
            write_checkpoint(self.last_path, self.model, state, self.model.optimizer)
            if improved:
                self._copy(self.last_path, self.best_path)
            if kept:
                self._copy(self.last_path, os.path.join(self.directory, name))
        except OSError as exc:
            raise WeightsError(
                f"{self.directory}: could not write checkpoint ({exc}); previous files kept"
            ) from None
        for _, old in dropped:
            path = os.path.join(self.directory, old)
            if os.path.exists(path):
                os.remove(path)

    @staticmethod
    def _copy(source: str, destination: str) -> None:
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)

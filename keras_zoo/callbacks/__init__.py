"""Training callbacks: atomic resumable HDF5 checkpoints, step timing, NaN guard, loss-scale monitoring,
schedules, panels; those with batch hooks keep Keras' asynchronous callback dispatch (see ``stride``)."""

from keras_zoo.callbacks.checkpoint import (
    CheckpointState,
    HDF5Checkpoint,
    read_checkpoint_state,
    restore_checkpoint,
)
from keras_zoo.callbacks.drop_path import DropPathSchedule
from keras_zoo.callbacks.loss_scale import LossScaleMonitor
from keras_zoo.callbacks.nan_guard import NaNGuard
from keras_zoo.callbacks.prediction_panels import PredictionPanels
from keras_zoo.callbacks.tensorboard import EpochTensorBoard
from keras_zoo.callbacks.timing import EpochClock, StepTimer

__all__ = [
    "CheckpointState",
    "DropPathSchedule",
    "EpochClock",
    "EpochTensorBoard",
    "HDF5Checkpoint",
    "LossScaleMonitor",
    "NaNGuard",
    "PredictionPanels",
    "StepTimer",
    "read_checkpoint_state",
    "restore_checkpoint",
]

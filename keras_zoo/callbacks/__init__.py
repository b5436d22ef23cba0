"""Training callbacks: atomic resumable HDF5 checkpoints, step timing, loss-scale monitoring."""

from keras_zoo.callbacks.checkpoint import (
    CheckpointState,
    HDF5Checkpoint,
    read_checkpoint_state,
    restore_checkpoint,
)
from keras_zoo.callbacks.loss_scale import LossScaleMonitor
from keras_zoo.callbacks.timing import StepTimer

__all__ = [
    "CheckpointState",
    "HDF5Checkpoint",
    "LossScaleMonitor",
    "StepTimer",
    "read_checkpoint_state",
    "restore_checkpoint",
]

"""Training callbacks: atomic resumable HDF5 checkpoints, step timing, loss-scale monitoring, schedules, panels."""

from keras_zoo.callbacks.checkpoint import (
    CheckpointState,
    HDF5Checkpoint,
    read_checkpoint_state,
    restore_checkpoint,
)
from keras_zoo.callbacks.drop_path import DropPathSchedule
from keras_zoo.callbacks.genesis_panels import RestorationPanels
from keras_zoo.callbacks.loss_scale import LossScaleMonitor
from keras_zoo.callbacks.reconstruction_panels import ReconstructionPanels
from keras_zoo.callbacks.timing import StepTimer

__all__ = [
    "CheckpointState",
    "DropPathSchedule",
    "HDF5Checkpoint",
    "LossScaleMonitor",
    "ReconstructionPanels",
    "RestorationPanels",
    "StepTimer",
    "read_checkpoint_state",
    "restore_checkpoint",
]

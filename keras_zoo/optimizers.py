"""Learning-rate schedules of the reference recipes (keras LearningRateSchedule subclasses)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_zoo")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then staircase exponential decay, with a floor (tensorflow/tpu AmoebaNet).

    ``lr(step) = initial * step / warmup_steps`` while ``step < warmup_steps``, else
    ``initial * decay_rate ** floor(step / decay_steps)``; never below ``min_ratio * initial``. As in the
    reference, the decay counts steps from 0, not from the end of the warm-up.

    Args:
        initial_learning_rate: peak learning rate.
        decay_steps: steps per decay (steps per epoch times epochs per decay).
        decay_rate: factor per decay.
        warmup_steps: steps of linear warm-up (0: none).
        min_ratio: floor as a fraction of the initial rate (1e-4 in the reference).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        warmup_steps: int = 0,
        min_ratio: float = 1e-4,
    ):
        if initial_learning_rate <= 0:
            raise ValueError(f"initial_learning_rate must be > 0, got {initial_learning_rate}")
        if decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {decay_steps}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)
        self.min_ratio = float(min_ratio)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decayed = self.initial_learning_rate * ops.power(self.decay_rate, ops.floor(step / self.decay_steps))
        if self.warmup_steps:
            warmup = self.initial_learning_rate * step / self.warmup_steps
            decayed = ops.where(step < self.warmup_steps, warmup, decayed)
        return ops.maximum(decayed, self.min_ratio * self.initial_learning_rate)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "warmup_steps": self.warmup_steps,
            "min_ratio": self.min_ratio,
        }

"""The arguments of a Keras model's JAX training step, for lowering it outside ``fit``."""

from __future__ import annotations

import keras


def trainer_state(model: keras.Model) -> tuple[list, list, list, list]:
    """The state Keras' JAX trainer passes to ``model.train_step``: the values of the trainable,
    non-trainable, optimizer and metrics variables, in that order. Compile the model and build its
    optimizer first; then ``jax.jit(model.train_step).lower(trainer_state(model), (x, y))``."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )

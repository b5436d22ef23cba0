"""Per-sample drop-path (stochastic depth) with a keep probability that follows a training schedule.

In training, each sample's whole input is kept with probability ``keep`` and divided by ``keep`` (so the
expectation is unchanged) or zeroed; at inference the layer is the identity. As in the AmoebaNet reference
(drop-connect version 'v1'), the keep probability ramps linearly from 1 to the target ``keep_prob`` over
training: ``keep = 1 - progress * (1 - keep_prob)``, where ``progress`` in [0, 1] is a non-trainable scalar
variable that :class:`keras_zoo.callbacks.drop_path.DropPathSchedule` sets from the training step.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_zoo")
class DropPath(keras.layers.Layer):
    """Drops whole samples of its input with a scheduled probability (identity at inference).

    Args:
        keep_prob: target keep probability in (0, 1], reached when ``progress`` is 1.
        seed: optional seed of the random draws.
        **kwargs: ``name``, ``dtype`` and other ``Layer`` arguments.

    Call args:
        inputs: tensor (batch, ...).
        training: drop paths only when True.

    Attributes:
        progress: non-trainable scalar variable in [0, 1] (0 at creation, so nothing is dropped until a
            schedule raises it; set it to 1 for the constant target keep probability).
    """

    def __init__(self, keep_prob: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"DropPath: keep_prob must be in (0, 1], got {keep_prob}")
        self.keep_prob = float(keep_prob)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        self.progress = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="float32", name="progress"
        )
        self.built = True

    def current_keep_prob(self):
        """The keep probability at the current ``progress`` (float32 scalar tensor)."""
        progress = ops.clip(ops.convert_to_tensor(self.progress), 0.0, 1.0)
        return 1.0 - progress * (1.0 - self.keep_prob)

    def call(self, inputs, training=None):
        if not training or self.keep_prob >= 1.0:
            return inputs
        keep = ops.cast(self.current_keep_prob(), inputs.dtype)
        noise_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        uniform = keras.random.uniform(noise_shape, dtype=inputs.dtype, seed=self.seed_generator)
        mask = ops.floor(keep + uniform)
        return inputs / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"keep_prob": self.keep_prob, "seed": self.seed})
        return config

"""One callback for every "predict a few validation samples every N epochs and draw them" panel."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_zoo.callbacks.stride import check_every

Draw = Callable[[str, Any, np.ndarray, np.ndarray], None]


class PredictionPanels(keras.callbacks.Callback):
    """Saves ``<output_dir>/epoch_XXXX.png`` after every ``every`` epochs.

    Args:
        inputs: model inputs of a few samples (an array or a tuple of arrays, batch first).
        target: their targets (n, ...).
        draw: ``draw(path, inputs, prediction, target)`` writes the PNG (e.g.
            :func:`keras_zoo.callbacks.genesis_panels.save_volume_panel` or
            :func:`keras_zoo.callbacks.reconstruction_panels.save_reconstruction_panel` wrapped).
        output_dir: folder receiving the PNGs.
        every: epoch interval (1: every epoch).
    """

    def __init__(self, inputs, target: np.ndarray, draw: Draw, output_dir: str, every: int = 1):
        super().__init__()
        self.every = check_every(every)
        self.inputs = inputs
        self.target = target
        self.draw = draw
        self.output_dir = output_dir

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        prediction = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        self.draw(
            os.path.join(self.output_dir, f"epoch_{epoch + 1:04d}.png"), self.inputs, prediction, self.target
        )

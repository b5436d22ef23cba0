"""PNG panels of 3D restoration: (transformed, restored, original) middle depth slices, one row per sample."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_zoo.callbacks.panels import save_image_grid


def save_volume_panel(path: str, columns: dict[str, np.ndarray], max_rows: int = 4) -> None:
    """Writes a grid of middle depth slices: one column per named array (n, rows, cols, depth[, 1]).

    Args:
        path: PNG file to write (atomically).
        columns: title -> array; all arrays share n, rows, cols and depth. Values shown in [0, 1].
        max_rows: samples shown.
    """
    arrays = [np.asarray(a).reshape(a.shape[:4]) for a in columns.values()]
    middle = {
        title: array[..., array.shape[3] // 2].transpose(0, 2, 1) for title, array in zip(columns, arrays)
    }
    save_image_grid(path, middle, min(max_rows, len(arrays[0])), cell_inches=2.2, origin="lower")


class RestorationPanels(keras.callbacks.Callback):
    """Saves ``panels/epoch_XXXX.png`` of (transformed, restored, original) after every ``every`` epochs.

    Args:
        transformed: corrupted inputs (n, rows, cols, depth, 1), a few samples.
        original: their targets, same shape.
        output_dir: folder receiving ``epoch_XXXX.png``.
        every: epoch interval (1: every epoch).
    """

    def __init__(self, transformed: np.ndarray, original: np.ndarray, output_dir: str, every: int = 1):
        super().__init__()
        if transformed.shape != original.shape or transformed.ndim != 5:
            raise ValueError(
                f"need equal (n, rows, cols, depth, 1) arrays, got {transformed.shape} and {original.shape}"
            )
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.transformed = transformed
        self.original = original
        self.output_dir = output_dir
        self.every = every

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        restored = keras.ops.convert_to_numpy(self.model(self.transformed, training=False))
        path = os.path.join(self.output_dir, f"epoch_{epoch + 1:04d}.png")
        save_volume_panel(
            path, {"transformed": self.transformed, "restored": restored, "original": self.original}
        )

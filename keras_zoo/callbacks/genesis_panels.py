"""PNG panels of 3D restoration: (transformed, restored, original) middle depth slices, one row per sample."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_zoo.io import atomic_path


def save_volume_panel(path: str, columns: dict[str, np.ndarray], max_rows: int = 4) -> None:
    """Writes a grid of middle depth slices: one column per named array (n, rows, cols, depth[, 1]).

    Args:
        path: PNG file to write (atomically).
        columns: title -> array; all arrays share n, rows, cols and depth. Values shown in [0, 1].
        max_rows: samples shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    arrays = [np.asarray(a).reshape(a.shape[:4]) for a in columns.values()]
    rows = min(max_rows, len(arrays[0]))
    fig, axes = plt.subplots(rows, len(arrays), figsize=(2.2 * len(arrays), 2.2 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, array) in enumerate(zip(columns, arrays)):
            axes[r, c].imshow(
                array[r, :, :, array.shape[3] // 2].T, cmap="gray", vmin=0, vmax=1, origin="lower"
            )
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


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

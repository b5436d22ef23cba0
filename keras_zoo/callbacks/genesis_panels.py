"""PNG panels of 3D restoration: (transformed, restored, original) middle depth slices, one row per sample."""

from __future__ import annotations

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


def save_restoration_panel(path: str, transformed, restored, original, max_rows: int = 4) -> None:
    """A (transformed, restored, original) panel of middle depth slices, one row per cube (n, r, c, d[, 1]);
    the ``draw`` of :class:`keras_zoo.callbacks.prediction_panels.PredictionPanels` for restoration."""
    columns = {"transformed": transformed, "restored": restored, "original": original}
    save_volume_panel(path, columns, max_rows)

"""PNG panels of MR reconstruction: zero-filled | reconstruction | reference | error map, one row per sample."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_zoo.callbacks.panels import save_image_grid

ERROR_GAIN = 5  # the error map shows 5 x |reconstruction - reference| (images have max magnitude 1)


def _magnitude(x: np.ndarray) -> np.ndarray:
    """|x| of 2-channel arrays (n, [frames,] H, W, 2); the middle frame of dynamic ones -> (n, H, W)."""
    magnitude = np.sqrt(np.sum(np.square(np.asarray(x, dtype=np.float32)), axis=-1))
    if magnitude.ndim == 4:
        magnitude = magnitude[:, magnitude.shape[1] // 2]
    return magnitude


def save_reconstruction_panel(path: str, zero_filled, reconstruction, reference, max_rows: int = 4) -> None:
    """Writes the panel grid for 2-channel arrays (n, [frames,] H, W, 2) (dynamic: the middle frame).

    Args:
        path: PNG file to write (atomically).
        zero_filled: network inputs.
        reconstruction: network outputs.
        reference: targets.
        max_rows: samples shown.
    """
    zf, rec, ref = (_magnitude(a) for a in (zero_filled, reconstruction, reference))
    error = ERROR_GAIN * np.abs(_magnitude(np.asarray(reconstruction) - np.asarray(reference)))
    error_title = f"error x{ERROR_GAIN}"
    columns = {"zero-filled": zf, "reconstruction": rec, "reference": ref, error_title: error}
    save_image_grid(path, columns, min(max_rows, len(zf)), cmaps={error_title: "inferno"})


class ReconstructionPanels(keras.callbacks.Callback):
    """Saves ``<output_dir>/epoch_XXXX.png`` reconstruction panels every ``every`` epochs.

    Args:
        inputs: CascadeNet inputs ``(image, kspace, mask)`` of a few samples (n, [frames,] H, W, 2).
        reference: their targets, same shape as ``inputs[0]``.
        output_dir: folder receiving the PNGs.
        every: epoch interval (1: every epoch).
    """

    def __init__(
        self, inputs: tuple[np.ndarray, ...], reference: np.ndarray, output_dir: str, every: int = 1
    ):
        super().__init__()
        if len(inputs) != 3 or any(np.shape(a) != np.shape(reference) for a in inputs):
            raise ValueError("inputs must be (image, kspace, mask) of the reference's shape")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.inputs = inputs
        self.reference = reference
        self.output_dir = output_dir
        self.every = every

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        reconstruction = keras.ops.convert_to_numpy(self.model(self.inputs, training=False))
        path = os.path.join(self.output_dir, f"epoch_{epoch + 1:04d}.png")
        save_reconstruction_panel(path, self.inputs[0], reconstruction, self.reference)

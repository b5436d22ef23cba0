"""Run reports: training-curve plots and optional TensorBoard."""

from __future__ import annotations

import csv
import importlib.util
import math
import os

from keras_zoo.io import atomic_path


def tensorboard_available() -> bool:
    """Whether the tensorboard package, which :class:`keras_zoo.callbacks.EpochTensorBoard` writes with, is
    installed."""
    return importlib.util.find_spec("tensorboard") is not None


def read_history(path: str) -> dict[str, list[float]]:
    """Reads a Keras ``CSVLogger`` file into ``{column: values}`` (non-numeric cells become NaN)."""
    columns: dict[str, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(math.nan)
    return columns


def plot_history(csv_path: str, png_path: str) -> bool:
    """Plots every logged metric against the epoch, training and validation on the same axes.

    Returns:
        False (and writes nothing) when the CSV is missing or empty.
    """
    if not os.path.exists(csv_path):
        return False
    history = read_history(csv_path)
    epochs = history.pop("epoch", None)
    if not epochs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timing = {
        "step_time_ms",
        "samples_per_sec",
        "epoch_time_s",
        "learning_rate",
        "loss_scale",
        "skipped_steps",
    }
    names = [k for k in history if not k.startswith("val_") and k not in timing]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    x = [e + 1 for e in epochs]
    for ax, name in zip(axes[0], names):
        ax.plot(x, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(x, history[f"val_{name}"], marker="o", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return True

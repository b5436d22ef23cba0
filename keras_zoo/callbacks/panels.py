"""A grid of grayscale images written as one PNG: the common part of every preview and panel writer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keras_zoo.io import atomic_path


def _write_png(fig, path: str) -> None:
    """Lays out the matplotlib figure ``fig``, writes it to the PNG ``path`` atomically and closes it."""
    from matplotlib import pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def save_image_grid(
    path: str,
    columns: Mapping[str, Sequence[np.ndarray]],
    rows: int,
    cell_inches: float = 2.4,
    cmaps: Mapping[str, str] | None = None,
    origin: str = "upper",
) -> None:
    """Writes ``rows`` rows of 2D images, one titled column per entry of ``columns``, atomically.

    Args:
        path: PNG file to write.
        columns: title -> images (at least ``rows`` arrays of shape (H, W), values shown in [0, 1]).
        rows: rows to draw.
        cell_inches: size of one image in the figure.
        cmaps: title -> matplotlib colormap (default gray).
        origin: imshow origin ("lower" for volumes shown with the first axis horizontal).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cmaps = cmaps or {}
    size = (cell_inches * len(columns), cell_inches * rows)
    fig, axes = plt.subplots(rows, len(columns), figsize=size, squeeze=False)
    for r in range(rows):
        for c, (title, images) in enumerate(columns.items()):
            axes[r, c].imshow(images[r], cmap=cmaps.get(title, "gray"), vmin=0, vmax=1, origin=origin)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
    _write_png(fig, path)


def save_captioned_images(
    path: str,
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    columns: int = 4,
    cell_inches: float = 2.4,
) -> None:
    """Writes RGB images (H, W, 3) with values in [0, 1], each above its caption, in rows of ``columns``,
    atomically to the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(cell_inches * columns, cell_inches * rows), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < len(images):
            ax.imshow(np.clip(images[index], 0.0, 1.0))
            ax.set_title(captions[index], fontsize=8)
    _write_png(fig, path)

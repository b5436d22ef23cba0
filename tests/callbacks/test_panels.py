"""save_image_grid: one PNG with a titled column per image list; volume and reconstruction panels use it."""

import numpy as np
from PIL import Image

from keras_zoo.callbacks.genesis_panels import save_volume_panel
from keras_zoo.callbacks.panels import save_image_grid
from keras_zoo.callbacks.reconstruction_panels import save_reconstruction_panel


def test_grid_size_follows_rows_and_columns(tmp_path):
    images = np.random.default_rng(0).random((3, 8, 8))
    save_image_grid(str(tmp_path / "g.png"), {"a": images, "b": images}, rows=3, cell_inches=1.0)
    width, height = Image.open(tmp_path / "g.png").size
    assert (width, height) == (2 * 80, 3 * 80)  # 1-inch cells at 80 dpi


def test_volume_and_reconstruction_panels_are_written(tmp_path):
    cubes = np.random.default_rng(1).random((5, 8, 8, 4, 1)).astype("float32")
    save_volume_panel(str(tmp_path / "v.png"), {"in": cubes, "out": cubes, "ref": cubes}, max_rows=2)
    assert Image.open(tmp_path / "v.png").size == (3 * 176, 2 * 176)  # 2.2-inch cells
    images = np.random.default_rng(2).random((2, 8, 8, 2)).astype("float32")
    save_reconstruction_panel(str(tmp_path / "r.png"), images, images, images)
    assert Image.open(tmp_path / "r.png").size == (4 * 192, 2 * 192)  # 4 columns of 2.4-inch cells

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


def test_prediction_panels_draw_the_models_prediction_every_n_epochs(tmp_path):
    import keras

    from keras_zoo.callbacks import PredictionPanels

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones", use_bias=False)(inputs))
    x = np.arange(12, dtype="float32").reshape(3, 4)
    drawn = []

    def draw(path, batch, prediction, target):
        drawn.append((path, prediction))
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(path)

    (tmp_path / "panels").mkdir()
    callback = PredictionPanels(x, x[:, :2], draw, str(tmp_path / "panels"), every=2)
    callback.set_model(model)
    for epoch in range(4):
        callback.on_epoch_end(epoch)
    assert [p for p, _ in drawn] == [str(tmp_path / "panels" / f"epoch_{e:04d}.png") for e in (2, 4)]
    np.testing.assert_allclose(drawn[0][1], np.repeat(x.sum(1, keepdims=True), 2, axis=1))

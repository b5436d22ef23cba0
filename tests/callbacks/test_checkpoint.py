import os

import h5py
import keras
import numpy as np
import pytest

from keras_zoo.callbacks import HDF5Checkpoint, read_checkpoint_state, restore_checkpoint
from keras_zoo.errors import WeightsError
from keras_zoo.io import atomic_path


def _model():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    return x, x.sum(1, keepdims=True)


class _ValueLogger(keras.callbacks.Callback):
    """Feeds a fixed sequence of monitored values into the logs."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]


def test_best_and_last_and_top_k(tmp_path):
    keras.utils.set_random_seed(0)
    model, (x, y) = _model(), _data()
    scores = [0.5, 0.3, 0.4, 0.1, 0.2]
    ckpt = HDF5Checkpoint(str(tmp_path), monitor="score", mode="min", keep_best=2)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[_ValueLogger(scores), ckpt])
    files = sorted(os.listdir(tmp_path))
    # the two lowest scores, 0.1 (epoch 4) and 0.2 (epoch 5, which ranks second without beating epoch 4)
    assert files == ["best-epoch0004.h5", "best-epoch0005.h5", "best.h5", "last.h5"]
    assert read_checkpoint_state(str(tmp_path / "best-epoch0005.h5")).epoch == 5
    state = read_checkpoint_state(str(tmp_path / "last.h5"))
    assert state.best_files == [
        (pytest.approx(0.1), "best-epoch0004.h5"),
        (pytest.approx(0.2), "best-epoch0005.h5"),
    ]
    assert state.epoch == 5 and state.best == pytest.approx(0.1) and state.monitor == "score"
    assert read_checkpoint_state(str(tmp_path / "best.h5")).epoch == 4
    # a checkpoint loads with plain load_weights into a freshly built model
    fresh = _model()
    fresh.load_weights(str(tmp_path / "last.h5"))
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_the_kept_epochs_are_the_k_best_of_the_run(tmp_path, mode):
    """Over a run, then resumed: the best-epoch files are the keep_best best epochs by an independent sort."""
    scores = [0.7, 0.2, 0.9, 0.4, 0.4, 0.1, 0.8, 0.3]
    model, (x, y) = _model(), _data()
    first = HDF5Checkpoint(str(tmp_path), monitor="score", mode=mode, keep_best=3)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[_ValueLogger(scores), first])
    state = restore_checkpoint(model, str(tmp_path / "last.h5"))
    resumed = HDF5Checkpoint(str(tmp_path), monitor="score", mode=mode, keep_best=3, initial_state=state)
    model.fit(x, y, epochs=8, initial_epoch=5, verbose=0, callbacks=[_ValueLogger(scores), resumed])
    order = sorted(
        range(8), key=lambda e: scores[e] if mode == "min" else -scores[e]
    )  # stable: ties by epoch
    expected = sorted(f"best-epoch{e + 1:04d}.h5" for e in order[:3])
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("best-epoch")) == expected
    best_epoch = order[0] + 1
    assert read_checkpoint_state(str(tmp_path / "best.h5")).epoch == best_epoch


def test_resume_restores_optimizer_state_and_epoch(tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    straight = _model()
    straight.fit(x, y, epochs=4, batch_size=8, shuffle=False, verbose=0)

    keras.utils.set_random_seed(0)
    first = _model()
    first.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[HDF5Checkpoint(str(tmp_path), "loss")],
    )
    resumed = _model()
    state = restore_checkpoint(resumed, str(tmp_path / "last.h5"))
    assert state.epoch == 2
    assert int(resumed.optimizer.iterations) == int(first.optimizer.iterations) == 4
    for a, b in zip(resumed.optimizer.variables, first.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    resumed.fit(x, y, epochs=4, initial_epoch=state.epoch, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    model, (x, y) = _model(), _data()
    ckpt = HDF5Checkpoint(str(tmp_path), "loss")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ckpt])
    before = open(tmp_path / "last.h5", "rb").read()

    def broken(group, model):
        group.create_group("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("keras_zoo.callbacks.checkpoint.write_h5_weights_group", broken)
    with pytest.raises(WeightsError, match="could not write checkpoint"):
        model.fit(x, y, epochs=2, initial_epoch=1, verbose=0, callbacks=[ckpt])
    assert open(tmp_path / "last.h5", "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["best-epoch0001.h5", "best.h5", "last.h5"]
    assert read_checkpoint_state(str(tmp_path / "last.h5")).epoch == 1


def test_nan_epoch_is_not_saved(tmp_path):
    model, (x, y) = _model(), _data()
    ckpt = HDF5Checkpoint(str(tmp_path), "loss")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ckpt])
    before = open(tmp_path / "last.h5", "rb").read()
    ckpt.on_epoch_end(1, {"loss": float("nan")})
    assert open(tmp_path / "last.h5", "rb").read() == before


def test_atomic_path_removes_temp_on_error(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with h5py.File(tmp, "w") as f:
                f["x"] = np.zeros(3)
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(WeightsError, match="not a keras_zoo checkpoint"):
        read_checkpoint_state(str(path))

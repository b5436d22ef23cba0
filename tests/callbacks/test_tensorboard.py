import glob
import os

import keras
import numpy as np
import pytest

from keras_zoo.callbacks import EpochTensorBoard

pytestmark = pytest.mark.backend_agnostic

tf = pytest.importorskip("tensorflow")  # Keras' TensorBoard writes through tf.summary on every backend


def _events(folder):
    found = []
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        found.extend(tf.compat.v1.train.summary_iterator(path))
    return found


def _tags(folder):
    return sorted({(value.tag, event.step) for event in _events(folder) for value in event.summary.value})


def test_writes_what_keras_tensorboard_writes(tmp_path):
    x, y = np.zeros((16, 4), "float32"), np.zeros((16, 1), "float32")
    for name, callback in (("keras", keras.callbacks.TensorBoard), ("epoch", EpochTensorBoard)):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        logs = str(tmp_path / name)
        model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), callbacks=[callback(logs)], verbose=0)
    train = _tags(tmp_path / "epoch" / "train")
    assert ("epoch_loss", 0) in train and ("epoch_loss", 1) in train
    assert ("epoch_loss", 1) in _tags(tmp_path / "epoch" / "validation")
    for split in ("train", "validation"):
        assert _tags(tmp_path / "epoch" / split) == _tags(tmp_path / "keras" / split)
    graphs = [event for event in _events(tmp_path / "keras" / "train") if event.graph_def]
    assert not graphs  # Keras 3 writes no train graph either, so none is lost


def test_keeps_asynchronous_dispatch(tmp_path):
    if not keras.src.backend.IS_THREAD_SAFE:
        pytest.skip("this backend always dispatches batch hooks synchronously")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    assert not keras.callbacks.CallbackList(
        [keras.callbacks.TensorBoard(str(tmp_path))], model=model
    )._async_train
    assert keras.callbacks.CallbackList([EpochTensorBoard(str(tmp_path))], model=model)._async_train


@pytest.mark.parametrize("kwargs", [{"update_freq": "batch"}, {"profile_batch": 2}])
def test_rejects_batch_options(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EpochTensorBoard(str(tmp_path), **kwargs)

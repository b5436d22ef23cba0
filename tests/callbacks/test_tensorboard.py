import glob
import os

import keras
import numpy as np
import pytest

from keras_zoo.callbacks import EpochTensorBoard
from keras_zoo.callbacks.event_file import EventFile

pytestmark = pytest.mark.backend_agnostic

tf = pytest.importorskip("tensorflow")  # reads the event files, and Keras' own callback writes through it
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _events(folder):
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        found.extend(tf.compat.v1.train.summary_iterator(path))
    return found


def _summaries(folder):
    """``{(tag, step): (value, plugin name)}`` of every summary value in ``folder``'s event files."""
    found = {}
    for event in _events(folder):
        for value in event.summary.value:
            content = tf.make_ndarray(value.tensor)
            found[(value.tag, event.step)] = (content, value.metadata.plugin_data.plugin_name)
    return found


def _fit_with_both(tmp_path, epochs=2):
    """One fit logged by Keras' TensorBoard (``keras``) and by EpochTensorBoard (``epoch``) together."""
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    callbacks = [
        keras.callbacks.TensorBoard(str(tmp_path / "keras")),
        EpochTensorBoard(str(tmp_path / "epoch")),
    ]
    return model.fit(
        x, y, batch_size=4, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0
    )


def test_writes_what_keras_tensorboard_writes(tmp_path):
    history = _fit_with_both(tmp_path)
    for split, prefix in (("train", ""), ("validation", "val_")):
        ours, theirs = _summaries(tmp_path / "epoch" / split), _summaries(tmp_path / "keras" / split)
        assert sorted(ours) == sorted(theirs)
        for key, (value, plugin) in theirs.items():
            assert ours[key][1] == plugin
            if plugin == "scalars":
                assert ours[key][0].dtype == value.dtype == np.float32 and ours[key][0] == value
        for epoch in (0, 1):
            assert ours[("epoch_loss", epoch)][0] == np.float32(history.history[prefix + "loss"][epoch])
    train = _summaries(tmp_path / "epoch" / "train")
    assert train[("epoch_learning_rate", 1)][0] == np.float32(0.01)
    assert ("keras", 0) in train  # the model configuration, TensorBoard's conceptual graph
    assert not [event for event in _events(tmp_path / "keras" / "train") if event.graph_def]  # none lost


def test_tensorboard_reads_the_curves(tmp_path):
    history = _fit_with_both(tmp_path, epochs=3)
    for split, prefix in (("train", ""), ("validation", "val_")):
        accumulator = event_accumulator.EventAccumulator(str(tmp_path / "epoch" / split))
        accumulator.Reload()
        events = accumulator.Tensors("epoch_loss")
        assert [event.step for event in events] == [0, 1, 2]
        read = [float(tf.make_ndarray(event.tensor_proto)) for event in events]
        np.testing.assert_allclose(read, history.history[prefix + "loss"], rtol=1e-6)


def test_event_files_are_new_files_and_flushed_each_epoch(tmp_path):
    first, second = EventFile(str(tmp_path)), EventFile(str(tmp_path))
    assert first.path != second.path and os.path.basename(first.path).startswith("events.out.tfevents.")
    first.scalar("epoch_loss", 0.25, 0)
    first.flush()  # readable before close, as after an interrupted run
    assert [float(tf.make_ndarray(v.tensor)) for e in _events(tmp_path) for v in e.summary.value] == [0.25]
    first.close()
    second.close()


def test_keeps_asynchronous_dispatch(tmp_path):
    if not keras.src.backend.IS_THREAD_SAFE:
        pytest.skip("this backend always dispatches batch hooks synchronously")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    assert not keras.callbacks.CallbackList(
        [keras.callbacks.TensorBoard(str(tmp_path))], model=model
    )._async_train
    assert keras.callbacks.CallbackList([EpochTensorBoard(str(tmp_path))], model=model)._async_train

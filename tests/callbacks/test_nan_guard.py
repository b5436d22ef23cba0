import keras
import numpy as np
import pytest

from keras_zoo.callbacks import NaNGuard
from tests.helpers import steps_per_execution_cases

pytestmark = pytest.mark.backend_agnostic


class _CountSteps(keras.callbacks.Callback):
    """Counts the chunks the training loop starts (in its own thread, so exactly)."""

    def on_train_begin(self, logs=None):
        self.started = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.started += 1


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data(steps, nan_step=None, batch=4):
    """``steps`` batches of 4; batch ``nan_step`` (1-based) holds a NaN input."""
    x = np.ones((steps * batch, 4), "float32")
    if nan_step is not None:
        x[(nan_step - 1) * batch] = np.nan
    return x, np.zeros((steps * batch, 1), "float32")


def test_stops_within_the_epoch_at_the_first_check_after_a_nan_step():
    x, y = _data(200, nan_step=11)
    guard, count = NaNGuard(every=5), _CountSteps()
    history = _model().fit(x, y, batch_size=4, epochs=3, callbacks=[count, guard], verbose=0, shuffle=False)
    assert guard.stopped_at is not None
    epoch, step = guard.stopped_at
    assert epoch == 0 and step >= 11 and step % 5 == 0  # the check at step 15 (or a later one) saw it
    assert 11 <= count.started < 200  # stopped inside the first epoch, a few dispatched steps after it
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


def test_a_nan_in_the_last_steps_stops_after_the_epoch():
    x, y = _data(12, nan_step=11)
    guard = NaNGuard(every=100)
    history = _model().fit(x, y, batch_size=4, epochs=3, callbacks=[guard], verbose=0, shuffle=False)
    assert guard.stopped_at == (0, 12)  # the epoch's last chunk is always checked
    assert len(history.history["loss"]) == 1


def test_end_of_epoch_check():
    model = _model()
    guard = NaNGuard()
    guard.set_model(model)
    guard.on_train_begin()
    guard.on_epoch_begin(2)
    guard.on_epoch_end(2, {"loss": 0.5})
    assert not model.stop_training and guard.stopped_at is None
    guard.on_epoch_end(2, {"loss": float("inf")})
    assert model.stop_training and guard.stopped_at == (2, None)


def test_finite_training_is_not_stopped():
    x, y = _data(20)
    guard = NaNGuard(every=3)
    history = _model().fit(x, y, batch_size=4, epochs=2, callbacks=[guard], verbose=0)
    assert guard.stopped_at is None and len(history.history["loss"]) == 2


@pytest.mark.parametrize("steps_per_execution", steps_per_execution_cases(1, 4))
def test_keeps_asynchronous_dispatch(steps_per_execution):
    if not keras.src.backend.IS_THREAD_SAFE:
        pytest.skip("this backend always dispatches batch hooks synchronously")
    model = _model()
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    assert keras.callbacks.CallbackList([NaNGuard()], model=model)._async_train
    x, y = _data(40, nan_step=6)
    guard = NaNGuard(every=8)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[guard], verbose=0, shuffle=False)
    assert guard.stopped_at is not None and guard.stopped_at[0] == 0 and guard.stopped_at[1] % 8 == 0


def test_stopping_from_the_thread_pool_leaves_the_model_usable():
    """Under JAX the guard runs in Keras' thread pool while the loop dispatches further steps; touching the
    ``model`` property there re-attaches stale, already donated state, and ``fit`` then fails at random."""
    x, y = _data(60, nan_step=6)
    model = _model()
    for _ in range(6):
        guard = NaNGuard(every=2)
        model.fit(x, y, batch_size=4, epochs=2, callbacks=[guard], verbose=0, shuffle=False)
        assert guard.stopped_at is not None
    assert model.predict(x[:4], verbose=0).shape == (4, 1)


@pytest.mark.parametrize("every", [0, -3, 2.5, True])
def test_rejects_bad_stride(every):
    with pytest.raises(ValueError, match="every"):
        NaNGuard(every=every)

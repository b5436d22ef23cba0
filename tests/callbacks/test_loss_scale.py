import math

import keras
import numpy as np
import pytest

from keras_zoo.callbacks import LossScaleMonitor
from tests.helpers import steps_per_execution_cases

pytestmark = pytest.mark.backend_agnostic

INITIAL_SCALE = 2.0**126  # scaled float32 gradients overflow until the scale has been halved a few times


def _fit(steps_per_execution=1, epochs=2, steps=12):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(1e-3), initial_scale=INITIAL_SCALE, dynamic_growth_steps=10_000
    )
    model.compile(optimizer=optimizer, loss="mse", steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * steps, 4)).astype("float32")
    y = 100 * rng.normal(size=(4 * steps, 1)).astype("float32")
    monitor = LossScaleMonitor()
    history = model.fit(x, y, batch_size=4, epochs=epochs, callbacks=[monitor], verbose=0)
    return model, monitor, history.history


@pytest.mark.parametrize("steps_per_execution", steps_per_execution_cases(1, 4))
def test_skipped_steps_are_the_halvings_of_the_scale(steps_per_execution):
    model, monitor, history = _fit(steps_per_execution)
    scale = float(keras.ops.convert_to_numpy(model.optimizer.dynamic_scale))
    halvings = round(math.log2(INITIAL_SCALE / scale))  # no growth: every halving is one skipped step
    assert halvings > 0
    assert monitor.total_skipped == sum(history["skipped_steps"]) == halvings
    assert history["loss_scale"][-1] == scale
    applied = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert applied == 2 * 12 - halvings


def test_keeps_asynchronous_dispatch():
    if not keras.src.backend.IS_THREAD_SAFE:
        pytest.skip("this backend always dispatches batch hooks synchronously")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()), loss="mse")
    assert keras.callbacks.CallbackList([LossScaleMonitor()], model=model)._async_train


def test_nothing_logged_without_loss_scaling():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 4), "float32"), np.zeros((8, 1), "float32")
    history = model.fit(x, y, callbacks=[LossScaleMonitor()], verbose=0)
    assert "skipped_steps" not in history.history and "loss_scale" not in history.history

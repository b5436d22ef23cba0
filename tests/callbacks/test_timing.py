import time

import keras
import numpy as np
import pytest

from keras_zoo.callbacks import StepTimer


class _Sleep(keras.callbacks.Callback):
    """Pads every training step with a known sleep."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_begin(self, batch, logs=None):
        time.sleep(self.seconds)


def _tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_step_time_of_a_sleep_padded_step(capsys, steps_per_execution):
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    x, y = np.zeros((32, 4), "float32"), np.zeros((32, 1), "float32")
    timer = StepTimer(batch_size=4, warmup_steps=2, final_metric="loss")
    history = model.fit(x, y, batch_size=4, epochs=2, callbacks=[_Sleep(0.05), timer], verbose=0)
    s = timer.summary
    assert s["total_steps"] == 16 and s["timed_steps"] == 14
    per_step_sleep = 0.05 / steps_per_execution  # the sleep runs once per executed chunk
    assert per_step_sleep * 1000 <= s["step_time_ms"] < per_step_sleep * 1000 + 40
    # throughput is total samples over total timed time: never above what the sleep allows
    assert 0.2 * 4 / per_step_sleep < s["samples_per_sec"] <= 4 / per_step_sleep
    assert "step_time_ms" in history.history and "samples_per_sec" in history.history
    out = capsys.readouterr().out
    assert f"Final performance FPS : {s['samples_per_sec']:.3f}" in out
    assert f"Final step time ms : {s['step_time_ms']:.3f}" in out
    assert "Final accuracy : " in out


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        StepTimer(batch_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        StepTimer(batch_size=1, warmup_steps=-1)

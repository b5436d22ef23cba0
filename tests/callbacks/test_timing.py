import time

import keras
import numpy as np
import pytest

from keras_zoo.callbacks import EpochClock, StepTimer
from keras_zoo.callbacks.timing import final_label
from tests.helpers import steps_per_execution_cases

pytestmark = pytest.mark.backend_agnostic


class _Sleep(keras.callbacks.Callback):
    """Pads every executed chunk of steps with a known sleep in the training loop's thread."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_begin(self, batch, logs=None):
        time.sleep(self.seconds)


def _tiny_model(steps_per_execution=1):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    return model


def _data(samples):
    return np.zeros((samples, 4), "float32"), np.zeros((samples, 1), "float32")


@pytest.mark.parametrize("steps_per_execution", steps_per_execution_cases(1, 2))
def test_step_time_of_a_sleep_padded_step(capsys, steps_per_execution):
    model = _tiny_model(steps_per_execution)
    x, y = _data(32)
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
    assert f"Final loss : {history.history['loss'][-1]:.6f}" in out and "Final accuracy" not in out


@pytest.mark.parametrize("steps_per_execution", steps_per_execution_cases(1, 4))
def test_step_time_is_the_wall_time_of_compute_bound_steps(steps_per_execution):
    """Steps whose device work dwarfs their dispatch: under asynchronous dispatch (JAX) the training loop
    queues them without waiting, so a timer that did not wait for each step's results would see almost
    none of their time."""
    width, batch, steps = 512, 128, 16
    inputs = keras.Input((width,))
    x = inputs
    for _ in range(3):
        x = keras.layers.Dense(width)(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, width)).astype("float32")
    y = rng.normal(size=(batch * steps, 1)).astype("float32")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compiles the step
    timer, clock = StepTimer(batch_size=batch, warmup_steps=0, every=4, verbose=False), EpochClock()
    model.fit(x, y, batch_size=batch, epochs=1, callbacks=[clock, timer], verbose=0)
    wall = clock.seconds[0]  # from the epoch's start until Keras has waited for all its steps
    s = timer.summary
    assert s["timed_steps"] == steps
    timed = steps * batch / s["samples_per_sec"]  # seconds the timed steps took, by the timer
    assert 0.6 * wall < timed <= wall
    assert 0.5 * wall / steps < s["step_time_ms"] / 1000 < 1.5 * wall / steps


def test_stride_marks_give_every_step_its_share():
    model = _tiny_model()
    x, y = _data(4 * 25)
    timer = StepTimer(batch_size=4, warmup_steps=3, every=10, verbose=False)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[_Sleep(0.01), timer], verbose=0)
    s = timer.summary
    assert s["total_steps"] == 50 and s["timed_steps"] == 47
    assert len(timer.step_times) == 47 and 10 <= s["step_time_ms"] < 50


def test_epochs_of_unknown_length_are_timed_to_their_end():
    tf = pytest.importorskip("tensorflow")
    x, y = _data(4)
    batches = tf.data.Dataset.from_tensors((x, y)).repeat(12).filter(lambda *_: True)  # length unknown
    assert int(batches.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    model = _tiny_model()
    timer = StepTimer(batch_size=4, warmup_steps=2, every=5, verbose=False)
    model.fit(batches, epochs=2, callbacks=[_Sleep(0.01), timer], verbose=0, shuffle=False)
    assert timer.summary["total_steps"] == 24 and timer.summary["timed_steps"] == 22
    assert 10 <= timer.summary["step_time_ms"] < 50


def test_keeps_asynchronous_dispatch():
    if not keras.src.backend.IS_THREAD_SAFE:
        pytest.skip("this backend always dispatches batch hooks synchronously")
    model = _tiny_model()
    callbacks = keras.callbacks.CallbackList([StepTimer(batch_size=4)], model=model)
    assert callbacks._async_train


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        StepTimer(batch_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        StepTimer(batch_size=1, warmup_steps=-1)
    with pytest.raises(ValueError, match="every"):
        StepTimer(batch_size=1, every=0)


def test_a_run_within_its_warm_up_is_timed_over_all_its_steps(capsys):
    """3 steps and 5 warm-up steps: the figures come from the 3 steps, and the lines say so."""
    model = _tiny_model()
    x, y = _data(12)
    timer = StepTimer(batch_size=4, warmup_steps=5, every=1)
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[_Sleep(0.02), timer], verbose=0)
    s = timer.summary
    assert s["warmup_included"] and s["timed_steps"] == 3 and len(timer.warmup_times) == 3
    times = np.asarray(timer.warmup_times)
    assert s["step_time_ms"] == pytest.approx(1000 * np.median(times))
    assert s["samples_per_sec"] == pytest.approx(4 * 3 / times.sum())
    assert 20 <= s["step_time_ms"] < 60
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        f"Final performance FPS : {s['samples_per_sec']:.3f} (3 steps, warm-up included)",
        f"Final step time ms : {s['step_time_ms']:.3f} (3 steps, warm-up included)",
    ]


def test_a_run_past_its_warm_up_excludes_it():
    model = _tiny_model()
    x, y = _data(24)
    timer = StepTimer(batch_size=4, warmup_steps=2, every=1, verbose=False)
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[timer], verbose=0)
    assert not timer.summary["warmup_included"] and timer.summary["timed_steps"] == 4
    assert len(timer.warmup_times) == 2


@pytest.mark.parametrize(
    "metric, label",
    [
        ("val_pixel_accuracy", "accuracy"),
        ("val_top1", "accuracy"),
        ("val_logits_top5", "accuracy"),
        ("accuracy", "accuracy"),
        ("val_acc", "accuracy"),
        ("val_psnr", "psnr"),
        ("val_mean_iou", "mean_iou"),
        ("val_loss", "loss"),
        ("val_membrane_dice", "membrane_dice"),
        ("val_auc", "auc"),
        ("val_top1_error", "top1_error"),
    ],
)
def test_final_line_says_accuracy_only_for_accuracies(metric, label):
    assert final_label(metric) == label


def test_final_line_names_the_metric(capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    x, y = _data(8)
    timer = StepTimer(batch_size=4, warmup_steps=0, final_metric="val_mae")
    history = model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), callbacks=[timer], verbose=0)
    out = capsys.readouterr().out
    assert f"Final mae : {history.history['val_mae'][-1]:.6f}" in out and "Final accuracy" not in out
    assert timer.summary["final_val_mae"] == pytest.approx(history.history["val_mae"][-1])


def test_check_count_names_the_bad_value():
    from keras_zoo.callbacks.stride import check_count

    assert check_count(np.int64(3), "steps") == 3 and check_count(0, "keep", minimum=0) == 0
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ValueError, match="steps must be an int >= 1"):
            check_count(bad, "steps")

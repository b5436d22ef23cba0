"""Host overhead per training step: plain ``fit``, ``fit`` with the train CLI's callbacks, ``train_on_batch``.

A tiny model (a chain of small Dense + BatchNormalization blocks on 8 features, RMSprop with momentum as
AmoebaNet-D's recipe) has about as many state arrays (trainable + non-trainable + optimizer variables) as
AmoebaNet-D at its default config (1,329), so each step's device work is negligible and the per-step wall
time is the training loop's host cost. Modes:

- ``fit``: ``model.fit`` with no callbacks;
- ``fit_cli``: ``model.fit`` with the list ``keras_zoo.cli.train`` builds (checkpoints, CSV and TensorBoard
  logs in a temporary folder);
- ``train_on_batch``: a Python loop of ``model.train_on_batch``.

The ``fit`` modes are timed per epoch by a callback with epoch hooks only (first in the list, so the
checkpoint written at the epoch's end is not counted); the figure is the median over ``--repeats``
epochs of the epoch's time divided by its steps, after a warm-up epoch that compiles the step, as wall
time (``ms_per_step``) and as CPU time of the process (``cpu_ms_per_step``, all its threads: less
disturbed by other processes on a shared machine; on CPU backends it includes the step's computation).
Prints one JSON line per (mode, steps_per_execution)::

    KERAS_BACKEND=jax python benchmarks/host_overhead.py
    KERAS_BACKEND=tensorflow python benchmarks/host_overhead.py --modes fit fit_cli \
        --steps-per-execution 1 4 16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time

import numpy as np

FEATURES = 8


def build_model(blocks: int, steps_per_execution: int):
    """The tiny many-state model, compiled with RMSprop(momentum=0.9) and MSE."""
    import keras

    inputs = keras.Input((FEATURES,), name="features")
    x = inputs
    for i in range(blocks):
        x = keras.layers.Dense(FEATURES, use_bias=False, name=f"block{i}_dense")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    model = keras.Model(inputs, outputs, name="host_overhead")
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3, rho=0.9, momentum=0.9),
        loss="mse",
        steps_per_execution=steps_per_execution,
    )
    return model


def state_arrays(model) -> int:
    """Trainable + non-trainable + optimizer variables of a built model."""
    return (
        len(model.trainable_variables) + len(model.non_trainable_variables) + len(model.optimizer.variables)
    )


def cli_callbacks(batch_size: int, output: str) -> list:
    """The callback list ``keras_zoo.cli.train`` builds for a run writing to ``output``."""
    from keras_zoo.cli import train
    from keras_zoo.cli.tasks import Data, Task

    args = argparse.Namespace(batch_size=batch_size, warmup_steps=5, output=output, keep_best=3, resume=False)
    data = Data(train=None, val=None, description="host overhead")
    if hasattr(train, "training_callbacks"):
        return train.training_callbacks(args, Task(), data)[0]
    # Checkouts before training_callbacks existed built this list inline in train.run.
    import keras

    from keras_zoo.callbacks import HDF5Checkpoint, LossScaleMonitor, StepTimer
    from keras_zoo.cli import report

    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        StepTimer(batch_size, 5, final_metric="loss"),
        LossScaleMonitor(),
        HDF5Checkpoint(os.path.join(output, "checkpoints"), "loss", "min", 3),
        keras.callbacks.CSVLogger(os.path.join(output, "history.csv")),
    ]
    if report.tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "tensorboard")))
    return callbacks


def async_dispatch(callbacks: list, model) -> bool | None:
    """Whether Keras dispatches ``on_train_batch_end`` asynchronously for this list (None: unknown)."""
    import keras

    return getattr(keras.callbacks.CallbackList(callbacks, model=model), "_async_train", None)


def time_fit(
    model, x, y, batch_size: int, repeats: int, callbacks: list, verbose: int
) -> list[tuple[float, float]]:
    """(Wall, process CPU) seconds per step of each of ``repeats`` epochs of ``model.fit``."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.per_step = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            now, steps = (time.perf_counter(), time.process_time()), len(x) // batch_size
            self.per_step.append(tuple((b - a) / steps for a, b in zip(self._start, now)))

    clock = EpochClock()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        model.fit(x, y, batch_size=batch_size, epochs=repeats, callbacks=[clock, *callbacks], verbose=verbose)
    return clock.per_step


def time_train_on_batch(model, x, y, batch_size: int, repeats: int) -> list[tuple[float, float]]:
    """(Wall, process CPU) seconds per step of each of ``repeats`` passes of ``train_on_batch``."""
    per_step = []
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    for _ in range(repeats):
        start = (time.perf_counter(), time.process_time())
        for xb, yb in batches:
            model.train_on_batch(xb, yb)
        now = (time.perf_counter(), time.process_time())
        per_step.append(tuple((b - a) / len(batches) for a, b in zip(start, now)))
    return per_step


def measure(mode: str, spe: int, args: argparse.Namespace) -> dict:
    import keras

    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    model = build_model(args.blocks, spe)
    warm = args.batch_size * max(spe, 8)
    model.fit(x[:warm], y[:warm], batch_size=args.batch_size, epochs=1, verbose=0)  # compiles the step
    if mode == "train_on_batch":
        model.train_on_batch(x[: args.batch_size], y[: args.batch_size])
    record = {
        "benchmark": "host_overhead",
        "backend": keras.config.backend(),
        "mode": mode,
        "steps_per_execution": spe,
        "state_arrays": state_arrays(model),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
    }
    with tempfile.TemporaryDirectory() as output:
        if mode == "train_on_batch":
            per_step = time_train_on_batch(model, x, y, args.batch_size, args.repeats)
        else:
            callbacks = cli_callbacks(args.batch_size, output) if mode == "fit_cli" else []
            record["async_dispatch"] = async_dispatch(callbacks, model)
            record["verbose"] = args.verbose
            per_step = time_fit(model, x, y, args.batch_size, args.repeats, callbacks, args.verbose)
    wall, cpu = zip(*per_step)
    record["ms_per_step"] = round(1000 * statistics.median(wall), 3)
    record["ms_per_step_min"] = round(1000 * min(wall), 3)
    record["cpu_ms_per_step"] = round(1000 * statistics.median(cpu), 3)  # all threads of this process
    record.update(cpus=os.cpu_count(), keras=keras.__version__, date=time.strftime("%Y-%m-%d"))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["fit", "fit_cli", "train_on_batch"],
        choices=("fit", "fit_cli", "train_on_batch"),
    )
    parser.add_argument("--steps-per-execution", type=int, nargs="+", default=[1])
    parser.add_argument("--blocks", type=int, default=120, help="Dense+BN blocks (120: ~1,330 state arrays)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=240, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs (train_on_batch: passes)")
    parser.add_argument(
        "--verbose", type=int, default=0, choices=(0, 1, 2), help="fit verbosity (output discarded)"
    )
    parser.add_argument("--out", help="append the JSON lines to this file")
    args = parser.parse_args()
    for spe in args.steps_per_execution:
        for mode in args.modes:
            if mode == "train_on_batch" and spe != 1:
                continue  # train_on_batch runs one step per call whatever the setting
            line = json.dumps(measure(mode, spe, args))
            print(line, flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(line + "\n")


if __name__ == "__main__":
    main()

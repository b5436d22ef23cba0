"""Step timing: step time and throughput with warm-up excluded, in the format the Ascend perf scripts grep."""

from __future__ import annotations

import re
import sys
import threading
import time

import keras
import numpy as np

from keras_zoo.callbacks.stride import (
    check_count,
    check_every,
    chunk_steps,
    crosses,
    epoch_steps,
    steps_per_execution,
)

# Log keys that hold an accuracy: "accuracy", "pixel_accuracy", "top1", "top5", "logits_top5", "acc", ...
_ACCURACY = re.compile(r"(^|_)(acc|accuracy|top\d+)$")


def final_label(metric: str) -> str:
    """The name a metric's final line carries: ``accuracy`` for accuracies (pixel accuracy, top-1, top-5;
    the line the Ascend perf scripts grep), else the metric's own name without ``val_``
    (``val_psnr`` -> ``psnr``, ``val_mean_iou`` -> ``mean_iou``, ``loss``)."""
    name = metric[len("val_") :] if metric.startswith("val_") else metric
    return "accuracy" if _ACCURACY.search(name) else name


class StepTimer(keras.callbacks.Callback):
    """Times training steps on a stride and reports median/p90 step time and samples per second.

    The timer keeps Keras' asynchronous callback dispatch (``async_safe``; see
    :mod:`keras_zoo.callbacks.stride`): it never reads a device value and takes the time in the batch hook,
    which Keras calls once the step's logs exist as Python floats, i.e. once the step's computation has
    finished, whether the hook runs in Keras' thread pool or in the training loop. Time marks are taken at
    the start of each epoch, after the chunk that completes every ``every``-th step of an epoch, after the
    chunk that completes the last warm-up step, and after the epoch's last chunk (epochs of unknown length:
    at the end of the epoch when no validation ran in it, else their last steps are not timed). The time
    between two marks, divided by the steps between them, is the time of each of those steps, so a step's
    time includes input loading and device work, as the ModelZoo scripts' "ms/step" does; the median and
    90th percentile are over these per-step values (each the mean of up to ``every`` steps). Steps up to
    the first ``warmup_steps`` of the run (graph tracing, compilation, caches) are excluded. With
    ``steps_per_execution > 1`` Keras calls the batch hooks once per chunk, so marks fall on chunk ends.

    ``samples_per_sec`` is the timed samples over the timed steps' total time (so their mean step time: a
    slow step counts in full), ``step_time_ms`` the median step time; they agree only when the steps do.
    Each epoch adds ``step_time_ms`` (median so far), ``samples_per_sec`` and ``epoch_time_s`` to the
    logs (so they reach the history and CSV). At the end of training it prints::

        Final performance FPS : <samples/s>
        Final step time ms : <median>
        Final accuracy : <last value of final_metric>      (an accuracy; see final_label)
        Final psnr : <last value of final_metric>          (any other metric, by its name)

    and keeps the figures in :attr:`summary`. A run with no more steps than the warm-up is timed over all
    its steps, and both figure lines say so: ``Final step time ms : 123.400 (3 steps, warm-up included)``.

    Args:
        batch_size: samples per step (global batch).
        warmup_steps: steps excluded from the figures.
        final_metric: log key of the last line (named by :func:`final_label`).
        verbose: print the final lines.
        every: steps between two time marks within an epoch.
    """

    async_safe = True

    def __init__(
        self,
        batch_size: int,
        warmup_steps: int = 5,
        final_metric: str = "loss",
        verbose: bool = True,
        every: int = 10,
    ):
        super().__init__()
        self.batch_size = check_count(batch_size, "batch_size")
        self.warmup_steps = check_count(warmup_steps, "warmup_steps", minimum=0)
        self.final_metric = final_metric
        self.verbose = verbose
        self.every = check_every(every)
        self.summary: dict[str, float] = {}
        self._lock = threading.Lock()

    def on_train_begin(self, logs=None):
        self.step_times: list[float] = []
        self.warmup_times: list[float] = []  # per-step times of the warm-up steps
        self.steps_seen = 0  # steps of the finished epochs; read by the batch hooks of the running one
        self.summary = {}
        self._per_execution = steps_per_execution(self.model)
        self._train_start = time.perf_counter()
        self._last_logs: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        # Keras has waited for the previous epoch's hooks, so no batch hook runs now.
        self._epoch_start = time.perf_counter()
        self._marks: list[tuple[int, float]] = [(0, self._epoch_start)]
        self._epoch_steps = 0
        self._validated = False

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        steps = epoch_steps(self.params)
        start, end = chunk_steps(batch, self._per_execution, steps)
        warmup = self.warmup_steps - self.steps_seen
        mark = crosses(start, end, self.every) or end == steps or start < warmup <= end
        with self._lock:
            self._epoch_steps = max(self._epoch_steps, end)
            if mark:
                self._marks.append((end, now))

    def on_test_begin(self, logs=None):
        self._validated = True

    def _close_epoch(self, now: float) -> None:
        """Turns the epoch's marks into per-step times; called once Keras has waited for every batch hook."""
        marks = sorted(self._marks)
        if marks[-1][0] < self._epoch_steps and not self._validated:
            marks.append((self._epoch_steps, now))
        times = np.maximum.accumulate([t for _, t in marks])  # a late pool thread cannot make time go back
        for (s0, _), (s1, _), t0, t1 in zip(marks, marks[1:], times, times[1:]):
            if s1 > s0:
                timed = self.step_times if self.steps_seen + s0 >= self.warmup_steps else self.warmup_times
                timed.extend([(t1 - t0) / (s1 - s0)] * (s1 - s0))
        self.steps_seen += self._epoch_steps

    def _figures(self, steps: list[float] | None = None) -> dict[str, float]:
        """Median/p90 step time and samples/s over ``steps`` (default: the timed steps after warm-up)."""
        times = np.asarray(self.step_times if steps is None else steps, dtype=np.float64)
        if times.size == 0:
            return {}
        median = float(np.median(times))
        return {
            "step_time_ms": 1000.0 * median,
            "step_time_p90_ms": 1000.0 * float(np.percentile(times, 90)),
            "samples_per_sec": self.batch_size * times.size / float(times.sum()),
            "timed_steps": int(times.size),
        }

    def _final_figures(self) -> dict[str, float]:
        """The run's figures: after warm-up, or over every step of a run no longer than its warm-up
        (``warmup_included`` then True)."""
        figures = self._figures()
        if figures or not self.warmup_times:
            return {**figures, "warmup_included": False} if figures else {}
        return {**self._figures(self.warmup_times + self.step_times), "warmup_included": True}

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self._close_epoch(now)
        if logs is None:
            return
        figures = self._figures()
        logs["step_time_ms"] = figures.get("step_time_ms", float("nan"))
        logs["samples_per_sec"] = figures.get("samples_per_sec", float("nan"))
        logs["epoch_time_s"] = now - self._epoch_start
        self._last_logs = dict(logs)

    def on_train_end(self, logs=None):
        self.summary = {
            **self._final_figures(),
            "warmup_steps": self.warmup_steps,
            "total_steps": self.steps_seen,
            "wall_time_s": time.perf_counter() - self._train_start,
        }
        final = self._last_logs.get(self.final_metric)
        if final is not None:
            self.summary[f"final_{self.final_metric}"] = float(final)
        if self.verbose:
            lines = self._figure_lines()
            if final is not None:
                lines.append(f"Final {final_label(self.final_metric)} : {float(final):.6f}")
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()

    def _figure_lines(self) -> list[str]:
        """The FPS and step-time lines, always two (``nan`` when no step ran)."""
        s = self.summary
        if "samples_per_sec" not in s:
            return ["Final performance FPS : nan (no steps)", "Final step time ms : nan (no steps)"]
        steps = s["timed_steps"]
        note = f" ({steps} step{'s' * (steps != 1)}, warm-up included)" if s["warmup_included"] else ""
        return [
            f"Final performance FPS : {s['samples_per_sec']:.3f}{note}",
            f"Final step time ms : {s['step_time_ms']:.3f}{note}",
        ]


class EpochClock(keras.callbacks.Callback):
    """Records each epoch's wall time in :attr:`seconds`.

    It has epoch hooks only, so Keras keeps dispatching steps asynchronously, and an epoch ends only once its
    logs are on the host, i.e. once its last step has run: the times include the device's work.
    """

    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

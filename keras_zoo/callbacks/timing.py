"""Step timing: step time and throughput with warm-up excluded, in the format the Ascend perf scripts grep."""

from __future__ import annotations

import sys
import time

import keras
import numpy as np


class StepTimer(keras.callbacks.Callback):
    """Times every training step and reports median/p90 step time and samples per second.

    A step's time is the wall time from the end of the previous step (or the start of the epoch) to the
    end of this one, so it includes input loading, as the ModelZoo scripts' "ms/step" does. The first
    ``warmup_steps`` steps of the run (graph tracing, compilation, caches) are excluded. With
    ``steps_per_execution > 1`` Keras calls the batch hooks once per chunk; the chunk's time is divided
    evenly among its steps.

    Each epoch adds ``step_time_ms`` (median so far), ``samples_per_sec`` and ``epoch_time_s`` to the
    logs (so they reach the history and CSV). At the end of training it prints::

        Final performance FPS : <samples/s>
        Final step time ms : <median>
        Final accuracy : <last value of final_metric>

    and keeps the figures in :attr:`summary`.

    Args:
        batch_size: samples per step (global batch).
        warmup_steps: steps excluded from the figures.
        final_metric: log key printed as ``Final accuracy``.
        verbose: print the final lines.
    """

    def __init__(
        self, batch_size: int, warmup_steps: int = 5, final_metric: str = "loss", verbose: bool = True
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.batch_size = batch_size
        self.warmup_steps = warmup_steps
        self.final_metric = final_metric
        self.verbose = verbose
        self.summary: dict[str, float] = {}

    def on_train_begin(self, logs=None):
        self.step_times: list[float] = []
        self.steps_seen = 0
        self.summary = {}
        self._train_start = time.perf_counter()
        self._last_logs: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._last_end = time.perf_counter()
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        steps = max(1, batch - self._last_batch)
        per_step = (now - self._last_end) / steps
        for _ in range(steps):
            self.steps_seen += 1
            if self.steps_seen > self.warmup_steps:
                self.step_times.append(per_step)
        self._last_end = now
        self._last_batch = batch

    def _figures(self) -> dict[str, float]:
        times = np.asarray(self.step_times, dtype=np.float64)
        if times.size == 0:
            return {}
        median = float(np.median(times))
        return {
            "step_time_ms": 1000.0 * median,
            "step_time_p90_ms": 1000.0 * float(np.percentile(times, 90)),
            "samples_per_sec": self.batch_size * times.size / float(times.sum()),
            "timed_steps": int(times.size),
        }

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        figures = self._figures()
        logs["step_time_ms"] = figures.get("step_time_ms", float("nan"))
        logs["samples_per_sec"] = figures.get("samples_per_sec", float("nan"))
        logs["epoch_time_s"] = time.perf_counter() - self._epoch_start
        self._last_logs = dict(logs)

    def on_train_end(self, logs=None):
        self.summary = {
            **self._figures(),
            "warmup_steps": self.warmup_steps,
            "total_steps": self.steps_seen,
            "wall_time_s": time.perf_counter() - self._train_start,
        }
        final = self._last_logs.get(self.final_metric)
        if final is not None:
            self.summary[f"final_{self.final_metric}"] = float(final)
        if self.verbose:
            lines = []
            if "samples_per_sec" in self.summary:
                lines.append(f"Final performance FPS : {self.summary['samples_per_sec']:.3f}")
                lines.append(f"Final step time ms : {self.summary['step_time_ms']:.3f}")
            if final is not None:
                lines.append(f"Final accuracy : {float(final):.6f}")
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()

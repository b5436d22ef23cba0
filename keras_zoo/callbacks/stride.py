"""Batch hooks that keep Keras 3's asynchronous callback dispatch: chunks of steps and strides over them.

Keras 3 (``keras.callbacks.CallbackList``) dispatches ``on_train_batch_end`` to a thread pool, so the training
loop does not wait for each step's results, only when every callback of the list either leaves the batch-end
hooks undefined or sets ``async_safe = True`` (and only on backends whose ``IS_THREAD_SAFE`` is true: JAX,
PyTorch; TensorFlow always dispatches synchronously). In a pool thread the logs reach the callbacks as Python
floats, converted after the step's computation has finished; hooks of different steps may run at the same
time and in any order. Such a hook must not read ``self.model`` on JAX: the property re-attaches the
trainer's state to the model, a host-side copy that from a pool thread also races with the steps being
dispatched (``fit`` then fails on donated buffers); ``self._model`` is the same model without it. The
helpers below let such a hook act every ``every`` steps whatever the ``steps_per_execution`` (with which
Keras calls the batch hooks once per chunk of steps, passing the index of the chunk's last step).
"""

from __future__ import annotations

import numbers

import keras


def check_count(value: int, name: str, minimum: int = 1) -> int:
    """Returns ``value`` as an int if it is a whole number >= ``minimum``; raises ``ValueError`` naming the
    bad value otherwise (a callback's step counts, intervals and file counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_every(every: int, name: str = "every") -> int:
    """Returns ``every`` if it is an int >= 1; raises ``ValueError`` naming the bad value otherwise."""
    return check_count(every, name)


def steps_per_execution(model: keras.Model | None) -> int:
    """The steps Keras runs per batch-hook call for ``model`` (1 when it has no such setting)."""
    value = getattr(model, "steps_per_execution", 1) if model is not None else 1
    return max(1, int(value or 1))


def chunk_steps(batch: int, per_execution: int, epoch_steps: int | None) -> tuple[int, int]:
    """Steps of the epoch completed before and after the chunk whose batch hook got ``batch``.

    Args:
        batch: the index Keras passes to ``on_train_batch_end``: the chunk's last step, 0-based (Keras
            reports ``begin + steps_per_execution - 1`` even for a shorter last chunk).
        per_execution: the model's ``steps_per_execution``.
        epoch_steps: steps in the epoch (``params["steps"]``), or None when unknown.

    Returns:
        ``(start, end)``: the chunk holds steps ``start + 1 .. end`` of the epoch (1-based).
    """
    end = batch + 1
    if epoch_steps:
        end = min(end, int(epoch_steps))
    return max(0, batch + 1 - per_execution), end


def crosses(start: int, end: int, every: int) -> bool:
    """Whether the steps ``start + 1 .. end`` include a multiple of ``every``."""
    return end // every > start // every


def epoch_steps(params: dict | None) -> int | None:
    """The epoch length Keras gave the callbacks (``params["steps"]``), None when unknown."""
    steps = (params or {}).get("steps")
    return int(steps) if steps else None

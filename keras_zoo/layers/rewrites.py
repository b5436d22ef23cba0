"""What the layers that compute a Keras op in another form share: the choice of form from an environment
variable, and the padding of "same" windows."""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras


def chosen_implementation(
    variable: str, choices: tuple[str, ...], auto: Mapping[str, str], fallback: str
) -> str:
    """``$variable`` (default ``"auto"``), which must be one of ``choices``; ``"auto"`` becomes the current
    backend's entry of ``auto``, or ``fallback`` for a backend without one.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    choice = os.environ.get(variable) or "auto"
    if choice not in choices:
        raise ValueError(f"${variable} must be one of {choices}, got {choice!r}")
    return auto.get(keras.config.backend(), fallback) if choice == "auto" else choice


def same_padding(size: int, window: int, stride: int, rate: int = 1) -> tuple[int, int]:
    """(before, after) padding of "same" for a window dilated by ``rate`` (TF/XLA convention: the extra
    pixel goes after)."""
    effective = (window - 1) * rate + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2

"""Argument checks shared by the model factories: a bad value raises ``ValueError`` naming the model,
the argument and the value (the CLI turns it into one line)."""

from __future__ import annotations


def check_at_least(model: str, minimum: int, **values: int) -> None:
    """Raises ValueError for the first of ``values`` below ``minimum``, e.g. ``filters=0``."""
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{model}: {name} must be >= {minimum}, got {value}")


def check_fraction(model: str, **values: float) -> None:
    """Raises ValueError for the first of ``values`` outside [0, 1) (dropout rates, BN momentum)."""
    for name, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{model}: {name} must be in [0, 1), got {value}")

"""Seeded, resumable batch streams on top of ``keras.utils.PyDataset``.

Randomness in training batches comes from ``numpy.random.default_rng([seed, epoch, batch_index])``, so a
batch depends only on (seed, epoch, index): a run resumed at epoch ``e`` (after :meth:`set_epoch`) sees
exactly the batches an uninterrupted run would, whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np


class SeededBatches(keras.utils.PyDataset):
    """Training batches drawn by a function of a seeded generator.

    Args:
        make_batch: ``make_batch(rng, index) -> (x, y)`` returning one batch as NumPy arrays (or tuples /
            lists of arrays for multi-input models).
        steps: batches per epoch.
        seed: base seed.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.
    """

    def __init__(
        self, make_batch: Callable[[np.random.Generator, int], Any], steps: int, seed: int = 0, **kwargs
    ):
        super().__init__(**kwargs)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.make_batch = make_batch
        self.steps = int(steps)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        if index >= self.steps:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return self.make_batch(rng, int(index))

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def set_epoch(self, epoch: int) -> None:
        """Continues the stream at ``epoch`` (used by ``--resume``)."""
        self.epoch = int(epoch)


class ArrayBatches(keras.utils.PyDataset):
    """Fixed arrays served in order, in batches (validation and evaluation).

    Args:
        x: array (n, ...) or a sequence of such arrays (multi-input models).
        y: array (n, ...) or None.
        batch_size: samples per batch; the last batch may be smaller.
    """

    def __init__(self, x: np.ndarray | Sequence[np.ndarray], y: np.ndarray | None, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.num_samples = len(x[0] if isinstance(x, (list, tuple)) else x)
        if self.num_samples == 0:
            raise ValueError("ArrayBatches needs at least one sample")

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def __getitem__(self, index: int):
        if index >= len(self):
            raise IndexError(index)
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        x = [a[s] for a in self.x] if isinstance(self.x, (list, tuple)) else self.x[s]
        if isinstance(self.x, tuple):
            x = tuple(x)
        return x if self.y is None else (x, self.y[s])


def split_indices(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/validation split of ``range(n)``.

    The last ``max(1, round(n * val_fraction))`` items of a seeded permutation are validation (none when
    ``val_fraction`` is 0 or ``n`` < 2).

    Returns:
        (train_indices, val_indices), each sorted.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = 0 if val_fraction == 0 or n < 2 else max(1, int(round(n * val_fraction)))
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val :])

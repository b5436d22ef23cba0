"""Seeded, resumable batch streams on top of ``keras.utils.PyDataset``, and their parallel workers.

Randomness in training batches comes from ``numpy.random.default_rng([seed, epoch, batch_index])``
(:class:`SeededBatches`) or, for the readers of real data, from one generator per sample,
``numpy.random.default_rng([seed, epoch, sample_index])`` (:class:`SeededSamples`). A batch therefore
depends only on (seed, epoch, index): a run resumed at epoch ``e`` (after :meth:`SeededBatches.set_epoch`)
sees exactly the batches an uninterrupted run would, whatever the number of workers that make them and
whichever worker makes which batch.

Workers are Keras's own (``PyDataset(workers=..., use_multiprocessing=..., max_queue_size=...)``), configured
by :func:`worker_options`: a default of every core but one, and threads unless a reader asks for forked
processes (only where the backend can be forked). The readers here all use threads: their heavy steps (Pillow
decoding and resizing, ``scipy.ndimage`` resampling, NumPy's FFTs, ufuncs, sorting and fancy indexing)
release the GIL, and a thread hands its batch over without the pickling and pipe copy that a process needs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_zoo.errors import ConfigError

logger = logging.getLogger(__name__)

ORDERS = ("random", "permutation")
# Backends whose workers may be forked processes: JAX's runtime is multithreaded, and JAX warns that a fork
# may deadlock.
FORK_SAFE_BACKENDS = ("tensorflow", "torch")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """Input-pipeline workers for this machine: every usable core but one, which is left to the training loop.

    Returns:
        ``usable_cores() - 1``, at least 0 (0: batches are made in the training loop's thread).
    """
    return max(0, usable_cores() - 1)


def resolve_workers(workers: int | None) -> int:
    """The worker count to use: ``workers``, or :func:`default_workers` for None.

    Raises:
        ConfigError: ``workers`` is negative or not an integer (a one-line message naming ``--workers``).
    """
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ConfigError(f"--workers must be an integer >= 0, got {workers!r}")
    return int(workers)


def worker_options(workers: int | None = None, processes: bool = False) -> dict[str, Any]:
    """The ``workers``, ``use_multiprocessing`` and ``max_queue_size`` arguments of a ``PyDataset``.

    Args:
        workers: parallel workers that make batches ahead of the training loop; None: :func:`default_workers`;
            0: each batch is made in the training loop's thread when ``fit`` asks for it.
        processes: whether the reader's work runs better in processes than in threads, i.e. whether much of
            it holds the GIL (pure-Python loops). Processes are forked only on the TensorFlow and PyTorch
            backends and where ``fork`` is the start method; JAX always gets threads. Keras runs a single
            thread worker in the training loop's thread, so with threads ``workers=1`` makes batches as
            ``workers=0`` does.

    Returns:
        Keyword arguments for a ``PyDataset``; the queue holds two batches per worker.

    Raises:
        ConfigError: ``workers`` is negative or not an integer.
    """
    workers = resolve_workers(workers)
    # Keras's pool uses the default start method; any but fork would have to pickle the reader's closures.
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    fork = method == "fork"
    use_processes = bool(processes and workers and fork and keras.config.backend() in FORK_SAFE_BACKENDS)
    return {"workers": workers, "use_multiprocessing": use_processes, "max_queue_size": max(2, 2 * workers)}


def describe_workers(dataset: keras.utils.PyDataset) -> str:
    """How ``dataset``'s batches are made, for logs: ``"3 worker processes"``, ``"in the main thread"``."""
    workers, processes = dataset.workers, dataset.use_multiprocessing
    if processes and workers:
        return f"{workers} worker process{'es' if workers > 1 else ''}"
    if workers > 1:
        return f"{workers} worker threads"
    return "in the main thread"


def stack_samples(samples: Sequence[Any]) -> Any:
    """Stacks samples into a batch, leaf by leaf.

    Args:
        samples: arrays, or tuples / lists / dicts of arrays (nested alike).

    Returns:
        The same structure with each leaf an array ``(len(samples), ...)``.
    """
    first = samples[0]
    if isinstance(first, dict):
        return {key: stack_samples([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(stack_samples(list(parts)) for parts in zip(*samples))
    return np.stack(samples)


def sample_rng(seed: int, epoch: int, sample: int) -> np.random.Generator:
    """The generator of sample ``sample`` (counted from 0 within the epoch) of ``epoch``."""
    return np.random.default_rng([int(seed), int(epoch), int(sample)])


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


class SeededSamples(SeededBatches):
    """Training batches of independently seeded samples.

    Sample ``j`` of batch ``i`` has the index ``s = i * batch_size + j`` within its epoch, and everything
    random about it (which source item it shows, its augmentation) comes from ``sample_rng(seed, epoch, s)``
    or from the epoch's permutation. A sample thus depends only on (seed, epoch, s): not on the worker that
    makes it, nor on the order in which workers finish.

    Args:
        make_sample: ``make_sample(rng, item) -> sample``: one sample made from source item ``item``
            (``0 <= item < num_items``) with all its randomness drawn from ``rng``; an array, or a tuple /
            list / dict of arrays (see :func:`stack_samples`).
        num_items: number of source items (slices, cubes, images).
        batch_size: samples per batch.
        steps: batches per epoch.
        seed: base seed.
        order: ``"random"``: each sample first draws its item uniformly from its own generator (items with
            replacement, as the references sample); ``"permutation"``: epoch ``e`` walks a permutation of the
            items seeded by (seed, e), sample ``s`` taking position ``s % num_items`` (so a batch of at most
            ``num_items`` samples holds distinct items, and an epoch of ``num_items`` samples each item once).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``
            (see :func:`worker_options`).
    """

    def __init__(
        self,
        make_sample: Callable[[np.random.Generator, int], Any],
        num_items: int,
        batch_size: int,
        steps: int,
        seed: int = 0,
        order: str = "random",
        **kwargs,
    ):
        if num_items < 1:
            raise ValueError(f"num_items must be >= 1, got {num_items}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        super().__init__(self._make_batch, steps, seed, **kwargs)
        self.make_sample = make_sample
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.order = order
        self._permutation_cache: tuple[int, np.ndarray] | None = None

    def permutation(self) -> np.ndarray:
        """The item order of the current epoch (``order="permutation"``), seeded by (seed, epoch)."""
        cached = self._permutation_cache  # one read: workers in threads may replace it meanwhile
        if cached is None or cached[0] != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_items)
            cached = (self.epoch, order)
            self._permutation_cache = cached
        return cached[1]

    def sample(self, sample_index: int) -> Any:
        """Sample ``sample_index`` of the current epoch."""
        rng = sample_rng(self.seed, self.epoch, sample_index)
        if self.order == "permutation":
            item = int(self.permutation()[sample_index % self.num_items])
        else:
            item = int(rng.integers(self.num_items))
        return self.make_sample(rng, item)

    def _make_batch(self, rng: np.random.Generator, index: int):
        del rng  # every sample has its own generator
        start = index * self.batch_size
        return stack_samples([self.sample(start + j) for j in range(self.batch_size)])


def build_compiled_state(model: keras.Model, batches: Any) -> None:
    """Builds the compiled loss and metrics of ``model`` from the first batch of ``batches`` (a
    ``PyDataset``; predictions replaced by zeros of the model's output shapes), before ``fit``.

    On JAX and torch ``fit`` otherwise builds them from a batch it takes from the dataset's workers and drops:
    with two or more worker threads every epoch then trained on the last batches of its own epoch and the
    first of the next, a stream that depends on the worker count (TensorFlow is not affected; the batch is
    read here with ``batches[0]``, outside the workers). Does nothing for other data or backends, or once
    both are built.
    """
    if keras.backend.backend() not in ("jax", "torch") or not isinstance(batches, keras.utils.PyDataset):
        return
    if getattr(model, "_compile_loss", None) is None or model._compile_loss.built:
        return
    batch = batches[0]
    x, y = batch[0], batch[1]
    symbolic = keras.tree.map_structure(
        lambda a: keras.KerasTensor(np.shape(a), keras.backend.standardize_dtype(a.dtype)), x
    )
    spec = model.compute_output_spec(symbolic)
    zeros = keras.tree.map_structure(lambda t: keras.ops.zeros(t.shape, t.dtype), spec)
    model.compute_loss(x, y, zeros)
    model.compute_metrics(x, y, zeros, sample_weight=None)
    model.reset_metrics()


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

    def batch_sizes(self) -> set[int]:
        """The sizes of the batches: ``batch_size`` (or all samples, where fewer), and the last batch's."""
        return {min(self.batch_size, self.num_samples), self.num_samples - (len(self) - 1) * self.batch_size}

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

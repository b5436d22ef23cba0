"""``tf.data`` settings shared by the tfrecord readers: worker threads, a deterministic order, prefetch.

The tfrecord readers decode and augment in ``tf.data`` maps whose randomness is stateless and derived from
(seed, record index), and :func:`finish` makes every parallel step keep its input order
(``Options.deterministic``, the default of each map and interleave), so a stream does not depend on the
number of workers. TensorFlow is imported lazily, by the functions only, through :func:`tensorflow`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from keras_zoo.datasets.base import resolve_workers

log = logging.getLogger(__name__)


@functools.cache
def tensorflow() -> Any:
    """TensorFlow for an input pipeline, with its GPUs hidden from it under another Keras backend.

    Under JAX or torch, TensorFlow runs only the input pipeline (on the CPU), but on its first operation it
    would create a device on every GPU it can see and reserve most of each one's memory beside the
    backend's own runtime. Hiding them must happen before that first operation; where it is too late a
    warning says so.
    """
    import keras
    import tensorflow as tf

    if keras.config.backend() != "tensorflow":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            log.warning(
                "TensorFlow was initialised before the input pipeline could hide the GPUs from it; it may "
                "hold GPU memory beside the %s backend",
                keras.config.backend(),
            )
    return tf


def parallel_calls(workers: int | None) -> int | None:
    """``num_parallel_calls`` of the maps for ``workers`` (None: every core but one; 0: sequential)."""
    return resolve_workers(workers) or None


def read_records(files: Any, cycle_length: int, workers: int | None) -> Any:
    """The records of the shards in ``files`` (a dataset of file names), ``cycle_length`` shards interleaved.

    Args:
        files: ``tf.data.Dataset`` of shard paths, in the order to read them.
        cycle_length: shards read at a time; a fixed number, so the record order does not depend on workers.
        workers: reader threads (None: every core but one; 0: one shard read at a time), at most
            ``cycle_length``.

    Returns:
        ``tf.data.Dataset`` of serialized records.
    """
    tf = tensorflow()

    calls = parallel_calls(workers)
    return files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=cycle_length,
        num_parallel_calls=None if calls is None else min(calls, cycle_length),
    )


def finish(dataset: Any, workers: int | None) -> Any:
    """Bounds ``dataset``'s threads by ``workers``, keeps its order deterministic and prefetches batches.

    Args:
        dataset: a ``tf.data.Dataset`` of batches.
        workers: worker threads (None: every core but one). With 0 the stream still runs in tf.data's own
            thread (it has no other), one element at a time and without prefetch.

    Returns:
        The dataset with ``tf.data.Options`` set (deterministic, a private pool of ``max(1, workers)``
        threads, one thread per op) and, with workers, ``prefetch(AUTOTUNE)``.
    """
    tf = tensorflow()

    workers = resolve_workers(workers)
    options = tf.data.Options()
    options.deterministic = True
    options.threading.private_threadpool_size = max(1, workers)
    options.threading.max_intra_op_parallelism = 1
    dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE) if workers else dataset

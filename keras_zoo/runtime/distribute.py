"""Data-parallel training: ``tf.distribute`` on TensorFlow, ``keras.distribution.DataParallel`` on JAX.

The global batch (``--batch-size``) is split evenly across devices, so the gradient of a step equals the
single-device gradient of the same global batch. Learning rates are not rescaled automatically: when the
global batch grows with the device count, scale the LR linearly yourself (``--lr``), as the references'
multi-device recipes do. Multi-host: TensorFlow reads ``TF_CONFIG`` (``multiworker``); JAX calls
``keras.distribution.initialize()`` when ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (or the JAX coordinator
variables) are set. On Ascend, the route is torch_npu + HCCL under ``torchrun``; it is documented, not tested.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from typing import Any

import keras

from keras_zoo.errors import ConfigError

STRATEGIES = ("none", "mirrored", "multiworker", "data-parallel")


def virtual_cpu_devices(count: int) -> None:
    """Splits the host CPU into ``count`` logical devices (tests and demos of data parallelism).

    Must run before the backend initialises its devices: TensorFlow logical devices, or for JAX the flag
    ``--xla_force_host_platform_device_count`` (set ``XLA_FLAGS`` before JAX is imported).
    """
    backend = keras.config.backend()
    if backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    elif backend == "jax":
        name = "--xla_force_host_platform_device_count"
        flags = os.environ.get("XLA_FLAGS", "").split()
        if f"{name}={count}" in flags:
            return
        if "jax" in sys.modules:
            raise ConfigError(f"set XLA_FLAGS={name}={count} before JAX is imported")
        others = [flag for flag in flags if not flag.startswith(f"{name}=")]  # an earlier count is replaced
        os.environ["XLA_FLAGS"] = " ".join([*others, f"{name}={count}"])
    else:
        raise ConfigError(f"virtual CPU devices are not supported on the {backend} backend")


def is_chief() -> bool:
    """True on the worker that writes checkpoints and logs (always true on a single host)."""
    if keras.config.backend() == "jax" and "jax" in sys.modules:
        return importlib.import_module("jax").process_index() == 0
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker" and task.get("index", 0) == 0
    )


def distribution_scope(strategy: str = "none") -> tuple[contextlib.AbstractContextManager, int]:
    """Sets up data parallelism and returns the context in which to build and compile the model.

    Args:
        strategy: ``"none"``, ``"mirrored"`` / ``"multiworker"`` (TensorFlow) or ``"data-parallel"`` (JAX).

    Returns:
        (context manager, number of replicas).

    Raises:
        ConfigError: unknown strategy, or one the current backend does not support.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"--distribute must be one of {STRATEGIES}, got {strategy!r}")
    backend = keras.config.backend()
    if strategy == "none":
        return contextlib.nullcontext(), 1
    if strategy in ("mirrored", "multiworker"):
        if backend != "tensorflow":
            raise ConfigError(
                f"--distribute {strategy} needs the tensorflow backend (use data-parallel on jax)"
            )
        tf = importlib.import_module("tensorflow")
        if strategy == "mirrored":
            devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
                d.name for d in tf.config.list_logical_devices("CPU")
            ]
            dist = tf.distribute.MirroredStrategy(devices)
        else:
            dist = tf.distribute.MultiWorkerMirroredStrategy()
        return dist.scope(), dist.num_replicas_in_sync
    if backend != "jax":
        raise ConfigError("--distribute data-parallel needs the jax backend (use mirrored on tensorflow)")
    if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return contextlib.nullcontext(), len(devices)


def check_split_batches(batches: Any, replicas: int) -> None:
    """Raises ConfigError where ``batches`` (validation data) hold a batch whose size does not split over
    ``replicas`` devices: Keras' ``DataParallel`` shards every batch, and the run would stop with a JAX
    traceback at its first validation. Batches that say their sizes (``batch_sizes()``, as
    :class:`keras_zoo.datasets.base.ArrayBatches` does) are checked; others are not."""
    sizes = getattr(batches, "batch_sizes", None)
    if replicas <= 1 or sizes is None:
        return
    uneven = [size for size in sizes() if size % replicas]
    if uneven:
        raise ConfigError(
            f"--distribute data-parallel: validation batches of {uneven[0]} sample{'s' * (uneven[0] != 1)} do "
            f"not split over {replicas} devices (Keras' DataParallel shards every batch): train on one device "
            "(--distribute none), or, where validation batches follow --batch-size, give one and a validation "
            "set that split evenly"
        )

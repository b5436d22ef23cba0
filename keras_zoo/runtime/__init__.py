"""Runtime set-up: device, precision, seeds and a description of the environment.

This package is the only place that imports TensorFlow, JAX, PyTorch or the Ascend adapters, and only
the one that matches ``keras.config.backend()``.

Importing it first applies the TensorFlow CPU environment defaults of :mod:`keras_zoo.runtime.tf_env`
(oneDNN kernels on x86-64), which TensorFlow reads only at its own import: import ``keras_zoo.runtime``
before ``keras`` for them to take effect.
"""

from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

apply_tf_cpu_defaults()

from keras_zoo.runtime.core import RuntimeConfig, configure, describe, precision_policy  # noqa: E402 - after the env
from keras_zoo.runtime.npu import npu_session_config, select_npu_adapter  # noqa: E402

__all__ = [
    "RuntimeConfig",
    "apply_tf_cpu_defaults",
    "configure",
    "describe",
    "npu_session_config",
    "precision_policy",
    "select_npu_adapter",
]

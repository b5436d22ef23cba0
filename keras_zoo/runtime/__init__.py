"""Runtime set-up: device, precision, seeds and a description of the environment.

This package is the only place that imports TensorFlow, JAX, PyTorch or the Ascend adapters, and only
the one that matches ``keras.config.backend()``.
"""

from keras_zoo.runtime.core import RuntimeConfig, configure, describe, precision_policy
from keras_zoo.runtime.npu import npu_session_config, select_npu_adapter

__all__ = [
    "RuntimeConfig",
    "configure",
    "describe",
    "npu_session_config",
    "precision_policy",
    "select_npu_adapter",
]

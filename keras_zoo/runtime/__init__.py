"""Runtime set-up: device, precision, seeds and a description of the environment.

This package is the only place that imports TensorFlow, JAX, PyTorch or the Ascend adapters, and only
the one that matches ``keras.config.backend()``. Its names load on first use, so that
:mod:`keras_zoo.runtime.tf_env` can run at ``import keras_zoo`` without importing Keras.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "RuntimeConfig": "keras_zoo.runtime.core",
    "configure": "keras_zoo.runtime.core",
    "describe": "keras_zoo.runtime.core",
    "precision_policy": "keras_zoo.runtime.core",
    "npu_session_config": "keras_zoo.runtime.npu",
    "select_npu_adapter": "keras_zoo.runtime.npu",
    "apply_tf_cpu_defaults": "keras_zoo.runtime.tf_env",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_zoo.runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

"""Runtime set-up: device, precision, seeds and a description of the environment.

This package is the only place that imports TensorFlow, JAX, PyTorch or the Ascend adapters, and only
the one that matches ``keras.config.backend()``. Its names load on first use, so that
:mod:`keras_zoo.runtime.tf_env` and :mod:`keras_zoo.runtime.traits` load without Keras.
"""

from __future__ import annotations

from keras_zoo._lazy import lazy_attributes

_LAZY = {
    "RuntimeConfig": "keras_zoo.runtime.core",
    "auto_choices": "keras_zoo.runtime.core",
    "auto_precision": "keras_zoo.runtime.core",
    "configure": "keras_zoo.runtime.core",
    "describe": "keras_zoo.runtime.core",
    "enable_compilation_cache": "keras_zoo.runtime.compile_cache",
    "gpu_compute_capability": "keras_zoo.runtime.core",
    "precision_policy": "keras_zoo.runtime.core",
    "npu_session_config": "keras_zoo.runtime.npu",
    "select_npu_adapter": "keras_zoo.runtime.npu",
    "seed_everything": "keras_zoo.runtime.seeds",
    "apply_tf_cpu_defaults": "keras_zoo.runtime.tf_env",
    "ModelTraits": "keras_zoo.runtime.traits",
    "trainer_state": "keras_zoo.runtime.jax_step",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(globals(), __name__, _LAZY)

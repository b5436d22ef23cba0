"""``imports_tensorflow``: whether a Keras helper that touches TensorFlow would import it in this process.

Several Keras helpers use TensorFlow wherever it is installed, whatever the backend: ``set_random_seed`` seeds
it, serialisation checks for ``tf.TensorShape``. keras_zoo requires TensorFlow, so under JAX or torch calling
them imports it: seconds and hundreds of megabytes of host memory, and a second runtime that initialises CUDA
(docs/benchmarks.md, "Seeding and TensorBoard without TensorFlow"). This module imports neither Keras nor
TensorFlow.
"""

from __future__ import annotations

import importlib.util
import sys


def imports_tensorflow(backend: str) -> bool:
    """Whether such a Keras helper would import TensorFlow under ``backend`` (``keras.config.backend()``):
    not under TensorFlow itself, not once TensorFlow is loaded, and not where it is not installed."""
    return not (
        backend == "tensorflow"
        or "tensorflow" in sys.modules
        or importlib.util.find_spec("tensorflow") is None
    )

"""``seed_everything``: a run's random state from one seed, without loading TensorFlow under JAX or torch."""

from __future__ import annotations

import random

import keras
import numpy as np

from keras_zoo.runtime.tensorflow_import import imports_tensorflow


def seed_everything(seed: int) -> None:
    """Seeds what ``keras.utils.set_random_seed`` seeds, without importing TensorFlow under another backend.

    Keras' function imports TensorFlow wherever it is installed (keras_zoo requires it) to seed ``tf.data``;
    in a JAX or torch process that costs seconds and hundreds of megabytes of host memory
    (docs/benchmarks.md, "Seeding and TensorBoard without TensorFlow"). keras_zoo's ``tf.data`` readers take
    their seeds explicitly, so under JAX and torch, while TensorFlow is not loaded, this seeds Python's
    ``random`` (Keras draws the seeds of layers and initializers created without one from it), NumPy's global
    generator and, under torch, ``torch.manual_seed``. Keras' global ``SeedGenerator`` (``keras.random``
    calls without a seed, which keras_zoo makes none of) is left as it is. Where Keras' function imports no
    TensorFlow (:func:`~keras_zoo.runtime.tensorflow_import.imports_tensorflow`) this is that function.

    Args:
        seed: a non-negative integer.
    """
    backend = keras.config.backend()
    if not imports_tensorflow(backend):
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)

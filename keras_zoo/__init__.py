"""keras_zoo: five Ascend ModelZoo networks as Keras 3 models that run on TensorFlow, JAX and PyTorch.

The factories are loaded on first use, so ``import keras_zoo`` stays light, changes no environment variable,
and the CLI can choose the Keras backend and TensorFlow's CPU kernels before Keras is imported (library users
who want the CLI's kernel choice call :func:`keras_zoo.runtime.apply_tf_cpu_defaults` before importing
Keras)::

    from keras_zoo import unet
    model = unet(input_shape=(256, 256, 1))
"""

from __future__ import annotations

from keras_zoo._lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "unet": "keras_zoo.models.unet",
    "genesis": "keras_zoo.models.genesis",
    "cascadenet": "keras_zoo.models.cascadenet",
    "deeplabv3plus": "keras_zoo.models.deeplab",
    "amoebanet": "keras_zoo.models.amoebanet",
    "get_model": "keras_zoo.registry",
    "list_models": "keras_zoo.registry",
    "KerasZooError": "keras_zoo.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]

__getattr__, __dir__ = lazy_attributes(globals(), __name__, _LAZY)

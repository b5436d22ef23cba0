"""Where the backend puts new tensors: the environment that decides it before Keras loads, the check after.

Keras' torch backend picks its device once, when it loads (CUDA when torch sees a GPU; Keras >= 3.14 also
reads ``KERAS_TORCH_DEVICE``), and JAX starts every platform it finds. So a run asked for one device has to
say so before ``import keras`` (:func:`pin_device_before_keras`, which the train command calls), and
:func:`keep_on_cpu` makes or checks the choice afterwards. This module loads without Keras.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from keras_zoo.errors import ConfigError


def pin_device_before_keras(backend: str | None, device: str) -> None:
    """Sets up the process so that ``backend``, once Keras loads it, puts its tensors on ``device``.

    - ``"cpu"`` on JAX: ``JAX_PLATFORMS=cpu`` (JAX neither starts its GPU platform nor claims GPU memory);
    - ``"cpu"`` on torch: ``CUDA_VISIBLE_DEVICES=""``;
    - ``"npu"`` on torch: imports torch_npu and its ``transfer_to_npu`` when installed
      (:func:`keras_zoo.runtime.npu.load_torch_npu`);
    - anything else: nothing (TensorFlow's GPUs are hidden at run time by ``configure``).

    Does nothing once Keras is loaded (its backend has chosen already; :func:`keep_on_cpu` and
    ``open_npu`` then check the choice).

    Args:
        backend: the Keras backend that will load (``KERAS_BACKEND``), or None when not known.
        device: ``"auto"``, ``"cpu"``, ``"gpu"`` or ``"npu"``.
    """
    if "keras" in sys.modules:
        return
    if device == "cpu" and backend == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
    elif device == "cpu" and backend == "torch":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device == "npu" and backend == "torch" and importlib.util.find_spec("torch_npu") is not None:
        from keras_zoo.runtime.npu import load_torch_npu

        load_torch_npu()


def keras_tensor_device() -> str:
    """Where Keras' torch backend puts a new tensor, as torch names it ("cpu", "cuda:0", "npu:0")."""
    import keras

    return str(keras.ops.zeros(()).device)


def keep_on_cpu(backend: str, tensor_device=keras_tensor_device) -> None:
    """Makes the CPU the device of new tensors after Keras has loaded (JAX), or checks that it is (torch).

    Args:
        backend: ``"jax"`` or ``"torch"`` (TensorFlow hides its GPUs in ``configure``).
        tensor_device: as :func:`keras_tensor_device` (replaceable in tests).

    Raises:
        ConfigError: Keras' torch backend puts its tensors on another device; it cannot be moved once loaded.
    """
    if backend == "jax":
        jax = importlib.import_module("jax")
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    elif backend == "torch":
        placed = tensor_device()
        if not placed.startswith("cpu"):
            raise ConfigError(
                f"device='cpu' but Keras' torch backend places its tensors on {placed!r}; it chooses its device "
                "when it loads: set CUDA_VISIBLE_DEVICES= (or, with Keras >= 3.14, KERAS_TORCH_DEVICE=cpu) "
                "before starting Python"
            )

"""Ascend NPU adapters: choosing one, and the configurations they take.

Three documented routes exist, one per engine:

- ``torch_npu`` (Keras ``torch`` backend): ``import torch_npu`` and ``torch_npu.contrib.transfer_to_npu``,
  which routes ``torch.cuda`` calls to the NPU, so Keras' torch backend places tensors on it when it is
  imported after them (:func:`load_torch_npu`).
- ``npu_device`` (TensorFlow 2): ``npu_device.global_options()`` for the precision mode, then
  ``npu_device.open().as_default()``.
- ``npu_bridge`` (TensorFlow 1-compat session): a ``ConfigProto`` whose rewrite options add the custom
  optimizer ``NpuOptimizer`` (``use_off_line``, ``precision_mode``) with remapping and memory optimisation
  off; built by :func:`npu_session_config`, which needs only TensorFlow, so it is tested without the card.

None of these packages can be installed off Ascend hardware; this module was not run on an NPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from keras_zoo.errors import ConfigError
from keras_zoo.runtime.placement import keras_tensor_device

log = logging.getLogger(__name__)

PRECISION_MODES = ("allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype", "allow_mix_precision")

# keras_zoo precision -> Ascend precision_mode. "auto" is the adapters' own documented default for training
# on the Ascend 910: float32 graphs whose matrix and convolution operators the adapter runs in float16.
ASCEND_PRECISION = {
    "auto": "allow_fp32_to_fp16",
    "fp32": "must_keep_origin_dtype",
    "mixed": "allow_mix_precision",
    "bf16": "allow_mix_precision",
    "fp16": "allow_mix_precision",
}

INSTALL_HINT = (
    "device='npu' needs an Ascend adapter: install torch_npu (KERAS_BACKEND=torch), or npu_device "
    "(TensorFlow 2) or npu_bridge (TensorFlow 1-compat) from the Ascend CANN toolkit"
)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def select_npu_adapter(backend: str, installed=_installed) -> str:
    """Returns the adapter to use for ``backend``: ``"torch_npu"``, ``"npu_device"`` or ``"npu_bridge"``.

    Args:
        backend: the Keras backend name.
        installed: predicate telling whether a module can be imported (replaceable in tests).

    Raises:
        ConfigError: no adapter fits the backend; the message names what to install.
    """
    candidates = {"torch": ["torch_npu"], "tensorflow": ["npu_device", "npu_bridge"]}.get(backend, [])
    for module in candidates:
        if installed(module):
            return module
    if not candidates:
        raise ConfigError(f"device='npu' is not supported with the {backend!r} backend; {INSTALL_HINT}")
    raise ConfigError(f"no Ascend adapter found for the {backend!r} backend; {INSTALL_HINT}")


def npu_session_config(precision_mode: str = "allow_fp32_to_fp16", use_off_line: bool = True, **parameters):
    """Builds the TF1-compat session ``ConfigProto`` for ``npu_bridge``.

    Args:
        precision_mode: one of :data:`PRECISION_MODES`.
        use_off_line: run the graph on the NPU (``True``) rather than on the host.
        **parameters: further ``NpuOptimizer`` parameters (bool, int or str values), e.g.
            ``mix_compile_mode=False``, ``iterations_per_loop=1``.

    Returns:
        ``tf.compat.v1.ConfigProto`` with the custom optimizer ``NpuOptimizer`` and remapping and memory
        optimisation turned off, as the Ascend migration guide requires.
    """
    if precision_mode not in PRECISION_MODES:
        raise ConfigError(f"precision_mode must be one of {PRECISION_MODES}, got {precision_mode!r}")
    import tensorflow as tf
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    custom_op = config.graph_options.rewrite_options.custom_optimizers.add()
    custom_op.name = "NpuOptimizer"
    custom_op.parameter_map["use_off_line"].b = use_off_line
    custom_op.parameter_map["precision_mode"].s = precision_mode.encode()
    for key, value in parameters.items():
        if isinstance(value, bool):
            custom_op.parameter_map[key].b = value
        elif isinstance(value, int):
            custom_op.parameter_map[key].i = value
        elif isinstance(value, str):
            custom_op.parameter_map[key].s = value.encode()
        else:
            raise ConfigError(
                f"NpuOptimizer parameter {key!r} must be bool, int or str, got {type(value).__name__}"
            )
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    config.graph_options.rewrite_options.memory_optimization = RewriterConfig.NO_MEM_OPT
    return config


def load_torch_npu():
    """Imports ``torch_npu`` and ``torch_npu.contrib.transfer_to_npu``; returns ``torch_npu``.

    ``transfer_to_npu`` makes ``torch.cuda`` report the NPU and sends tensors asked for on "cuda" to it. Keras'
    torch backend picks its device once, when it is imported (Keras >= 3.14 also reads ``KERAS_TORCH_DEVICE``
    then), so this must run before that import for Keras to place its tensors on the NPU: the train command
    calls it before it loads Keras.
    """
    torch_npu = importlib.import_module("torch_npu")
    importlib.import_module("torch_npu.contrib.transfer_to_npu")
    return torch_npu


def open_npu(
    backend: str,
    precision: str = "fp32",
    device_id: int = 0,
    installed=_installed,
    tensor_device=keras_tensor_device,
) -> str:
    """Selects and opens the NPU adapter for ``backend``; returns the adapter's name.

    Args:
        backend: the Keras backend name.
        precision: a keras_zoo precision (``ASCEND_PRECISION`` maps it to the adapter's mode).
        device_id: the NPU to use.
        installed: as in :func:`select_npu_adapter`.
        tensor_device: ``() -> device`` of a new Keras tensor (torch only; replaceable in tests).

    Raises:
        ConfigError: no adapter fits, or (torch) Keras still places its tensors off the NPU (its torch backend
            was imported before ``torch_npu``): training would silently run on the CPU.
    """
    adapter = select_npu_adapter(backend, installed)
    mode = ASCEND_PRECISION[precision]
    if adapter == "torch_npu":
        load_torch_npu().npu.set_device(device_id)
        placed = tensor_device()
        if not placed.startswith("npu"):
            raise ConfigError(
                f"Keras' torch backend places its tensors on {placed!r}, not the NPU; it chooses its device when "
                "it loads: import torch_npu and torch_npu.contrib.transfer_to_npu before keras (or, with "
                f"Keras >= 3.14, set KERAS_TORCH_DEVICE=npu:{device_id} before starting Python)"
            )
    elif adapter == "npu_device":
        npu_device = importlib.import_module("npu_device")
        npu_device.global_options().precision_mode = mode
        npu_device.open().as_default()
    else:
        importlib.import_module("npu_bridge.npu_init")
        import tensorflow as tf

        tf.compat.v1.keras.backend.set_session(tf.compat.v1.Session(config=npu_session_config(mode)))
    log.info("Ascend NPU opened through %s (precision_mode %s)", adapter, mode)
    return adapter

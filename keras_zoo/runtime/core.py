"""``configure`` and ``describe``: the device, dtype policy and seeds of a run."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import platform
import sys

import keras
import numpy as np

from keras_zoo.errors import ConfigError
from keras_zoo.runtime.allocator import restore_malloc_thresholds
from keras_zoo.runtime.npu import open_npu
from keras_zoo.runtime.placement import keep_on_cpu
from keras_zoo.runtime.seeds import seed_everything
from keras_zoo.runtime.traits import (
    ModelTraits,
    bf16_is_faster_on_cpu,
    cpu_flags,
    cpu_vendor_family,
    nvidia_smi_query,
    xla_is_faster_on_cpu,
)

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu", "npu")
PRECISIONS = ("fp32", "mixed", "bf16", "fp16")
PRECISION_CHOICES = ("auto", *PRECISIONS)
# Backends whose CPU training steps are faster in bfloat16 where oneDNN's bfloat16 kernels are
# (traits.bf16_is_faster_on_cpu; docs/benchmarks.md, "bfloat16 on CPUs"): XLA's CPU convolutions gain nothing.
BF16_CPU_BACKENDS = ("tensorflow", "torch")
# NVIDIA GPUs from Ampere on (compute capability 8.0) have bfloat16 tensor cores; bfloat16 keeps float32's
# exponent range, so it needs no loss scaling.
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)


@dataclasses.dataclass
class RuntimeConfig:
    """What :func:`configure` chose.

    Attributes:
        backend: Keras backend name.
        device: ``"cpu"``, ``"gpu"`` or ``"npu"``.
        precision: ``"fp32"``, ``"mixed"`` or ``"bf16"``.
        policy: the Keras dtype policy set globally (``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``).
        jit_compile: the value to pass to ``model.compile``.
        npu_adapter: the Ascend adapter opened, if any.
        compute_capability: the first GPU's CUDA compute capability, e.g. ``(9, 0)``; None off GPUs or
            where the backend does not report it.
    """

    backend: str
    device: str
    precision: str
    policy: str
    jit_compile: bool | str
    npu_adapter: str | None = None
    compute_capability: tuple[int, int] | None = None

    def jit_for(
        self, traits: ModelTraits, *, single_device: bool = True, deterministic: bool = False
    ) -> bool | str:
        """``jit_compile`` for training a network with ``traits``: XLA on TensorFlow CPU in fp32, on one
        device and not deterministic, where it is faster (:func:`~keras_zoo.runtime.traits.xla_is_faster_on_cpu`);
        off where XLA fails to compile the network (:meth:`xla_fails`); :attr:`jit_compile` everywhere else.

        Args:
            traits: the configured network's :class:`~keras_zoo.runtime.traits.ModelTraits`.
            single_device: False under a distribution strategy (XLA is not chosen there).
            deterministic: True for ``--deterministic`` runs (XLA is not chosen there).
        """
        plain_tf_cpu = (
            self.backend == "tensorflow"
            and self.device == "cpu"
            and self.precision == "fp32"
            and single_device
            and not deterministic
        )
        if plain_tf_cpu and xla_is_faster_on_cpu(traits):
            return True
        if self.xla_fails(traits):
            return False
        return self.jit_compile

    def xla_fails(self, traits: ModelTraits) -> bool:
        """Whether XLA is known to fail compiling the training step of a network with ``traits`` here."""
        mixed = self.precision != "fp32"
        return self.backend == "tensorflow" and mixed and traits.xla_fails_in_mixed_precision


def _gpu_count(backend: str) -> int:
    if backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        jax = importlib.import_module("jax")
        return sum(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        torch = importlib.import_module("torch")
        return torch.cuda.device_count()
    return 0


def _parse_capability(value) -> tuple[int, int] | None:
    """``"9.0"``, ``(9, 0)`` or ``"sm_90"`` -> ``(9, 0)``; None when it cannot be read."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return int(value[0]), int(value[1])
    text = str(value).removeprefix("sm_")
    if "." in text:
        major, minor = text.split(".", 1)
    elif text.isdigit() and len(text) >= 2:
        major, minor = text[:-1], text[-1]
    else:
        return None
    try:
        return int(major), int(minor)
    except ValueError:
        return None


def gpu_compute_capability(backend: str) -> tuple[int, int] | None:
    """The CUDA compute capability of the backend's first GPU, e.g. ``(9, 0)`` for a Hopper GPU.

    Asks the backend, then ``nvidia-smi``; None where neither reports one (ROCm, unknown devices).
    """
    return _backend_capability(backend) or _parse_capability(nvidia_smi_query("compute_cap"))


def _backend_capability(backend: str) -> tuple[int, int] | None:
    try:
        if backend == "jax":
            jax = importlib.import_module("jax")
            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            return _parse_capability(getattr(gpus[0], "compute_capability", None)) if gpus else None
        if backend == "torch":
            torch = importlib.import_module("torch")
            return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
        if backend == "tensorflow":
            tf = importlib.import_module("tensorflow")
            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return _parse_capability(details.get("compute_capability"))
    except (RuntimeError, ValueError, IndexError, AttributeError) as exc:
        log.warning("could not read the GPU's compute capability (%s)", exc)
    return None


def auto_precision(backend: str, device: str, capability: tuple[int, int] | None = None) -> str:
    """The precision ``"auto"`` stands for on ``device``.

    - CPU: ``"mixed"`` (bfloat16 compute, float32 variables) under the TensorFlow and PyTorch backends on
      CPUs where every network trained faster in it (:func:`~keras_zoo.runtime.traits.bf16_is_faster_on_cpu`:
      AMX-BF16, or AVX512_BF16 on AMD Zen 5 and later); ``"fp32"`` elsewhere.
    - GPU: ``"mixed"`` on every backend when the compute capability is known: bfloat16 from compute
      capability 8.0 (Ampere, Hopper, ...), float16 with loss scaling below it (see
      :func:`precision_policy`); ``"fp32"`` when the capability cannot be read.
    - NPU: ``"fp32"`` for Keras; the Ascend adapter then applies its own default precision mode (see
      :mod:`keras_zoo.runtime.npu`).

    Args:
        backend: Keras backend name.
        device: ``"cpu"``, ``"gpu"`` or ``"npu"``.
        capability: the GPU's compute capability (:func:`gpu_compute_capability`).
    """
    if device == "cpu":
        return "mixed" if backend in BF16_CPU_BACKENDS and bf16_is_faster_on_cpu() else "fp32"
    if device == "gpu" and capability is not None:
        return "mixed"
    return "fp32"


def precision_policy(precision: str, device: str, capability: tuple[int, int] | None = None) -> str:
    """Keras dtype policy for a precision on a device. Variables and model outputs stay float32.

    - ``fp32``: ``float32``.
    - ``mixed``: the device's fast mixed precision: ``mixed_bfloat16`` on CPUs and on GPUs of compute
      capability >= 8.0; ``mixed_float16`` (with dynamic loss scaling) on older or unidentified GPUs and
      on NPUs.
    - ``bf16`` / ``fp16``: ``mixed_bfloat16`` / ``mixed_float16`` on every device.

    Args:
        precision: one of :data:`PRECISIONS`.
        device: ``"cpu"``, ``"gpu"`` or ``"npu"``.
        capability: the GPU's compute capability, None when unknown.

    Raises:
        ConfigError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return "float32"
    if precision == "fp16":
        return "mixed_float16"
    if precision == "bf16":
        return "mixed_bfloat16"
    if device == "npu":
        return "mixed_float16"
    if device == "gpu" and (capability is None or capability < BF16_MIN_COMPUTE_CAPABILITY):
        return "mixed_float16"
    return "mixed_bfloat16"


def default_jit(backend: str, device: str) -> bool | str:
    """jit_compile default: XLA on GPU; off on TF/torch CPU, where it replaces oneDNN's kernels and loses.
    The CLI turns it on for networks that train on Eigen kernels, where it wins
    (:func:`keras_zoo.runtime.traits.xla_is_faster_on_cpu`).

    JAX always compiles its steps, so ``"auto"`` is passed there.
    """
    if backend == "jax":
        return "auto"
    return device == "gpu" and backend == "tensorflow"


def _configure_cudnn(deterministic: bool) -> None:
    """torch on a GPU: cuDNN times its algorithms for each convolution shape and keeps the fastest
    (``cudnn.benchmark``, as PyTorch training scripts and the ports in ``benchmarks/torch_ports`` do; a
    training run keeps its shapes, so each search happens once), unless the run must be deterministic,
    which takes cuDNN's deterministic algorithms instead."""
    cudnn = importlib.import_module("torch").backends.cudnn
    cudnn.benchmark = not deterministic
    cudnn.deterministic = deterministic


def _gpu_or_cpu(backend: str) -> tuple[str, tuple[int, int] | None]:
    """``("gpu", compute capability)`` when ``backend`` sees a GPU, else ``("cpu", None)``."""
    if _gpu_count(backend):
        return "gpu", gpu_compute_capability(backend)
    return "cpu", None


def auto_choices(backend: str) -> dict[str, str]:
    """What :func:`configure` picks here for ``device="auto"`` and ``precision="auto"``:
    ``{"device": "gpu" or "cpu", "precision": ...}``."""
    device, capability = _gpu_or_cpu(backend)
    return {"device": device, "precision": auto_precision(backend, device, capability)}


def configure(
    device: str = "auto",
    precision: str = "auto",
    seed: int | None = None,
    jit_compile: bool | str | None = None,
    deterministic: bool = False,
) -> RuntimeConfig:
    """Sets device, global dtype policy and seeds for the current backend.

    Args:
        device: ``"auto"`` (GPU when one is visible, else CPU), ``"cpu"``, ``"gpu"`` or ``"npu"``.
        precision: ``"auto"`` (see :func:`auto_precision`), ``"fp32"``, ``"mixed"``, ``"bf16"`` or
            ``"fp16"`` (see :func:`precision_policy`).
        seed: seeds Python, NumPy and the backend when given
            (:func:`keras_zoo.runtime.seeds.seed_everything`).
        jit_compile: override the per-backend default of :func:`default_jit`.
        deterministic: ask TensorFlow for deterministic ops (bitwise-repeatable CPU runs), and cuDNN for its
            deterministic algorithms under torch on a GPU.

    On TensorFlow it also restores glibc's malloc thresholds after TensorFlow's generator-dataset patch
    (:mod:`keras_zoo.runtime.allocator`), which otherwise doubles the CLI's U-Net training step on CPU.

    Returns:
        The :class:`RuntimeConfig` chosen.

    Raises:
        ConfigError: unknown value, ``"gpu"`` without a GPU, ``"npu"`` without an Ascend adapter, or Keras'
            torch backend placing its tensors elsewhere than asked (:mod:`keras_zoo.runtime.placement`).
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    backend = keras.config.backend()
    adapter, capability = None, None
    if device == "npu":
        adapter = open_npu(backend, precision)
    elif device in ("auto", "gpu"):
        found, capability = _gpu_or_cpu(backend)
        if device == "gpu" and found == "cpu":
            raise ConfigError(f"device='gpu' but the {backend} backend sees no GPU")
        device = found
    elif backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            log.warning("TensorFlow was already initialised; GPUs stay visible")
    else:
        keep_on_cpu(backend)
    if precision == "auto":
        precision = auto_precision(backend, device, capability)
    policy = precision_policy(precision, device, capability)
    keras.mixed_precision.set_global_policy(policy)
    if seed is not None:
        seed_everything(seed)
    if deterministic and backend == "tensorflow":
        importlib.import_module("tensorflow").config.experimental.enable_op_determinism()
    if backend == "torch" and device == "gpu":
        _configure_cudnn(deterministic)
    if backend == "tensorflow":
        restore_malloc_thresholds()
    jit = default_jit(backend, device) if jit_compile is None else jit_compile
    config = RuntimeConfig(backend, device, precision, policy, jit, adapter, capability)
    log.info("runtime: %s", config)
    return config


def describe() -> dict:
    """Backend, devices, dtype policy and versions, as a JSON-ready dict."""
    backend = keras.config.backend()
    info = {
        "backend": backend,
        "policy": keras.mixed_precision.global_policy().name,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "cpu_vendor_family": cpu_vendor_family(),
    }
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module:
        lib = importlib.import_module(module)
        info[module] = lib.__version__
        if backend == "tensorflow":
            info["devices"] = [d.name for d in lib.config.list_logical_devices()]
        elif backend == "jax":
            info["devices"] = [str(d) for d in lib.devices()]
        else:
            info["devices"] = ["cpu"] + [f"cuda:{i}" for i in range(lib.cuda.device_count())]
    return info

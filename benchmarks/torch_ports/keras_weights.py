"""Keras weights and Keras initialisation conventions for the PyTorch ports (measuring equipment).

One job: making a torch module hold what the matching Keras layer holds. The ports in this folder use it to

- initialise their layers as Keras does (:func:`variance_scaling_`, :func:`he_normal_`,
  :func:`glorot_uniform_`, :func:`init_keras_`), so that a freshly built port trains from the same
  distribution as the Keras model;
- copy a Keras model's weights in, layer by layer (:func:`keras_to_torch_kernel`,
  :func:`copy_layer_weights`, :func:`copy_weights_by_name`), so the tests can check that both compute the
  same function.

Layouts: Keras kernels are channels last, torch weights channels first:

- ``ConvND``: Keras (k1, ..., kN, in, out) -> torch (out, in, k1, ..., kN);
- ``DepthwiseConv2D``: Keras (kh, kw, C, M) -> torch (C * M, 1, kh, kw) (a ``Conv2d`` with ``groups=C``);
- ``Dense``: Keras (in, out) -> torch (out, in);
- ``BatchNormalization``: gamma, beta, moving mean, moving variance (C,) -> weight, bias, running_mean,
  running_var (C,).

Torch-only: importing this file needs neither Keras nor TensorFlow; the Keras objects passed in are only
read (``layer.name``, ``layer.get_weights()``, ``layer.weights``, BN ``epsilon``/``momentum``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

# Keras' truncated normal draws from N(0, std) cut at 2 std, whose standard deviation is this fraction of
# std; variance-scaling initialisers divide by it to keep the intended variance.
TRUNCATED_NORMAL_STD = 0.87962566103423978

KERAS_NAME = "keras_name"  # attribute that tags a torch module with the Keras layer it mirrors

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


# ----------------------------------------------------------------------------------------------------------
# Initialisers
# ----------------------------------------------------------------------------------------------------------


def keras_fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a torch weight as Keras counts them for the matching Keras kernel.

    Shapes: conv (out, in, k...) -> (in * prod(k), out * prod(k)); dense (out, in) -> (in, out).
    """
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def variance_scaling_(weight: torch.Tensor, scale: float, mode: str) -> None:
    """Keras ``VarianceScaling(scale, mode, distribution="truncated_normal")`` in place.

    Draws N(0, sqrt(scale / fan) / 0.8796...) truncated at 2 std, ``fan`` being ``fan_in`` or ``fan_out``
    of :func:`keras_fans`. ``weight``: a torch conv (out, in, k...) or linear (out, in) weight.
    """
    fan_in, fan_out = keras_fans(weight)
    if mode == "fan_in":
        fan = fan_in
    elif mode == "fan_out":
        fan = fan_out
    else:
        raise ValueError(f"variance_scaling_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    std = math.sqrt(scale / fan) / TRUNCATED_NORMAL_STD
    nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std)


def he_normal_(weight: torch.Tensor) -> None:
    """Keras ``he_normal``: normal(0, sqrt(2 / fan_in)) truncated at 2 std, rescaled to keep the variance."""
    variance_scaling_(weight, 2.0, "fan_in")


def glorot_uniform_(weight: torch.Tensor) -> None:
    """Keras ``glorot_uniform``: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); torch's Xavier, same fans."""
    nn.init.xavier_uniform_(weight)


KERNEL_INITIALIZERS: dict[str, Callable[[torch.Tensor], None]] = {
    "he_normal": he_normal_,
    "glorot_uniform": glorot_uniform_,
}


def init_keras_(
    module: nn.Module, kernel_initializer: str | Callable[[torch.Tensor], None], port: str = "port"
) -> None:
    """Initialises a conv/linear ``module`` as a Keras layer: the kernel initialiser, then a zero bias.

    Args:
        module: ``nn.Conv*d`` or ``nn.Linear`` (``weight`` (out, in, k...) or (out, in), optional ``bias``).
        kernel_initializer: a Keras name in :data:`KERNEL_INITIALIZERS` or an in-place function of the weight.
        port: prefix of the error message.

    Raises:
        ValueError: for a kernel initialiser name this file does not implement.
    """
    if isinstance(kernel_initializer, str):
        if kernel_initializer not in KERNEL_INITIALIZERS:
            raise ValueError(f"{port}: unsupported kernel_initializer {kernel_initializer!r}")
        kernel_initializer = KERNEL_INITIALIZERS[kernel_initializer]
    kernel_initializer(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------------
# Keras weights -> torch modules
# ----------------------------------------------------------------------------------------------------------


def keras_to_torch_kernel(kernel: np.ndarray, depthwise: bool = False) -> torch.Tensor:
    """Keras kernel -> torch weight (a contiguous tensor of the same dtype).

    Shapes: conv (k..., in, out) -> (out, in, k...); dense (in, out) -> (out, in); with ``depthwise``,
    (k..., C, M) -> (C * M, 1, k...) (output channel ``c * M + m``, as Keras orders them).
    """
    kernel = np.asarray(kernel)
    spatial = tuple(range(kernel.ndim - 2))
    if depthwise:
        channels, multiplier = kernel.shape[-2:]
        moved = np.ascontiguousarray(np.transpose(kernel, (kernel.ndim - 2, kernel.ndim - 1, *spatial)))
        return torch.from_numpy(moved.reshape(channels * multiplier, 1, *kernel.shape[:-2]))
    order = (kernel.ndim - 1, kernel.ndim - 2, *spatial)
    return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, order)))


@torch.no_grad()
def assign_(name: str, targets: Sequence[torch.Tensor], values: Sequence[Any], port: str = "port") -> None:
    """Copies ``values`` (arrays or tensors, torch layout) into ``targets``, one for one, checking shapes.

    Raises:
        ValueError: when the counts differ (``"{port}: {name}: 2 Keras weights, 1 torch tensors"``) or a
            shape differs (``"{port}: {name}: Keras (3, 4) vs torch (4, 3)"``); nothing is half-copied by a
            count mismatch, shapes are checked before each copy.
    """
    if len(targets) != len(values):
        raise ValueError(f"{port}: {name}: {len(values)} Keras weights, {len(targets)} torch tensors")
    for target, value in zip(targets, values):
        value = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{port}: {name}: Keras {tuple(value.shape)} vs torch {tuple(target.shape)}")
        target.copy_(value)


def check_batch_norm_constants(layer: Any, module: nn.Module, port: str = "port") -> None:
    """Raises ValueError unless the torch BN's eps and momentum are the Keras layer's (torch: 1 - Keras')."""
    keras_momentum = 1 - layer.momentum
    if abs(module.eps - layer.epsilon) > 1e-12 or abs(module.momentum - keras_momentum) > 1e-9:
        raise ValueError(f"{port}: {layer.name}: batch-norm epsilon/momentum differ from Keras")


def copy_layer_weights(
    layer: Any, module: nn.Module, port: str = "port", check_constants: bool = False
) -> None:
    """Copies one Keras layer's weights into the torch module that mirrors it.

    Supported pairs: ``Conv1D/2D/3D`` -> ``nn.Conv*d`` (``groups=1``), ``DepthwiseConv2D`` -> ``nn.Conv2d``
    with ``groups == in_channels``, ``Dense`` -> ``nn.Linear`` (kernel, then bias when the torch module has
    one), ``BatchNormalization`` -> ``nn.BatchNorm*d`` (gamma, beta, moving mean, moving variance). See the
    module docstring for the layouts.

    Args:
        layer: the Keras layer (read through ``get_weights()``).
        module: the torch module.
        port: prefix of error messages.
        check_constants: also require equal BN epsilon and momentum (:func:`check_batch_norm_constants`).

    Raises:
        TypeError: for a torch module of another kind.
        ValueError: when the number of weights or a shape differs (:func:`assign_`), for a grouped
            convolution that is not depthwise, or (``check_constants``) for other BN constants.
    """
    weights = layer.get_weights()
    if isinstance(module, _BATCH_NORMS):
        if check_constants:
            check_batch_norm_constants(layer, module, port)
        targets = [module.weight, module.bias, module.running_mean, module.running_var]
        values = weights
    elif isinstance(module, (*_CONVS, nn.Linear)):
        groups = getattr(module, "groups", 1)
        if groups != 1 and groups != module.in_channels:
            raise ValueError(f"{port}: {layer.name}: a grouped convolution ({groups} groups), not depthwise")
        kernel = keras_to_torch_kernel(weights[0], depthwise=groups != 1) if weights else None
        targets = [module.weight] + ([module.bias] if module.bias is not None else [])
        values = [kernel, *weights[1:]] if weights else []
    else:
        raise TypeError(f"{port}: no weight copy for {type(module).__name__} (Keras layer {layer.name!r})")
    assign_(layer.name, targets, values, port)


def tag(module: nn.Module, keras_name: str) -> nn.Module:
    """Tags ``module`` with the Keras layer whose weights it takes (see :func:`tagged_modules`)."""
    setattr(module, KERAS_NAME, keras_name)
    return module


def tagged_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Keras layer name -> module, for every (distinct) submodule of ``model`` with a ``keras_name``.

    Raises:
        ValueError: when two different modules carry the same Keras name.
    """
    mapping: dict[str, nn.Module] = {}
    for module in model.modules():
        name = getattr(module, KERAS_NAME, None)
        if name is None:
            continue
        if name in mapping and mapping[name] is not module:
            raise ValueError(f"two torch modules for the Keras layer {name!r}")
        mapping[name] = module
    return mapping


@torch.no_grad()
def copy_weights_by_name(
    keras_model: Any,
    modules: Mapping[str, nn.Module],
    port: str = "port",
    copy: Callable[..., None] = copy_layer_weights,
    check_constants: bool = False,
) -> None:
    """Copies every Keras layer with weights into the torch module of the same name.

    Args:
        keras_model: a flat Keras model (its ``layers``).
        modules: Keras layer name -> torch module; must name exactly the Keras layers that have weights.
        port: prefix of error messages.
        copy: ``copy(layer, module, port, check_constants)``, :func:`copy_layer_weights` by default; a port
            passes its own to handle its custom layers and fall back to the default for the rest.
        check_constants: passed to ``copy`` (BN epsilon/momentum checks).

    Raises:
        ValueError: when a module has no Keras layer with weights of its name, a Keras layer with weights has
            no module, or a copy fails (see :func:`copy_layer_weights`).
    """
    keras_layers = {layer.name: layer for layer in keras_model.layers if layer.weights}
    for name, module in modules.items():
        if name not in keras_layers:
            raise ValueError(f"{port}: no Keras layer {name!r} with weights")
        copy(keras_layers[name], module, port, check_constants)
    missing = sorted(set(keras_layers) - set(modules))
    if missing:
        raise ValueError(f"{port}: no module for the Keras layers with weights {missing[:5]}")

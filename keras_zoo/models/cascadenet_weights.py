"""Importers of the CascadeNet reference weights into :func:`keras_zoo.models.cascadenet.cascadenet`.

- The authors' Lasagne ``.npz`` (``models/pretrained/d5_c5.npz``): arrays ``arr_0..arr_{n-1}``, per cascade
  ``W1, b1, ..., W_aggr, b_aggr``; kernels OIHW (dynamic models: O, I, x, y, t). Lasagne's CPU conv layer
  is a true convolution (kernels flipped) and its cuDNN layer is not; which one produced ``d5_c5.npz`` is
  not recorded. Measured at 4x (8 centre lines, mean of 5 masks), both give +5 to +10 dB over
  zero-filling on real MR and differ by at most 0.2 dB: BART brain 22.6 -> 28.0 (flip) / 27.8 dB (no
  flip), prostate slice 22.8 -> 27.7 / 27.7 dB; over seven real MR slices the mean is 29.12 (flip) vs
  29.14 dB (no flip). ``flip_kernels=False`` is the default (as cuDNN, which the GPU-trained reference
  would have used, does not flip); the flip is an option.
- A PyTorch ``DnCn`` / ``DnCn3D`` / ``DnCn3DShared`` state dict (``cascadenet_pytorch/model_pytorch.py``)
  without batch norm: keys ``conv_blocks.{cascade}.{index}.weight|bias`` (shared: ``conv_block.{index}``),
  cross-correlation kernels (never flipped). Reading it needs torch; it is read with
  ``torch.load(weights_only=True)``, which refuses anything but tensors.
- Keras ``.weights.h5`` and legacy ``.h5`` files go to ``model.load_weights``.
"""

from __future__ import annotations

import os
import re

import keras
import numpy as np

from keras_zoo.errors import WeightsError, require_file
from keras_zoo.registry import register_weights_loader

CONV_NAME = re.compile(r"^(?:cascade(\d+)|shared)_conv(\d+|_aggr)$")
TORCH_KEY = re.compile(r"^(?:module\.)?(?:conv_blocks\.(\d+)|conv_block)\.(\d+)\.(weight|bias)$")


def conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's cascade convolutions in reference order (cascade by cascade, the aggregation conv last)."""

    def order(layer):
        cascade, index = CONV_NAME.match(layer.name).groups()
        return (int(cascade or 0), 10**6 if index == "_aggr" else int(index))

    return sorted((layer for layer in model.layers if CONV_NAME.match(layer.name)), key=order)


def reference_to_keras_kernel(kernel: np.ndarray, flip: bool) -> np.ndarray:
    """Converts a channels-first reference kernel to the Keras layout.

    Args:
        kernel: (out, in, x, y) for 2D or (out, in, x, y, t) for dynamic models.
        flip: reverse the spatial axes (a true-convolution kernel used by a cross-correlation).

    Returns:
        (x, y, in, out) for 2D, (t, x, y, in, out) for dynamic models (inputs are (batch, t, x, y, 2)).
    """
    if flip:
        kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * (kernel.ndim - 2)]
    axes = (2, 3, 1, 0) if kernel.ndim == 4 else (4, 2, 3, 1, 0)
    return np.ascontiguousarray(np.transpose(kernel, axes))


def check_plain_cascades(model: keras.Model, path: str) -> list[keras.layers.Layer]:
    """Returns the conv layers, raising WeightsError if the model has parts the reference files lack."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            raise WeightsError(
                f"{path}: the reference weights have no batch norm; build with batch_norm=False"
            )
    convs = conv_layers(model)
    if not convs:
        raise WeightsError(f"{path}: model {model.name!r} has no CascadeNet convolutions to load into")
    return convs


def assign(
    convs: list[keras.layers.Layer], pairs: list[tuple[np.ndarray, np.ndarray]], path: str, flip: bool
):
    """Sets (kernel, bias) reference pairs into ``convs`` after checking counts and shapes."""
    if len(pairs) != len(convs):
        raise WeightsError(f"{path}: holds {len(pairs)} conv layers, the model has {len(convs)}")
    for layer, (kernel, bias) in zip(convs, pairs):
        kernel = reference_to_keras_kernel(np.asarray(kernel, dtype=np.float32), flip)
        bias = np.asarray(bias, dtype=np.float32)
        expected = [tuple(w.shape) for w in layer.weights]
        if [kernel.shape, bias.shape] != expected:
            raise WeightsError(
                f"{path}: shapes {kernel.shape}, {bias.shape} do not fit layer {layer.name!r} {expected}"
            )
        layer.set_weights([kernel, bias])


def load_lasagne_npz(model: keras.Model, path: str | os.PathLike, flip_kernels: bool = False) -> None:
    """Loads the authors' Lasagne ``.npz`` (e.g. ``d5_c5.npz``) into a CascadeNet built to match it.

    Args:
        model: a ``cascadenet`` without batch norm whose cascades match the file (D5-C5 for ``d5_c5.npz``).
        path: the ``.npz`` file.
        flip_kernels: flip kernels spatially (for weights trained with Lasagne's true-convolution layer).

    Raises:
        WeightsError: unreadable file, unexpected array names, or counts / shapes that do not fit.
    """
    path = require_file(path, "weights file")
    convs = check_plain_cascades(model, path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            expected = [f"arr_{i}" for i in range(len(names))]
            if sorted(names) != sorted(expected):
                raise WeightsError(
                    f"{path}: expected arrays arr_0..arr_{len(names) - 1}, found {names[:4]}..."
                )
            arrays = [data[name] for name in expected]
    except WeightsError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile/numpy raise many types (NotImplementedError, ...)
        raise WeightsError(f"{path}: not a readable .npz weights file ({err})") from None
    if len(arrays) % 2:
        raise WeightsError(f"{path}: holds {len(arrays)} arrays; expected (kernel, bias) pairs")
    assign(convs, list(zip(arrays[0::2], arrays[1::2])), path, flip_kernels)


def load_torch_state_dict(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a PyTorch ``DnCn`` state dict (no batch norm, no data sharing) into a matching CascadeNet.

    Raises:
        WeightsError: torch missing, unreadable file, keys that are not a DnCn's, or shapes that do not fit.
    """
    path = require_file(path, "weights file")
    try:
        import torch
    except ImportError:
        raise WeightsError(f"{path}: reading a PyTorch state dict needs torch (pip install torch)") from None
    convs = check_plain_cascades(model, path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise WeightsError(
            f"{path}: not a readable PyTorch state dict ({type(err).__name__}: {err})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    tensors: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for key, value in state.items():
        match = TORCH_KEY.match(key)
        if not match:
            raise WeightsError(f"{path}: key {key!r} is not part of a DnCn without batch norm")
        cascade, index, kind = match.groups()
        tensors.setdefault((int(cascade or 0), int(index)), {})[kind] = value.detach().cpu().numpy()
    pairs = []
    for position in sorted(tensors):
        entry = tensors[position]
        if "weight" not in entry or "bias" not in entry or entry["weight"].ndim < 4:
            raise WeightsError(
                f"{path}: layer {position} is not a conv with bias (batch norm is not supported)"
            )
        pairs.append((entry["weight"], entry["bias"]))
    assign(convs, pairs, path, flip=False)


@register_weights_loader("cascadenet")
def load_cascadenet_weights(model: keras.Model, path: str | os.PathLike, flip_kernels: bool = False) -> None:
    """Loads ``path`` into ``model`` by its format: Lasagne ``.npz``, PyTorch ``.pth``/``.pt`` or Keras ``.h5``.

    Raises:
        WeightsError: an unknown extension, or a file the format's loader rejects.
    """
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".npz"):
        load_lasagne_npz(model, path, flip_kernels=flip_kernels)
    elif lower.endswith((".pth", ".pt")):
        load_torch_state_dict(model, path)
    elif lower.endswith(".h5"):
        require_file(path, "weights file")
        try:
            model.load_weights(path)
        except (OSError, ValueError, KeyError) as err:
            raise WeightsError(f"{path}: cannot load Keras weights ({err})") from None
    else:
        raise WeightsError(f"{path}: unknown weights format; expected .npz, .pth, .weights.h5 or .h5")

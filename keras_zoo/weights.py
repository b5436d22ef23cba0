"""Legacy Keras-2 ``.h5`` weight files: writing them, and loading them with a report of what matched.

The layout (also read by Keras 2 and by Keras 3's ``model.load_weights(path.h5)``):

- root attributes ``layer_names`` (bytes), ``backend``, ``keras_version``;
- one group per layer holding weights, with attribute ``weight_names`` (``"<layer>/<var>:0"``) and one
  dataset per weight, in the layer's order (trainable weights first, then non-trainable).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import h5py
import keras
import numpy as np

from keras_zoo.errors import WeightsError, require_file
from keras_zoo.io import atomic_path

log = logging.getLogger(__name__)


def _layers_with_weights(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def _decode(names) -> list[str]:
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]


def write_h5_weights_group(group: h5py.Group, model: keras.Model) -> None:
    """Writes the weights of ``model`` into an open HDF5 group in the legacy Keras-2 layout."""
    layers = _layers_with_weights(model)
    group.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in layers])
    group.attrs["backend"] = keras.config.backend().encode("utf8")
    group.attrs["keras_version"] = keras.__version__.encode("utf8")
    for layer in layers:
        g = group.create_group(layer.name)
        weights = layer.trainable_weights + layer.non_trainable_weights
        names = [f"{layer.name}/{w.name}:0".encode() for w in weights]
        g.attrs["weight_names"] = np.array(names)
        for name, weight in zip(names, weights):
            g.create_dataset(name.decode("utf8"), data=keras.ops.convert_to_numpy(weight.value))


def save_h5_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Saves ``model``'s weights to ``path`` in the legacy ``.h5`` layout, atomically.

    The file loads with plain ``model.load_weights(path)`` (Keras 3 or 2) into the same architecture, or
    by layer name with :func:`load_h5_weights`.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_h5_weights_group(f, model)


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_h5_weights` did.

    Attributes:
        path: the weight file.
        matched: model layers whose weights were set from the file.
        missing: model layers with weights that the file does not have (left as initialised).
        unused: layers in the file that the model does not have.
        mismatched: ``(layer, model shapes, file shapes)`` for layers present in both with other shapes.
    """

    path: str
    matched: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[tuple[str, list[tuple[int, ...]], list[tuple[int, ...]]]] = dataclasses.field(
        default_factory=list
    )

    def summary(self, limit: int = 5) -> str:
        """Human-readable report listing up to ``limit`` names per category."""

        def names(items: list) -> str:
            shown = ", ".join(str(i) for i in items[:limit])
            return shown + (f", ... (+{len(items) - limit})" if len(items) > limit else "")

        lines = [f"{self.path}: {len(self.matched)} layers matched"]
        if self.mismatched:
            detail = [f"{n} model {m} vs file {f}" for n, m, f in self.mismatched]
            lines.append(f"  {len(self.mismatched)} shape mismatches: {names(detail)}")
        if self.missing:
            lines.append(f"  {len(self.missing)} model layers not in the file: {names(self.missing)}")
        if self.unused:
            lines.append(f"  {len(self.unused)} file layers not in the model: {names(self.unused)}")
        return "\n".join(lines)


def read_h5_weights(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Reads a legacy ``.h5`` weight file (or a full Keras-2 model file) into ``{layer: [arrays]}``."""
    path = require_file(path, "weights file")
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise WeightsError(f"{path}: not a Keras .h5 weights file (no 'layer_names' attribute)")
            weights = {}
            for name in _decode(group.attrs["layer_names"]):
                g = group[name]
                weights[name] = [np.asarray(g[w]) for w in _decode(g.attrs.get("weight_names", []))]
            return weights
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... for corrupt files
        raise WeightsError(f"{path}: unreadable HDF5 weights file ({exc})") from None


def load_h5_weights(
    model: keras.Model,
    path: str | os.PathLike,
    by_name: bool = True,
    skip_mismatch: bool = False,
) -> LoadReport:
    """Loads a legacy ``.h5`` weight file into ``model`` and reports what matched.

    Args:
        model: the model to fill.
        path: ``.h5`` / ``.hdf5`` file in the Keras-2 layout (weights only or a full model file).
        by_name: match layers by name; otherwise by order of the layers that hold weights.
        skip_mismatch: leave layers with other shapes as they are instead of raising.

    Returns:
        A :class:`LoadReport`.

    Raises:
        WeightsError: the file is unreadable, nothing matched, or shapes differ and ``skip_mismatch`` is
            False. The message lists the first mismatches.
    """
    path = os.fspath(path)
    file_weights = read_h5_weights(path)
    layers = _layers_with_weights(model)
    report = LoadReport(path=path)
    if by_name:
        pairs = [(layer, file_weights.get(layer.name)) for layer in layers]
        report.unused = [n for n in file_weights if n not in {layer.name for layer in layers}]
    else:
        file_items = [v for v in file_weights.values() if v]
        if len(file_items) != len(layers):
            raise WeightsError(
                f"{path}: file has {len(file_items)} layers with weights, model {model.name!r} has {len(layers)}"
            )
        pairs = list(zip(layers, file_items))

    assignments = []
    for layer, values in pairs:
        if values is None:
            report.missing.append(layer.name)
            continue
        targets = layer.trainable_weights + layer.non_trainable_weights
        model_shapes = [tuple(w.shape) for w in targets]
        file_shapes = [tuple(v.shape) for v in values]
        if model_shapes != file_shapes:
            report.mismatched.append((layer.name, model_shapes, file_shapes))
            continue
        assignments.append((layer, targets, values))
        report.matched.append(layer.name)

    if report.mismatched and not skip_mismatch:
        raise WeightsError(f"weights do not fit model {model.name!r}: " + report.summary().replace("\n", ";"))
    if not report.matched:
        raise WeightsError(f"{path}: no layer of model {model.name!r} matched the file")
    for _, targets, values in assignments:
        for variable, value in zip(targets, values):
            variable.assign(value)
    log.info(report.summary())
    return report


def load_weights(
    model: keras.Model, path: str | os.PathLike, skip_mismatch: bool = False
) -> LoadReport | None:
    """Loads weights of any supported kind into ``model``.

    ``.weights.h5`` (Keras 3) and ``.keras`` (safe mode: weights only are taken) load by layer order;
    legacy ``.h5``/``.hdf5`` files load by layer name with a :class:`LoadReport`.
    """
    path = require_file(path, "weights file")
    if path.endswith(".weights.h5") and _is_legacy_h5(path):
        log.info("%s: a legacy Keras-2 .h5 file despite its name; loading it by layer name", path)
        return load_h5_weights(model, path, by_name=True, skip_mismatch=skip_mismatch)
    if path.endswith(".weights.h5"):
        try:
            model.load_weights(path, skip_mismatch=skip_mismatch)
        except Exception as exc:  # noqa: BLE001 - keras and h5py raise many types for a bad file
            problem = " ".join(str(exc).split())  # keras' messages span lines
            raise WeightsError(f"{path}: does not fit model {model.name!r} ({problem})") from None
        return None
    if path.endswith(".keras"):
        try:
            saved = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad archive
            raise WeightsError(f"{path}: cannot load .keras file safely ({exc})") from None
        return _copy_weights(saved, model, path)
    if path.endswith((".h5", ".hdf5")):
        return load_h5_weights(model, path, by_name=True, skip_mismatch=skip_mismatch)
    raise WeightsError(f"{path}: unknown weights format (expected .h5, .hdf5, .weights.h5 or .keras)")


def _is_legacy_h5(path: str) -> bool:
    """Whether ``path`` is in the legacy Keras-2 layout (root ``layer_names`` or a ``model_weights`` group)."""
    try:
        with h5py.File(path, "r") as f:
            return "layer_names" in f.attrs or "model_weights" in f
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... for corrupt files
        raise WeightsError(f"{path}: unreadable HDF5 weights file ({exc})") from None


def load_pretrained(name: str, model: keras.Model, path: str | os.PathLike, **options) -> LoadReport | None:
    """Loads ``path`` into the registered network ``name``'s ``model``: its reference formats or Keras files.

    Dispatches to the loader the network registered (:func:`keras_zoo.registry.register_weights_loader`;
    e.g. Genesis' Keras-2 ``.h5`` by name, CascadeNet's Lasagne ``.npz``, DeepLab's TF1 checkpoints) and to
    :func:`load_weights` for networks without one.

    Args:
        name: registry name of the network.
        model: the built model (the network or one of its variants).
        path: the weights file (or checkpoint prefix).
        **options: options of the network's loader (e.g. CascadeNet's ``flip_kernels``).

    Returns:
        The loader's :class:`LoadReport`, or None where the format loads by layer order.
    """
    from keras_zoo.registry import get_entry

    loader = get_entry(name).weights_loader
    if loader is None:
        return load_weights(model, path, **options)
    return loader(model, path, **options)


def _copy_weights(source: keras.Model, target: keras.Model, path: str) -> LoadReport:
    report = LoadReport(path=path)
    by_name = {layer.name: layer for layer in _layers_with_weights(source)}
    for layer in _layers_with_weights(target):
        src = by_name.pop(layer.name, None)
        if src is None:
            report.missing.append(layer.name)
        elif [tuple(w.shape) for w in src.weights] != [tuple(w.shape) for w in layer.weights]:
            report.mismatched.append(
                (layer.name, [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in src.weights])
            )
        else:
            layer.set_weights(src.get_weights())
            report.matched.append(layer.name)
    report.unused = list(by_name)
    if report.mismatched or not report.matched:
        raise WeightsError(
            f"weights do not fit model {target.name!r}: " + report.summary().replace("\n", ";")
        )
    log.info(report.summary())
    return report

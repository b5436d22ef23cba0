"""Weight files of every kind, loaded with a report of what matched (:class:`LoadReport`).

Keras 3 ``.weights.h5`` files (:func:`load_keras3_weights`) are keyed by layer class and order
(``layers/conv3d_1/vars/0``); Keras records each layer's name in an attribute of its ``vars`` group. A file
whose structure is the model's loads as Keras loads it; another (transfer into a variant) loads by layer
name, or by class and order where the file records no names. A transfer variant's new head layers
(``model.head_layers``, declared with :func:`keras_zoo.registry.register_variant`) are loaded only from a
file layer of their own name, never from the pretrained network's head of the same shape.

Legacy Keras-2 ``.h5`` files are written and loaded by layer name.

The layout (also read by Keras 2 and by Keras 3's ``model.load_weights(path.h5)``):

- root attributes ``layer_names`` (bytes), ``backend``, ``keras_version``;
- one group per layer holding weights, with attribute ``weight_names`` (``"<layer>/<var>:0"``) and one
  dataset per weight, in the layer's order (trainable weights first, then non-trainable).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import zipfile

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

    Raises:
        TypeError: ``model`` is not a Keras model.
        WeightsError: ``path`` is a folder.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"save_h5_weights takes a keras.Model, got {type(model).__name__}")
    if os.path.isdir(path):
        raise WeightsError(f"{os.fspath(path)}: is a folder; give the weights file's name")
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
        new_head: the model's declared head layers (``model.head_layers``) that the file does not have
            (also in ``missing``): a transfer variant's new head, left as initialised.
    """

    path: str
    matched: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[tuple[str, list[tuple[int, ...]], list[tuple[int, ...]]]] = dataclasses.field(
        default_factory=list
    )
    new_head: list[str] = dataclasses.field(default_factory=list)

    def summary(self, limit: int = 5) -> str:
        """Human-readable report listing up to ``limit`` names per category."""

        def names(items: list) -> str:
            shown = ", ".join(str(i) for i in items[:limit])
            return shown + (f", ... (+{len(items) - limit})" if len(items) > limit else "")

        lines = [f"{self.path}: {len(self.matched)} layers matched"]
        if self.mismatched:
            detail = [f"{n} model {m} vs file {f}" for n, m, f in self.mismatched]
            lines.append(f"  {len(self.mismatched)} shape mismatches: {names(detail)}")
        if self.new_head:
            lines.append(f"  {len(self.new_head)} new head layers left initialised: {names(self.new_head)}")
        others = [n for n in self.missing if n not in self.new_head]
        if others:
            lines.append(f"  {len(others)} model layers not in the file: {names(others)}")
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

    _note_heads(report, model)
    if report.mismatched and not skip_mismatch:
        raise WeightsError(f"weights do not fit model {model.name!r}: " + report.summary().replace("\n", ";"))
    if not report.matched:
        raise WeightsError(f"{path}: no layer of model {model.name!r} matched the file")
    for _, targets, values in assignments:
        for variable, value in zip(targets, values):
            variable.assign(value)
    log.info(report.summary())
    return report


def load_weights(model: keras.Model, path: str | os.PathLike, skip_mismatch: bool = False) -> LoadReport:
    """Loads weights of any supported kind into ``model`` and returns (and logs) a :class:`LoadReport`.

    ``.weights.h5`` (Keras 3) loads as :func:`load_keras3_weights` says; ``.keras`` (safe mode: weights only
    are taken) and legacy ``.h5``/``.hdf5`` files load by layer name. The model's declared head layers
    (``model.head_layers``) absent from the file are reported as ``new_head``.

    Raises:
        WeightsError: unreadable file, unknown format, nothing matched, or shape mismatches (one line naming
            the file).
    """
    path = require_file(path, "weights file")
    if path.endswith(".weights.h5") and _h5_layout(path) == "legacy":
        log.info("%s: a legacy Keras-2 .h5 file despite its name; loading it by layer name", path)
        return load_h5_weights(model, path, by_name=True, skip_mismatch=skip_mismatch)
    if path.endswith(".weights.h5"):
        return load_keras3_weights(model, path, skip_mismatch=skip_mismatch)
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):  # Keras would say "File not found"
            raise WeightsError(f"{path}: not a .keras archive (not a zip file)")
        try:
            saved = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad archive
            raise WeightsError(f"{path}: cannot load .keras file safely ({exc})") from None
        return _copy_weights(saved, model, path, skip_mismatch)
    if path.endswith((".h5", ".hdf5")):
        if _h5_layout(path) == "keras3":
            log.info("%s: a Keras 3 .weights.h5 file despite its name; loading it as one", path)
            return load_keras3_weights(model, path, skip_mismatch=skip_mismatch)
        return load_h5_weights(model, path, by_name=True, skip_mismatch=skip_mismatch)
    raise WeightsError(f"{path}: unknown weights format (expected .h5, .hdf5, .weights.h5 or .keras)")


def _h5_layout(path: str) -> str | None:
    """``"legacy"`` (Keras 2: root ``layer_names`` or a ``model_weights`` group), ``"keras3"`` (a ``layers``
    group, as ``.weights.h5``) or None, whatever the file's name."""
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or "model_weights" in f:
                return "legacy"
            return "keras3" if isinstance(f.get("layers"), h5py.Group) else None
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
        The loader's :class:`LoadReport` (a network's loader of a reference format may return None).
    """
    from keras_zoo.registry import get_entry

    loader = get_entry(name).weights_loader
    if loader is None:
        return load_weights(model, path, **options)
    return loader(model, path, **options)


def _copy_weights(
    source: keras.Model, target: keras.Model, path: str, skip_mismatch: bool = False
) -> LoadReport:
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
    _note_heads(report, target)
    if (report.mismatched and not skip_mismatch) or not report.matched:
        raise WeightsError(
            f"weights do not fit model {target.name!r}: " + report.summary().replace("\n", ";")
        )
    log.info(report.summary())
    return report


def _note_heads(report: LoadReport, model: keras.Model) -> None:
    """Lists the model's declared head layers that the file did not fill as ``report.new_head``."""
    heads = set(getattr(model, "head_layers", ()))
    report.new_head = [name for name in report.missing if name in heads]


@dataclasses.dataclass
class _Entry:
    """One top-level layer group of a Keras 3 weights file: ``layers/<key>``."""

    key: str  # snake-cased class name plus counter, e.g. "conv3d_2"
    name: str | None  # the layer's name, where Keras recorded it (attribute of its ``vars`` group)
    # (dataset path inside the group, shape), nested layers included
    shapes: list[tuple[str, tuple[int, ...]]]

    @property
    def kind(self) -> str:
        return _KEY.fullmatch(self.key).group(1)

    @property
    def order(self) -> int:
        return int(_KEY.fullmatch(self.key).group(2) or 0)

    @property
    def label(self) -> str:
        return self.name or self.key


_KEY = re.compile(r"(.*?)(?:_(\d+))?")


def _snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how a weights file names a layer's class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_keys(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """``{file key: layer}`` for ``model.layers``, numbered as Keras numbers them when it saves."""
    keys, used = {}, {}
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        keys[f"{base}_{used[base]}" if used[base] else base] = layer
    return keys


def _dataset_shapes(group: h5py.Group) -> list[tuple[str, tuple[int, ...]]]:
    shapes = []
    group.visititems(lambda n, o: shapes.append((n, tuple(o.shape))) if isinstance(o, h5py.Dataset) else None)
    return shapes


def _read_entries(path: str) -> dict[str, _Entry]:
    """The layer groups holding weights of a Keras 3 ``.weights.h5`` file, by key."""
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("layers"), h5py.Group):
                raise WeightsError(f"{path}: not a Keras 3 .weights.h5 file (no 'layers' group)")
            entries = {}
            for key, group in f["layers"].items():
                shapes = _dataset_shapes(group)
                if not shapes:
                    continue
                name = group["vars"].attrs.get("name") if "vars" in group else None
                name = name.decode("utf8") if isinstance(name, bytes) else name
                entries[key] = _Entry(key, str(name) if name is not None else None, sorted(shapes))
            return entries
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ... for corrupt files
        raise WeightsError(f"{path}: unreadable HDF5 weights file ({exc})") from None


def _keras_load(model: keras.Model, path: str, shown: str) -> None:
    """``model.load_weights(path)`` of a Keras 3 weights file of any name (Keras goes by the suffix)."""
    if not path.endswith(".weights.h5"):
        with tempfile.TemporaryDirectory(prefix="keras_zoo_weights_") as tmp:
            alias = os.path.join(tmp, "file.weights.h5")
            os.symlink(os.path.abspath(path), alias)
            return _keras_load(model, alias, shown)
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - keras and h5py raise many types for a bad file
        problem = " ".join(str(exc).split())  # keras' messages span lines
        raise WeightsError(f"{shown}: does not fit model {model.name!r} ({problem})") from None


def load_keras3_weights(
    model: keras.Model, path: str | os.PathLike, skip_mismatch: bool = False
) -> LoadReport:
    """Loads a Keras 3 ``.weights.h5`` file into ``model`` and reports what matched.

    - The file's structure is the model's (same layer groups and shapes, and every declared head layer of
      ``model.head_layers`` named as in the model): loaded by ``model.load_weights``, every layer matched.
    - Otherwise (transfer, e.g. pretrained genesis into its segmenter): layers are matched by name where
      the file records names (Keras does), else by class in order; declared head layers only by name,
      so a pretraining head never fills a variant's new head. Unmatched model layers keep their values.

    Args:
        model: the model to fill.
        path: the ``.weights.h5`` file.
        skip_mismatch: leave layers with other shapes as they are instead of raising.

    Returns:
        A :class:`LoadReport` (logged).

    Raises:
        WeightsError: unreadable file, nothing matched, or shape mismatches (``skip_mismatch`` False); one
            line naming the file.
    """
    path = os.fspath(path)
    file_entries = _read_entries(path)
    keys = _layer_keys(model)
    heads = set(getattr(model, "head_layers", ()))
    report = LoadReport(path=path)
    with tempfile.TemporaryDirectory(prefix="keras_zoo_weights_") as tmp:
        own = os.path.join(tmp, "model.weights.h5")
        model.save_weights(own)
        model_entries = {key: entry for key, entry in _read_entries(own).items() if key in keys}
        structure = {k: e.shapes for k, e in model_entries.items()}
        same = structure == {k: e.shapes for k, e in file_entries.items()} and all(
            file_entries[k].name == keys[k].name for k in model_entries if keys[k].name in heads
        )
        if same:
            _keras_load(model, path, path)
            report.matched = [layer.name for k, layer in keys.items() if k in model_entries]
            log.info(report.summary())
            return report

        pairs = _pair_entries(model_entries, file_entries, keys, heads)
        used = set()
        assignments = []
        for key in [k for k in keys if k in model_entries]:  # in the model's layer order
            layer, source = keys[key], pairs.get(key)
            if source is None:
                report.missing.append(layer.name)
                continue
            used.add(source.key)
            expected = [s for _, s in model_entries[key].shapes]
            found = [s for _, s in source.shapes]
            if model_entries[key].shapes != source.shapes:
                report.mismatched.append((layer.name, expected, found))
                continue
            assignments.append((key, source.key))
            report.matched.append(
                layer.name if source.label == layer.name else f"{layer.name}<-{source.label}"
            )
        report.unused = [e.label for k, e in file_entries.items() if k not in used]
        _note_heads(report, model)
        if report.mismatched and not skip_mismatch:
            raise WeightsError(
                f"weights do not fit model {model.name!r}: " + report.summary().replace("\n", ";")
            )
        if not report.matched:
            raise WeightsError(f"{path}: no layer of model {model.name!r} matched the file")
        try:
            with h5py.File(path, "r") as src, h5py.File(own, "a") as dst:
                for key, source_key in assignments:  # the model's own file, matched layers from the file
                    del dst["layers"][key]
                    src.copy(src["layers"][source_key], dst["layers"], name=key)
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError, ...
            raise WeightsError(f"{path}: unreadable HDF5 weights file ({exc})") from None
        _keras_load(model, own, path)
    log.info(report.summary())
    return report


def _pair_entries(
    model_entries: dict[str, _Entry],
    file_entries: dict[str, _Entry],
    keys: dict[str, keras.layers.Layer],
    heads: set[str],
) -> dict[str, _Entry]:
    """``{model key: file entry}``: by layer name where the file records every name, else by class in order.

    Declared head layers pair only with a file layer of their own name.
    """
    by_name = {e.name: e for e in file_entries.values()}
    if all(e.name is not None for e in file_entries.values()):
        return {k: by_name[keys[k].name] for k in model_entries if keys[k].name in by_name}
    pairs = {}
    queues: dict[str, list[_Entry]] = {}
    for entry in sorted(file_entries.values(), key=lambda e: e.order):
        queues.setdefault(entry.kind, []).append(entry)
    for key in sorted(model_entries, key=lambda k: model_entries[k].order):
        name = keys[key].name
        if name in heads:
            if name in by_name:
                pairs[key] = by_name[name]
            continue
        queue = queues.get(model_entries[key].kind)
        if queue:
            pairs[key] = queue.pop(0)
    return pairs

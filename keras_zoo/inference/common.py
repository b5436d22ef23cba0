"""What every network's inference needs: input file lists, output paths that never overwrite by accident,
file stems, and a trained model rebuilt at another input size."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator, Sequence

import keras

from keras_zoo.errors import ConfigError, data_error, require_dir, require_file
from keras_zoo.io import atomic_path, write_text
from keras_zoo.run_folder import made_folder

DOUBLE_SUFFIXES = (".nii.gz",)


def file_stem(path: str | os.PathLike) -> str:
    """The file name without its extension (``ct.nii.gz`` -> ``ct``, ``a.b.png`` -> ``a.b``)."""
    name = os.path.basename(os.fspath(path).rstrip(os.sep))
    for suffix in DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def list_inputs(
    path: str | os.PathLike, suffixes: Sequence[str], what: str, recursive: bool = False
) -> list[str]:
    """The files named by ``path``: the file itself, or the files of a folder ending in ``suffixes``, sorted
    (with ``recursive``, those of its subfolders too, e.g. ImageNet's ``<wnid>/`` folders).

    Raises:
        DataError: ``path`` is missing or empty, a folder holds no such file, or a file has another
            extension.
    """
    path = os.fspath(path)
    suffixes = tuple(s.lower() for s in suffixes)
    if os.path.isdir(path):
        folder = require_dir(path, "input folder")
        walk = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
        files = sorted(
            os.path.join(root, name)
            for root, _, names in walk
            for name in names
            if name.lower().endswith(suffixes) and not name.startswith(".")
        )
        if not files:
            raise data_error(folder, f"no {what} ({', '.join(suffixes)}) in the input folder")
        return files
    require_file(path, "input file")
    if not path.lower().endswith(suffixes):
        raise data_error(path, f"unsupported input for this network (expected {', '.join(suffixes)})")
    return [path]


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[str]:
    """``with output_folder(folder) as path:`` the results folder, created when missing and removed again if
    the block fails before writing into it (:func:`keras_zoo.run_folder.made_folder`).

    Raises:
        ConfigError: ``folder`` is an existing file.
    """
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"--output {folder}: is a file; give a folder for the results")
    with made_folder(folder) as path:
        yield path


class OutputClaims:
    """The files one command writes, each claimed before it is written.

    A claim is refused (ConfigError) when the path is one of the command's input files (even with ``overwrite``:
    an input is never replaced), was claimed before by the same command (two inputs whose results get one
    name), or exists while ``overwrite`` is False.

    Args:
        overwrite: whether existing files (other than inputs) may be replaced (``--overwrite``).
        inputs: the command's input files (or DICOM folders).
    """

    def __init__(self, overwrite: bool, inputs: Sequence[str | os.PathLike] = ()) -> None:
        self.overwrite = overwrite
        self._inputs = {os.path.realpath(path) for path in inputs}
        self._claimed: set[str] = set()

    def claim(self, path: str | os.PathLike) -> str:
        """Returns ``path`` to write, or raises ConfigError (see the class)."""
        path = os.fspath(path)
        real = os.path.realpath(path)
        if real in self._inputs:
            raise ConfigError(
                f"{path}: is an input of this command; give another --output (inputs are never replaced, "
                "not even with --overwrite)"
            )
        if real in self._claimed:
            raise ConfigError(
                f"{path}: two inputs give results of this name; rename one or predict them apart"
            )
        if os.path.exists(path) and not self.overwrite:
            raise ConfigError(f"{path}: exists; pass --overwrite to replace it")
        self._claimed.add(real)
        return path

    def claim_all(self, paths: Sequence[str]) -> list[str]:
        """:meth:`claim` for every path before anything is written, so a refusal leaves no partial results."""
        return [self.claim(path) for path in paths]


def require_distinct_stems(files: Sequence[str]) -> None:
    """Refuses inputs whose results would share names: two files of one stem (``s0.png``, ``s0.tif``).

    Raises:
        ConfigError: naming both files.
    """
    seen: dict[str, str] = {}
    for path in files:
        stem = file_stem(path)
        if stem in seen:
            raise ConfigError(
                f"{seen[stem]} and {path}: both give results named {stem}*; rename one or predict them apart"
            )
        seen[stem] = path


def with_input_size(model: keras.Model, spatial: Sequence[int | None]) -> keras.Model:
    """The same functional network taking inputs of spatial size ``spatial``: its layers (and so its
    weights) shared, on new inputs.

    Works for networks whose layers do not store a spatial size (U-Net, Models Genesis, CascadeNet);
    DeepLabv3+'s image pooling does, so it is rebuilt by its factory instead (see
    :mod:`keras_zoo.inference.deeplab`). Returns ``model`` itself when its inputs already have that size.
    The network is rewired with ``keras.models.clone_model`` reusing each layer, not serialised: Keras'
    serialisation imports TensorFlow wherever it is installed, also under JAX and torch.

    Args:
        model: functional model whose inputs are (batch, *spatial, channels).
        spatial: new spatial sizes (None = any).

    Raises:
        ConfigError: an input of another rank than ``len(spatial) + 2``.
    """
    spatial = tuple(None if s is None else int(s) for s in spatial)
    if all(tuple(t.shape[1:-1]) == spatial for t in model.inputs):
        return model
    inputs = []
    for tensor in model.inputs:
        if len(tensor.shape) != len(spatial) + 2:
            raise ConfigError(
                f"model {model.name!r} takes {len(tensor.shape) - 2}-D inputs, not {len(spatial)}-D"
            )
        batch_shape = (tensor.shape[0], *spatial, tensor.shape[-1])
        inputs.append(keras.Input(batch_shape=batch_shape, dtype=tensor.dtype, name=tensor.name))
    inputs = keras.tree.pack_sequence_as(model.input, inputs)  # the model's input structure
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda layer: layer)


def model_spatial_size(model: keras.Model) -> tuple[int | None, ...]:
    """Spatial input size of ``model``'s first input (None where any size goes)."""
    return tuple(model.inputs[0].shape[1:-1])


def write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Writes a CSV file atomically: ``header`` then ``rows``."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path: str, data: dict) -> None:
    """Writes ``data`` as indented JSON atomically (NaN written as null)."""
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in data.items()}
    write_text(path, json.dumps(clean, indent=2) + "\n")

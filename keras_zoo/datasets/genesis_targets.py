"""Fine-tuning data of the Models Genesis target tasks: segmentation and classification cubes.

A user's folder holds ``x.npy`` (n, rows, cols, depth) + ``y.npy`` (n, rows, cols, depth) for segmentation
or (n,) for classification, or (segmentation) ``images/*.nii*`` with labels of the same names in
``labels/``. Without data, synthetic CT cubes give body masks or nodule presence.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from keras_zoo.datasets import volumes
from keras_zoo.errors import data_error, require_dir, require_file

if TYPE_CHECKING:
    from keras_zoo.datasets.base import SeededSamples

BODY_HU = -500.0  # synthetic segmentation target: body (tissue, bone) vs air and lung
TARGET_TASKS = ("segment", "classify")
UNWINDOWED_HINT = (  # the window of the pretraining cubes: keras_zoo.datasets.volumes.hu_window
    "; window raw intensities to [0, 1] first, as the pretraining cubes are (CT: HU clipped to [-1000, 1000])"
)


def check_labels(y: np.ndarray, path: str | os.PathLike, classes: int = 1) -> np.ndarray:
    """Returns ``y`` after checking that its values are class indices of a ``classes``-class model: 0 or 1
    for one class (a sigmoid), integers in [0, classes) otherwise.

    Raises:
        DataError: naming ``path``, the values found and those expected.
    """
    allowed = (0, 1) if classes == 1 else range(classes)
    values = np.unique(y)
    bad = values[~np.isin(values, allowed)]
    if len(bad):
        shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
        expected = "0 or 1 (--classes 1: a sigmoid)" if classes == 1 else f"integers 0..{classes - 1}"
        hint = ""
        if classes == 1 and set(values) <= {0, 255}:
            hint = " (a 0/255 mask? divide it by 255)"
        elif classes == 1 and np.all(values == np.rint(values)) and values.min() >= 0:
            hint = f" ({int(values.max()) + 1} classes? give --classes {int(values.max()) + 1})"
        raise data_error(path, f"labels must be {expected}, got values {{{shown}}}{hint}")
    return y


def read_target(
    root: str,
    task: str,
    shape: tuple[int, int, int],
    cubes: int,
    modality: str,
    seed: int,
    classes: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads a user's fine-tuning folder.

    Args:
        root: the folder (``--data``).
        task: ``"segment"`` or ``"classify"``.
        shape: cube shape (rows, cols, depth).
        cubes: cubes drawn per NIfTI volume.
        modality: intensity window of NIfTI volumes (``"ct"`` or ``"mr"``).
        seed: seeds the cube positions.
        classes: the model's classes: labels must be 0/1 for 1 (a sigmoid), 0..classes-1 otherwise.

    Returns:
        ``(x, y)``: float32 cubes (n, rows, cols, depth) in [0, 1], and labels (n, rows, cols, depth) or (n,).

    Raises:
        DataError: a missing folder or ``y.npy``, arrays that do not fit ``shape``, ``x.npy`` values outside
            [0, 1] (the pretraining cubes' range), labels that are not class indices of ``classes``, or a
            label volume cubes cannot be drawn from.
    """
    root = require_dir(root, "fine-tuning data folder")
    x_path, y_path = os.path.join(root, "x.npy"), os.path.join(root, "y.npy")
    if os.path.isfile(x_path):
        if not os.path.lexists(y_path):
            raise data_error(y_path, "not found: x.npy needs its labels in y.npy beside it")
        require_file(y_path, "labels file")
        x = volumes.check_volume(np.load(x_path, allow_pickle=False).astype(np.float32), x_path)
        y = volumes.check_volume(
            np.load(y_path, allow_pickle=False).astype(np.float32), y_path, allow_constant=True
        )
        expected = (len(x), *shape) if task == "segment" else (len(x),)
        if x.shape[1:] != shape or y.shape != expected:
            raise data_error(root, f"x.npy {x.shape} / y.npy {y.shape} do not fit --input-size {shape}")
        volumes.check_unit_range(x, x_path, UNWINDOWED_HINT)
        return x, check_labels(y, y_path, classes)
    if task != "segment":
        raise data_error(root, "classification data must be x.npy (n, rows, cols, depth) + y.npy (n,)")
    images = require_dir(os.path.join(root, "images"), "images folder")
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for name in sorted(os.listdir(images)):
        label_path = os.path.join(root, "labels", name)
        volume = volumes.hu_window(volumes.read_volume(os.path.join(images, name)), modality)
        label = np.rint(volumes.read_volume(label_path, allow_constant=True))  # a volume may hold no target
        check_labels(label, label_path, classes)
        try:
            x, y = volumes.extract_paired_cubes(volume, label, cubes, rng, shape)
        except ValueError as exc:
            raise data_error(label_path, str(exc)) from None
        xs.append(x)
        ys.append(y)
    if not xs:
        raise data_error(images, "no volumes")
    return np.concatenate(xs), np.concatenate(ys)


def synthetic_target(task: str, count: int, shape, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic fine-tuning data: CT cubes with body masks (HU > -500), or with/without a bright nodule.

    Returns:
        ``(x, y)``: float32 cubes (count, *shape) and body masks of the same shape (``"segment"``) or
        nodule labels (count,) alternating 0, 1 (``"classify"``).
    """
    cubes = volumes.synthetic_cubes(count, seed=seed + 1000, cube_shape=shape)
    if task == "segment":
        return cubes, (cubes > volumes.hu_window(np.float32(BODY_HU))).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 2).astype(np.float32)
    grid = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), -1)
    for cube, label in zip(cubes, labels):
        if label:
            radius = rng.uniform(2, max(3, min(shape) / 5))
            centre = rng.uniform(radius, np.array(shape) - radius)
            cube[np.linalg.norm(grid - centre, axis=-1) < radius] = 0.6  # +200 HU nodule
    return cubes, labels


def split_target(
    x: np.ndarray, y: np.ndarray, task: str, seed: int = 0, source: str = "synthetic"
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_val, y_val))``: a seeded quarter held out, a channel axis added.

    Args:
        x: cubes (n, rows, cols, depth).
        y: labels (n, rows, cols, depth) for ``"segment"``, (n,) for ``"classify"``.
        task: ``"segment"`` or ``"classify"``.
        seed: seed of the split.
        source: named by the error.

    Returns:
        x as (n, rows, cols, depth, 1), y as (n, rows, cols, depth, 1) for segmentation, split.

    Raises:
        DataError: fewer than 2 samples.
    """
    from keras_zoo.datasets.base import split_indices  # imports Keras: only when used

    train_idx, val_idx = split_indices(len(x), 0.25, seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise data_error(source, f"need at least 2 samples, got {len(x)}")
    x, y = x[..., None], (y[..., None] if task == "segment" else y)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def target_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, steps: int, seed: int = 0, workers: int | None = None
) -> SeededSamples:
    """Seeded training batches ``(x (batch, ...), y (batch, ...))`` of the samples ``x``, ``y``; an epoch walks a
    seeded permutation (:class:`keras_zoo.datasets.base.SeededSamples` with ``order="permutation"``)."""
    from keras_zoo.datasets.base import SeededSamples, worker_options

    def make_sample(rng: np.random.Generator, item: int):
        return x[item], y[item]

    # Copying samples holds the GIL only briefly: threads, which spare the batches a trip through a pipe.
    return SeededSamples(
        make_sample, len(x), batch_size, steps, seed, order="permutation", **worker_options(workers)
    )

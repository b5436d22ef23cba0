"""Models Genesis self-supervised transforms and (transformed, original) training pairs.

Cubes are float arrays (rows, cols, depth) in [0, 1]. The four transforms of the reference
(``keras/utils.py``), applied per cube in its order with its probabilities as defaults:

1. flips of rows and/or columns, applied to input *and* target (depth is never flipped: the reference picks
   an axis of (1, rows, cols, depth) among the first three, and the channel axis is a no-op);
2. local pixel shuffling: 10,000 blocks of 1..dim//10 voxels per axis, each permuted internally, read from
   the original and written into the copy;
3. a non-linear intensity mapping by a cubic Bezier curve, increasing or (p=0.5) inverted;
4. in-painting (up to 5 noise boxes) or out-painting (noise everywhere but up to 5 windows of the original).

Every transform keeps the shape and the [0, 1] range. All randomness comes from a ``numpy.random.Generator``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

from keras_zoo.datasets.base import SeededSamples, worker_options

Box = tuple[slice, slice, slice]


@dataclasses.dataclass(frozen=True)
class TransformRates:
    """Probabilities of the transforms (reference defaults).

    Attributes:
        flip: probability of each of up to three flip draws (each flips rows, cols or nothing).
        local: local pixel shuffling.
        nonlinear: Bezier intensity mapping.
        paint: painting of either kind.
        outpaint: out-painting given painting (in-painting otherwise, 1 - 0.8 = 0.2).
    """

    flip: float = 0.4
    local: float = 0.5
    nonlinear: float = 0.9
    paint: float = 0.9
    outpaint: float = 0.8

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TransformRates.{field.name} must be in [0, 1], got {value}")


def _check_cube(cube: np.ndarray) -> None:
    if cube.ndim != 3:
        raise ValueError(f"expected a cube (rows, cols, depth), got shape {cube.shape}")


def flip_pair(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, rate: float = 0.4):
    """Flips input and target alike: up to 3 times, while ``random() < rate``, rows, cols or nothing.

    Args:
        x, y: cubes (rows, cols, depth).

    Returns:
        (x, y) flipped copies (views are copied).
    """
    for _ in range(3):
        if rng.random() >= rate:
            break
        axis = int(rng.integers(0, 3)) - 1  # -1 is the reference's no-op channel axis
        if axis >= 0:
            x, y = np.flip(x, axis), np.flip(y, axis)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def local_pixel_shuffling(cube: np.ndarray, rng: np.random.Generator, num_blocks: int = 10_000) -> np.ndarray:
    """Permutes the voxels inside ``num_blocks`` random small blocks (vectorised per block size).

    Block sizes are uniform in [1, dim//10] per axis and positions uniform within the cube; windows are read
    from the original and written into the result, later blocks of a size over earlier ones. Blocks are
    handled by size, smallest (rows, cols, depth) first, each size in one gather, shuffle and scatter on the
    flattened cube.

    Args:
        cube: (rows, cols, depth) array.

    Returns:
        A new array of the same shape and dtype.
    """
    _check_cube(cube)
    out = cube.copy()
    source, target = cube.reshape(-1), out.reshape(-1)
    shape = np.array(cube.shape)
    strides = np.array([shape[1] * shape[2], shape[2], 1])  # of the flattened C-order cube
    limits = np.maximum(shape // 10, 1)
    sizes = rng.integers(1, limits + 1, size=(num_blocks, 3))
    corners = (rng.random((num_blocks, 3)) * (shape - sizes + 1)).astype(np.int64)
    starts = corners @ strides
    keys = sizes @ np.array([10_000, 100, 1])  # orders sizes as (rows, cols, depth) tuples
    by_size = np.argsort(keys, kind="stable")  # keeps the draw order of the blocks within a size
    groups = np.split(by_size, np.flatnonzero(np.diff(keys[by_size])) + 1) if num_blocks else []
    for blocks in groups:
        rows, cols, depth = (np.arange(n) * stride for n, stride in zip(sizes[blocks[0]], strides))
        offsets = (rows[:, None, None] + cols[None, :, None] + depth[None, None, :]).reshape(-1)
        index = starts[blocks][:, None] + offsets[None, :]  # (blocks, voxels per block)
        order = np.argsort(rng.random(index.shape), axis=1)
        target[index] = source[np.take_along_axis(index, order, axis=1)]
    return out


@functools.lru_cache(maxsize=4)
def _bernstein_basis(num_points: int) -> np.ndarray:
    """The four cubic Bernstein polynomials at ``num_points`` even steps of [0, 1]: read-only (4, num_points).

    Cached, as it is the same for every curve: at the default 100,000 points computing it took 60 % of
    :func:`bezier_curve`'s time.
    """
    t = np.linspace(0.0, 1.0, num_points)
    basis = np.stack([(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3])
    basis.setflags(write=False)
    return basis


def bezier_curve(rng: np.random.Generator, num_points: int = 100_000, inverted: bool | None = None):
    """Samples the reference's intensity mapping: a cubic Bezier through (0,0), (r1,r2), (r3,r4), (1,1).

    Args:
        rng: random generator (draws the four control values, then ``inverted`` with p=0.5 if None).
        num_points: samples of the curve.
        inverted: pair increasing inputs with decreasing outputs (a decreasing mapping).

    Returns:
        (xs, ys): ``xs`` increasing in [0, 1]; ``ys`` sorted increasing, or decreasing when inverted.
    """
    control = np.concatenate([[[0.0, 0.0]], rng.random((2, 2)), [[1.0, 1.0]]])
    if inverted is None:
        inverted = bool(rng.random() < 0.5)
    basis = _bernstein_basis(num_points)
    xs, ys = np.sort(basis.T @ control[:, 0]), np.sort(basis.T @ control[:, 1])
    return xs, (ys[::-1] if inverted else ys)


def nonlinear_transform(
    cube: np.ndarray, rng: np.random.Generator, inverted: bool | None = None
) -> np.ndarray:
    """Maps every voxel through a random Bezier curve (:func:`bezier_curve`) by linear interpolation.

    The voxels are interpolated in increasing order, where ``np.interp`` finds each one's place on the curve
    next to the previous one's instead of by a binary search over all 100,000 points; the values are those
    of ``np.interp(cube, xs, ys)``.
    """
    _check_cube(cube)
    xs, ys = bezier_curve(rng, inverted=inverted)
    flat = cube.reshape(-1)
    order = np.argsort(flat)
    out = np.empty(flat.shape, cube.dtype)
    out[order] = np.interp(flat[order], xs, ys)
    return out.reshape(cube.shape)


def _random_box(rng: np.random.Generator, shape: Sequence[int], sizes: Sequence[int]) -> Box:
    """A box of ``sizes`` at least 3 voxels from every border (less in cubes too small for that)."""
    margins = [min(3, (dim - size) // 2) for dim, size in zip(shape, sizes)]
    starts = [int(rng.integers(m, dim - size - m + 1)) for dim, size, m in zip(shape, sizes, margins)]
    return tuple(slice(s, s + size) for s, size in zip(starts, sizes))


def sample_inpaint_boxes(shape: Sequence[int], rng: np.random.Generator) -> list[Box]:
    """Up to 5 in-painting boxes (the loop goes on while ``random() < 0.95``), dim//6..dim//3 per axis."""
    boxes = []
    while len(boxes) < 5 and rng.random() < 0.95:
        sizes = [int(rng.integers(dim // 6, dim // 3 + 1)) for dim in shape]
        boxes.append(_random_box(rng, shape, sizes))
    return boxes


def sample_outpaint_windows(shape: Sequence[int], rng: np.random.Generator) -> list[Box]:
    """One out-painting window plus up to 4 more while ``random() < 0.95``; size dim - U[3dim//7, 4dim//7]."""
    windows = []
    while not windows or (len(windows) < 5 and rng.random() < 0.95):
        sizes = [dim - int(rng.integers(3 * dim // 7, 4 * dim // 7 + 1)) for dim in shape]
        windows.append(_random_box(rng, shape, sizes))
    return windows


def in_painting(cube: np.ndarray, rng: np.random.Generator, boxes: list[Box] | None = None) -> np.ndarray:
    """Fills boxes (sampled by :func:`sample_inpaint_boxes` unless given) with U[0, 1) noise."""
    _check_cube(cube)
    boxes = sample_inpaint_boxes(cube.shape, rng) if boxes is None else boxes
    out = cube.copy()
    for box in boxes:
        out[box] = rng.random(out[box].shape)
    return out


def out_painting(cube: np.ndarray, rng: np.random.Generator, windows: list[Box] | None = None) -> np.ndarray:
    """Replaces the cube by U[0, 1) noise except inside windows of the original (sampled unless given)."""
    _check_cube(cube)
    windows = sample_outpaint_windows(cube.shape, rng) if windows is None else windows
    out = rng.random(cube.shape).astype(cube.dtype)
    for window in windows:
        out[window] = cube[window]
    return out


def make_pair(cube: np.ndarray, rng: np.random.Generator, rates: TransformRates = TransformRates()):
    """Corrupts one cube as the reference's ``generate_pair`` does.

    Args:
        cube: (rows, cols, depth) in [0, 1].
        rng: random generator.
        rates: transform probabilities.

    Returns:
        (transformed, original), both (rows, cols, depth) float32.
    """
    _check_cube(cube)
    x, y = flip_pair(cube.astype(np.float32), cube.astype(np.float32), rng, rates.flip)
    if rng.random() < rates.local:
        x = local_pixel_shuffling(x, rng)
    if rng.random() < rates.nonlinear:
        x = nonlinear_transform(x, rng)
    if rng.random() < rates.paint:
        x = out_painting(x, rng) if rng.random() < rates.outpaint else in_painting(x, rng)
    return x.astype(np.float32), y


def make_pair_batch(cubes: np.ndarray, rng: np.random.Generator, rates: TransformRates = TransformRates()):
    """Pairs for a batch of cubes (n, rows, cols, depth): returns (x, y) of shape (n, rows, cols, depth, 1)."""
    pairs = [make_pair(cube, rng, rates) for cube in cubes]
    x = np.stack([p[0] for p in pairs])[..., None]
    y = np.stack([p[1] for p in pairs])[..., None]
    return x, y


def genesis_pairs(
    cubes: np.ndarray,
    batch_size: int = 6,
    steps: int | None = None,
    seed: int = 0,
    rates: TransformRates = TransformRates(),
    workers: int | None = 0,
) -> SeededSamples:
    """Training stream of (transformed, original) batches from cubes (n, rows, cols, depth) in [0, 1].

    Each epoch walks a seeded permutation of the cubes, so a batch holds ``batch_size`` distinct cubes
    (when there are that many), as the reference's generator, which reshuffles for every batch, does. Each
    pair is one sample of :class:`SeededSamples`, corrupted with its own generator. ``steps`` defaults to
    ``n // batch_size`` (at least 1).

    Args:
        cubes: (n, rows, cols, depth) float in [0, 1].
        batch_size: cubes per batch.
        steps: batches per epoch.
        seed: base seed.
        rates: transform probabilities.
        workers: parallel worker threads (see :func:`keras_zoo.datasets.base.worker_options`; None: every
            core but one).

    Returns:
        :class:`SeededSamples` of ``(x, y)`` float32 batches ``(batch, rows, cols, depth, 1)``.
    """
    if cubes.ndim != 4 or len(cubes) == 0:
        raise ValueError(f"cubes must be a non-empty array (n, rows, cols, depth), got shape {cubes.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps = max(1, len(cubes) // batch_size) if steps is None else steps

    def make_sample(rng: np.random.Generator, item: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = make_pair(cubes[item], rng, rates)
        return x[..., None], y[..., None]

    options = worker_options(workers)
    return SeededSamples(make_sample, len(cubes), batch_size, steps, seed, order="permutation", **options)


def fixed_pairs(cubes: np.ndarray, seed: int = 0, rates: TransformRates = TransformRates()):
    """Deterministic (transformed, original) arrays for validation, each (n, rows, cols, depth, 1)."""
    return make_pair_batch(cubes, np.random.default_rng(seed), rates)


def pretraining_cubes(
    data: str | None,
    train_folds: Sequence[int],
    valid_folds: Sequence[int],
    cube_shape: tuple[int, int, int],
    synthetic: int = 48,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(train cubes, validation cubes, source)`` for restoration pretraining, cubes (n, rows, cols, depth).

    With ``data``, the reference's cube files of those folds (:func:`keras_zoo.datasets.volumes.read_cube_folds`);
    without, ``synthetic`` seeded CT cubes, a quarter held out.

    Raises:
        DataError: no cube files of a fold, or cubes of another shape than ``cube_shape``.
    """
    from keras_zoo.datasets import volumes
    from keras_zoo.datasets.base import split_indices
    from keras_zoo.errors import data_error

    if data:
        train = volumes.read_cube_folds(data, train_folds)
        val = volumes.read_cube_folds(data, valid_folds)
        if train.shape[1:] != tuple(cube_shape):
            raise data_error(data, f"cubes are {train.shape[1:]}, --input-size is {tuple(cube_shape)}")
        return train, val, f"cube files at {data} (folds {list(train_folds)} / {list(valid_folds)})"
    cubes = volumes.synthetic_cubes(synthetic, seed=seed, cube_shape=tuple(cube_shape))
    train_idx, val_idx = split_indices(len(cubes), 0.25, seed)
    return cubes[train_idx], cubes[val_idx], "synthetic CT cubes"

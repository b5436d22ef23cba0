"""Models Genesis self-supervised transforms: each one's invariants, the pair generator, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from keras_zoo.datasets import genesis as G

SHAPE = (64, 64, 32)


@pytest.fixture
def cube() -> np.ndarray:
    return np.random.default_rng(0).random(SHAPE).astype(np.float32)


def test_reference_probabilities_are_the_defaults():
    assert G.TransformRates() == G.TransformRates(flip=0.4, local=0.5, nonlinear=0.9, paint=0.9, outpaint=0.8)
    with pytest.raises(ValueError, match="paint"):
        G.TransformRates(paint=1.5)


def test_flips_touch_rows_and_cols_of_both_but_never_depth(cube):
    allowed = [cube, cube[::-1], cube[:, ::-1], cube[::-1, ::-1]]
    seen = set()
    for seed in range(40):
        x, y = G.flip_pair(cube, cube + 1, np.random.default_rng(seed), rate=0.9)
        match = [i for i, a in enumerate(allowed) if np.array_equal(x, a)]
        assert len(match) == 1 and np.array_equal(y, x + 1)
        seen.add(match[0])
    assert seen == {0, 1, 2, 3}


def test_local_shuffling_of_one_block_permutes_inside_a_small_box(cube):
    out = G.local_pixel_shuffling(cube, np.random.default_rng(1), num_blocks=1)
    np.testing.assert_array_equal(np.sort(out.ravel()), np.sort(cube.ravel()))
    changed = np.argwhere(out != cube)
    if len(changed):
        extent = changed.max(0) - changed.min(0) + 1
        assert np.all(extent <= np.array(SHAPE) // 10)


def test_local_shuffling_keeps_shape_and_only_moves_existing_values(cube):
    out = G.local_pixel_shuffling(cube, np.random.default_rng(2))
    assert out.shape == cube.shape and out.dtype == cube.dtype
    assert np.isin(out, cube).all()
    assert 0.3 < np.mean(out != cube) < 1.0  # 10,000 blocks of mean ~3.5x3.5x2 voxels cover most of the cube


def shuffle_block_by_block(cube: np.ndarray, rng: np.random.Generator, num_blocks: int) -> np.ndarray:
    """The shuffling spelled out one block at a time, drawing from ``rng`` as the library does: the sizes,
    the corners, then one row of random sort keys per block, the blocks grouped by size in increasing
    (rows, cols, depth) order and in draw order within a size."""
    shape = np.array(cube.shape)
    sizes = rng.integers(1, np.maximum(shape // 10, 1) + 1, size=(num_blocks, 3))
    corners = (rng.random((num_blocks, 3)) * (shape - sizes + 1)).astype(np.int64)
    out = cube.copy()
    for size in sorted({tuple(s) for s in sizes.tolist()}):
        blocks = [i for i in range(num_blocks) if tuple(sizes[i]) == size]
        keys = rng.random((len(blocks), int(np.prod(size))))
        for block, block_keys in zip(blocks, keys):
            window = tuple(slice(c, c + n) for c, n in zip(corners[block], size))
            out[window] = cube[window].ravel()[np.argsort(block_keys)].reshape(size)
    return out


def test_local_shuffling_of_no_blocks_returns_a_copy(cube):
    out = G.local_pixel_shuffling(cube, np.random.default_rng(0), num_blocks=0)
    np.testing.assert_array_equal(out, cube)
    assert out is not cube


@pytest.mark.parametrize("shape", [(40, 30, 20), (64, 64, 32)])
def test_local_shuffling_equals_the_block_by_block_loop(shape):
    cube = np.random.default_rng(5).random(shape).astype(np.float32)
    expected = shuffle_block_by_block(cube, np.random.default_rng(6), num_blocks=300)
    np.testing.assert_array_equal(
        G.local_pixel_shuffling(cube, np.random.default_rng(6), num_blocks=300), expected
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_nonlinear_mapping_equals_interpolating_the_curve(seed):
    cube = np.random.default_rng(seed).random(SHAPE).astype(np.float32)
    cube[:8] = np.round(cube[:8] * 4) / 4  # repeated values, 0 and 1
    xs, ys = G.bezier_curve(np.random.default_rng(seed + 10))
    out = G.nonlinear_transform(cube, np.random.default_rng(seed + 10))
    assert out.dtype == np.float32 and out.shape == SHAPE
    np.testing.assert_array_equal(out, np.interp(cube, xs, ys).astype(np.float32))


@pytest.mark.parametrize("inverted", [False, True])
def test_nonlinear_mapping_is_monotone_within_unit_range(inverted):
    ramp = np.linspace(0, 1, 64 * 64 * 32, dtype=np.float32).reshape(SHAPE)
    out = G.nonlinear_transform(ramp, np.random.default_rng(3), inverted=inverted).ravel()
    steps = np.diff(out)
    assert np.all(steps <= 1e-7) if inverted else np.all(steps >= -1e-7)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose([out[0], out[-1]], [1, 0] if inverted else [0, 1], atol=1e-6)


def test_bezier_inversion_has_probability_one_half():
    rng = np.random.default_rng(4)
    inverted = [G.bezier_curve(rng, num_points=11)[1][0] > 0.5 for _ in range(400)]
    assert 0.4 < np.mean(inverted) < 0.6


def test_in_painting_changes_only_its_boxes(cube):
    rng = np.random.default_rng(5)
    boxes = G.sample_inpaint_boxes(SHAPE, rng)
    out = G.in_painting(cube, rng, boxes)
    inside = np.zeros(SHAPE, bool)
    for box in boxes:
        inside[box] = True
        for s, dim in zip(box, SHAPE):
            assert s.start >= 3 and s.stop <= dim - 3 and dim // 6 <= s.stop - s.start <= dim // 3
    np.testing.assert_array_equal(out[~inside], cube[~inside])
    assert np.mean(out[inside] != cube[inside]) > 0.99 and 0 <= out.min() and out.max() < 1


def test_out_painting_keeps_only_its_windows(cube):
    rng = np.random.default_rng(6)
    windows = G.sample_outpaint_windows(SHAPE, rng)
    out = G.out_painting(cube, rng, windows)
    kept = np.zeros(SHAPE, bool)
    for window in windows:
        kept[window] = True
        for s, dim in zip(window, SHAPE):
            assert s.start >= 3 and s.stop <= dim - 3
            assert dim - 4 * dim // 7 <= s.stop - s.start <= dim - 3 * dim // 7
    assert 1 <= len(windows) <= 5
    np.testing.assert_array_equal(out[kept], cube[kept])
    assert np.mean(out[~kept] != cube[~kept]) > 0.99 and 0 <= out.min() and out.max() < 1


def test_box_counts_follow_the_continuation_rule():
    rng = np.random.default_rng(7)
    inpaint = [len(G.sample_inpaint_boxes(SHAPE, rng)) for _ in range(300)]
    outpaint = [len(G.sample_outpaint_windows(SHAPE, rng)) for _ in range(300)]
    assert max(inpaint) == 5 and min(inpaint) >= 0 and max(outpaint) == 5 and min(outpaint) >= 1
    assert 4.0 < np.mean(inpaint) < 5.0  # E = sum_k 0.95^k, k = 1..5 = 4.52


def test_pairs_keep_shape_range_and_target(cube):
    rng = np.random.default_rng(8)
    for _ in range(5):
        x, y = G.make_pair(cube, rng)
        assert x.shape == y.shape == SHAPE and x.dtype == np.float32
        assert 0 <= x.min() and x.max() <= 1
        assert any(np.array_equal(y, a) for a in (cube, cube[::-1], cube[:, ::-1], cube[::-1, ::-1]))
    x, y = G.make_pair(cube, rng, G.TransformRates(0, 0, 0, 0, 0))
    np.testing.assert_array_equal(x, cube)
    np.testing.assert_array_equal(y, cube)


def test_small_cubes_work():
    small = np.random.default_rng(9).random((16, 16, 8)).astype(np.float32)
    for seed in range(10):
        x, _ = G.make_pair(small, np.random.default_rng(seed), G.TransformRates(1, 1, 1, 1, 0.5))
        assert x.shape == small.shape and 0 <= x.min() and x.max() <= 1


def test_pair_stream_is_seeded_and_batched():
    cubes = np.random.default_rng(10).random((5, 16, 16, 8)).astype(np.float32)
    first = G.genesis_pairs(cubes, batch_size=3, steps=2, seed=1)
    again = G.genesis_pairs(cubes, batch_size=3, steps=2, seed=1)
    x, y = first[1]
    assert len(first) == 2 and x.shape == y.shape == (3, 16, 16, 8, 1)
    np.testing.assert_array_equal(x, again[1][0])
    assert not np.array_equal(x, G.genesis_pairs(cubes, batch_size=3, steps=2, seed=2)[1][0])
    with pytest.raises(ValueError, match="cubes"):
        G.genesis_pairs(cubes[0], batch_size=2)


def test_pretraining_cubes_from_files_or_synthetic(tmp_path):
    from keras_zoo.errors import DataError

    train, val, source = G.pretraining_cubes(None, [0], [1], (16, 16, 8), synthetic=8, seed=0)
    assert train.shape == (6, 16, 16, 8) and val.shape == (2, 16, 16, 8) and "synthetic" in source
    rng = np.random.default_rng(0)
    for fold in (0, 5):
        np.save(tmp_path / f"bat_4_s_16x16x8_{fold}.npy", rng.uniform(0, 1, (4, 16, 16, 8)).astype("float32"))
    train, val, source = G.pretraining_cubes(str(tmp_path), [0], [5], (16, 16, 8))
    assert len(train) == len(val) == 4 and "folds [0] / [5]" in source
    with pytest.raises(DataError, match="--input-size"):
        G.pretraining_cubes(str(tmp_path), [0], [5], (16, 16, 4))


def test_split_target_and_batches():
    from keras_zoo.datasets.genesis_targets import split_target, synthetic_target, target_batches
    from keras_zoo.errors import DataError

    x, y = synthetic_target("segment", 8, (16, 16, 8), seed=0)
    (x_train, y_train), (x_val, y_val) = split_target(x, y, "segment", seed=0)
    assert x_train.shape == (6, 16, 16, 8, 1) and y_val.shape == (2, 16, 16, 8, 1)
    batch_x, batch_y = target_batches(x_train, y_train, 3, 2, seed=0, workers=0)[0]
    assert batch_x.shape == (3, 16, 16, 8, 1) and batch_y.shape == (3, 16, 16, 8, 1)
    with pytest.raises(DataError, match="at least 2 samples"):
        split_target(x[:1], y[:1], "segment")

"""Input workers: the default count, the PyDataset options per backend, and per-sample seeding."""

import numpy as np
import pytest

from keras_zoo.datasets import base
from keras_zoo.errors import ConfigError


def test_default_workers_leave_one_core_to_the_training_loop(monkeypatch):
    assert base.default_workers() == base.usable_cores() - 1 >= 0
    monkeypatch.setattr(base, "usable_cores", lambda: 16)
    assert base.default_workers() == 15 and base.resolve_workers(None) == 15 and base.resolve_workers(0) == 0
    monkeypatch.setattr(base, "usable_cores", lambda: 1)
    assert base.default_workers() == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_worker_counts_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError, match=r"^--workers must be an integer >= 0, got ") as info:
        base.worker_options(bad)
    assert "\n" not in str(info.value)


def test_processes_only_where_the_backend_can_be_forked(monkeypatch):
    import keras

    monkeypatch.setattr(keras.config, "backend", lambda: "tensorflow")
    assert base.worker_options(3, processes=True) == {
        "workers": 3,
        "use_multiprocessing": True,
        "max_queue_size": 6,
    }
    assert base.worker_options(3, processes=False)["use_multiprocessing"] is False
    assert base.worker_options(0, processes=True) == {
        "workers": 0,
        "use_multiprocessing": False,
        "max_queue_size": 2,
    }
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    assert base.worker_options(3, processes=True)["use_multiprocessing"] is False


def test_a_sample_depends_on_its_index_not_on_the_batch_size():
    def make_sample(rng, item):
        return np.full(2, item, dtype=np.int64), rng.integers(1 << 30, size=3)

    by_four = base.SeededSamples(make_sample, 10, batch_size=4, steps=2, seed=3)
    by_two = base.SeededSamples(make_sample, 10, batch_size=2, steps=4, seed=3)
    for index in range(2):
        pairs = [by_two[2 * index], by_two[2 * index + 1]]
        for whole, halves in zip(by_four[index], zip(*pairs)):
            np.testing.assert_array_equal(whole, np.concatenate(halves))
    assert not np.array_equal(by_four[0][1], base.SeededSamples(make_sample, 10, 4, 2, seed=4)[0][1])


def test_permutation_order_visits_every_item_once_per_pass_and_changes_per_epoch():
    samples = base.SeededSamples(
        lambda rng, item: np.int64(item), 6, batch_size=3, steps=2, order="permutation"
    )
    first = np.concatenate([samples[0], samples[1]])
    assert sorted(first.tolist()) == list(range(6))
    samples.on_epoch_end()
    second = np.concatenate([samples[0], samples[1]])
    assert sorted(second.tolist()) == list(range(6)) and not np.array_equal(first, second)
    with pytest.raises(ValueError, match="order"):
        base.SeededSamples(lambda rng, item: item, 6, 3, 2, order="sorted")

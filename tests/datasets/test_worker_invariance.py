"""Training batches do not depend on the number of input workers: every reader, read as ``model.fit`` reads
it (Keras's enqueuer for PyDatasets, tf.data for the tfrecord readers), with 0 and 2 workers."""

import numpy as np
import pytest
from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
from PIL import Image

from keras_zoo.cli.train import parse_args
from keras_zoo.datasets import genesis, imagenet, isbi, mri
from keras_zoo.datasets.augment import AugmentConfig


def keras_epochs(dataset, epochs: int = 2) -> list[list]:
    """Every batch of ``epochs`` epochs, read as ``model.fit`` reads them (Keras's PyDataset adapter)."""
    adapter = PyDatasetAdapter(dataset, shuffle=False)
    seen = []
    for _ in range(epochs):
        adapter.on_epoch_begin()
        seen.append(list(adapter.get_numpy_iterator()))
        adapter.on_epoch_end()
    return seen


def assert_same_batches(first, second) -> None:
    """Bitwise equality of two nested lists / tuples / dicts of arrays."""
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        for key in first:
            assert_same_batches(first[key], second[key])
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second)
        for a, b in zip(first, second):
            assert_same_batches(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_isbi_batches_do_not_depend_on_the_workers(shared_data):
    """The train CLI's ISBI reader on the real slices: main thread vs 2 worker threads."""
    common = ["--model", "unet", "--data", str(shared_data / "isbi2012"), "--input-size", "64", "64"]
    common += ["--augment", "strong", "--steps-per-epoch", "5", "--batch-size", "3"]
    runs = {}
    for workers in (0, 2):
        args, task = parse_args([*common, "--workers", str(workers)])
        train = task.load_data(args).train
        assert train.workers == workers
        runs[workers] = keras_epochs(train)
    assert_same_batches(runs[0], runs[2])
    assert not np.array_equal(runs[0][0][0][0], runs[0][1][0][0])  # a new epoch, new patches


@pytest.mark.parametrize("processes", [False, True])
def test_isbi_reader_in_threads_and_forked_processes(processes):
    """Forked workers (worker_options(processes=True)) see each new epoch too: Keras forks them per epoch."""
    slices = isbi.synthetic_membranes(3, (48, 48), seed=0)
    streams = []
    for workers in (0, 2):
        stream = isbi.training_batches(slices, 2, (32, 32), 4, "crop", AugmentConfig.membranes(), 1, workers)
        stream.use_multiprocessing = processes and workers > 0
        streams.append(keras_epochs(stream))
    assert_same_batches(streams[0], streams[1])


def test_genesis_cascadenet_and_imagenet_folder_batches_do_not_depend_on_the_workers(tmp_path):
    cubes = np.random.default_rng(0).random((5, 16, 16, 8)).astype(np.float32)
    images = np.random.default_rng(1).random((4, 32, 32)).astype(np.complex64)
    folder = tmp_path / "images"
    paths, labels = [], []
    for i, wnid in enumerate(("n01440764", "n01443537")):
        (folder / wnid).mkdir(parents=True)
        for j in range(3):
            path = folder / wnid / f"{j}.JPEG"
            pixels = np.random.default_rng(10 * i + j).integers(0, 256, (40, 52, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
            paths.append(str(path))
            labels.append(i + 1)
    readers = {
        "genesis": lambda w: genesis.genesis_pairs(cubes, batch_size=2, steps=3, seed=2, workers=w),
        "cascadenet": lambda w: mri.undersampled_examples(images, 3, 3, seed=2, centre_lines=4, workers=w),
        "imagenet": lambda w: imagenet.ImageFolderBatches(paths, labels, 4, 24, seed=2, steps=3, workers=w),
    }
    for name, make in readers.items():
        main_thread, workers = keras_epochs(make(0)), keras_epochs(make(2))
        assert len(main_thread) == 2 and len(main_thread[0]) == 3, name
        assert_same_batches(main_thread, workers)


def test_tfrecord_streams_do_not_depend_on_the_workers(shared_data, tmp_path):
    """Both tfrecord readers (tf.data) on the real samples: 0 vs 2 decoding threads."""
    pytest.importorskip("tensorflow")
    from keras_zoo.cli.prepare import main as prepare_main

    voc, images = tmp_path / "voc", tmp_path / "imagenet"
    assert (
        prepare_main(["voc", str(shared_data / "voc2012_samples"), "--splits", "val", "--output", str(voc)])
        == 0
    )
    assert (
        prepare_main(["imagenet", str(shared_data / "imagenet_samples" / "images"), "--output", str(images)])
        == 0
    )
    configs = {
        "deeplabv3plus": ["--data", str(voc), "--train-split", "val"],
        "amoebanet": ["--data", str(images), "--input-size", "32"],
    }
    for model, argv in configs.items():
        runs = []
        for workers in (0, 2):
            argv_w = ["--model", model, *argv, "--batch-size", "4", "--steps-per-epoch", "3"]
            args, task = parse_args([*argv_w, "--workers", str(workers)])
            data = task.load_data(args)
            assert "tf.data" in data.description
            runs.append([[np.asarray(part) for part in batch] for batch in data.train])
        assert len(runs[0]) == 3, model
        assert_same_batches(runs[0], runs[1])


@pytest.mark.backend_agnostic
def test_fit_trains_the_same_batches_with_any_number_of_workers():
    """Through ``model.fit`` as train.py calls it: on JAX and torch ``fit`` took a batch from the workers to
    build the compiled metrics and dropped it, so with 2 worker threads each epoch trained the last batches of
    its own data epoch and the first of the next. Each batch here is one value, ``100 * epoch + index``,
    and the loss of a batch (weights frozen at 1, targets 0, absolute error) is that value."""
    import keras

    from keras_zoo.datasets.base import SeededBatches, build_compiled_state, worker_options

    def trained_batches(workers: int) -> list[list[int]]:
        def make_batch(rng, index):
            return np.full((1, 1), 100.0 * dataset.epoch + index, "float32"), np.zeros((1, 1), "float32")

        dataset = SeededBatches(make_batch, 4, **worker_options(workers))
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
        model.compile(keras.optimizers.SGD(0.0), "mae", metrics=["mse"])
        seen: list[list[int]] = []

        class Record(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                seen.append([])
                self.total = 0.0

            def on_train_batch_end(self, batch, logs=None):
                total = logs["loss"] * (batch + 1)  # the logged loss is the epoch's running mean
                seen[-1].append(round(total - self.total))
                self.total = total

        build_compiled_state(model, dataset)
        model.fit(dataset, epochs=3, shuffle=False, verbose=0, callbacks=[Record()])
        return seen

    main_thread = trained_batches(0)
    assert trained_batches(2) == main_thread
    assert [sorted(batches) for batches in main_thread] == [
        [100 * data_epoch + i for i in range(4)]
        for data_epoch in (1, 2, 3)  # Keras ends an epoch first
    ]

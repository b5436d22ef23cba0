"""Input-pipeline throughput: each network's training reader against the model's training samples/s.

Every reader is built exactly as ``train.py`` builds it (``keras_zoo.cli.train.parse_args`` then the
task's ``load_data``), at the reference batch and input shape, with ``--workers N`` when given; its
training stream is then read as ``model.fit`` reads it: a ``PyDataset`` through Keras's adapter (its
enqueuer runs the workers, threads or forked processes, and queues batches ahead), a ``tf.data.Dataset``
through its iterator (``N`` threads, prefetch). The first ``--warmup`` batches are untimed (worker start,
tf.data tracing), and the stream holds a few batches more than are read, so that the workers are still busy
when the timing stops. One JSON line per reader and worker count records the wall-clock samples/s, the CPU
time of the process and its worker processes over the timed batches (``samples_per_cpu_s``: the rate of
one fully used core, the figure to scale by cores), how the worker threads spent that time (on a CPU,
waiting for one, or blocked, e.g. on the GIL; Linux only), and compares samples/s with the fastest CPU
training run of the same model and preset in ``--model-results`` (``ratio`` = reader / model; issue 7 asks
for >= 2). Data comes from ``--data-root`` (``shared/data``) where present, otherwise from the recipe's
synthetic generator; tfrecord readers first write their shards with ``keras-zoo prepare`` into a temporary
folder (timed as ``prepare_s``). Examples::

    python benchmarks/readers.py                                   # all readers, 5 timed batches each
    python benchmarks/readers.py --models unet genesis --batches 10 --out readers.jsonl
    python benchmarks/readers.py --workers 0 1 2 --batches 20      # each reader with 0, 1 and 2 workers
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from keras_zoo.cli.tasks import task_names  # keras-free

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(REPO), "shared", "data")
DEFAULT_MODEL_RESULTS = os.path.join(REPO, "benchmarks", "results", "2026-11-23-cpu.jsonl")
MODELS = tuple(task_names())
DYNAMIC_FRAMES, DYNAMIC_SIZE = 30, (256, 32)  # the "dynamic" benchmark preset: (30, 256, 32, 2)


@dataclasses.dataclass(frozen=True)
class Reader:
    """One training input pipeline, described by the train CLI arguments that build it.

    Attributes:
        name: reader name in the output.
        model: ``--model`` of the train CLI.
        preset: registry preset of the model benchmark it is compared with.
        argv: train CLI arguments without ``--model`` and ``--steps-per-epoch``.
        source: the data path, or ``"synthetic"``.
        prepare: called with a scratch folder before the reader is built (writes tfrecords, ...); returns
            extra CLI arguments (e.g. ``["--data", folder]``).
    """

    name: str
    model: str
    preset: str = "default"
    argv: tuple[str, ...] = ()
    source: str = "synthetic"
    prepare: Callable[[str], list[str]] | None = None


def _prepare_cli(args: list[str], output: str) -> None:
    from keras_zoo.cli.prepare import main as prepare_main

    with contextlib.redirect_stdout(io.StringIO()):  # prepare prints the shard names
        status = prepare_main([*args, "--output", output])
    if status:
        raise RuntimeError(f"keras-zoo prepare {' '.join(args)} failed with status {status}")


def _tfrecords(kind: str, source: str, *extra: str) -> Callable[[str], list[str]]:
    def prepare(scratch: str) -> list[str]:
        output = os.path.join(scratch, f"{kind}_tfrecords")
        _prepare_cli([kind, source, *extra], output)
        return ["--data", output]

    return prepare


def _dynamic_phantoms(scratch: str) -> list[str]:
    """Moving phantoms (4 sequences, 30 frames, 256x256) in a .npy, cropped by the CLI to 256x32."""
    import numpy as np

    from keras_zoo.datasets.phantoms import phantom_images

    path = os.path.join(scratch, "dynamic_phantoms.npy")
    np.save(path, phantom_images(4, DYNAMIC_SIZE[0], seed=0, dynamic=True, frames=DYNAMIC_FRAMES))
    return ["--data", path]


def default_readers(data_root: str = DEFAULT_DATA_ROOT) -> list[Reader]:
    """The training readers of the five networks at their reference batch and shape.

    Real data under ``data_root`` is used where present; otherwise the recipe's synthetic generator.
    """

    def real(relative: str) -> str | None:
        path = os.path.join(data_root, relative)
        return path if os.path.exists(path) else None

    readers = []
    isbi = real("isbi2012")
    readers.append(
        Reader(
            "unet-isbi" if isbi else "unet-synthetic",
            "unet",
            argv=("--data", isbi) if isbi else (),
            source=isbi or "synthetic",
        )
    )
    readers.append(Reader("genesis-synthetic-cubes", "genesis"))
    prostate = real("mr_prostatex/ProstateX-0000_t2_tse_tra_4.nii.gz")
    size = ("--input-size", "256", "256")
    if prostate:
        readers.append(
            Reader("cascadenet-2d-nifti", "cascadenet", argv=("--data", prostate, *size), source=prostate)
        )
    else:
        readers.append(Reader("cascadenet-2d-phantoms", "cascadenet", argv=size))
    dynamic = ("--dynamic", "--input-size", *map(str, DYNAMIC_SIZE))
    readers.append(
        Reader(
            "cascadenet-dynamic-npy",
            "cascadenet",
            "dynamic",
            dynamic,
            "synthetic (moving phantoms .npy)",
            _dynamic_phantoms,
        )
    )
    voc = real("voc2012_samples")
    splits = ("--train-split", "val", "--val-split", "val")  # the samples hold only the val list
    if voc:
        readers.append(
            Reader("deeplab-voc-folder", "deeplabv3plus", argv=("--data", voc, *splits), source=voc)
        )
        readers.append(
            Reader(
                "deeplab-voc-tfrecord",
                "deeplabv3plus",
                argv=splits,
                source=voc,
                prepare=_tfrecords("voc", voc, "--splits", "val"),
            )
        )
    else:
        readers.append(Reader("deeplab-synthetic", "deeplabv3plus"))
    imagenet = real("imagenet_samples/images")
    if imagenet:
        readers.append(
            Reader("amoebanet-imagenet-folder", "amoebanet", argv=("--data", imagenet), source=imagenet)
        )
        readers.append(
            Reader(
                "amoebanet-imagenet-tfrecord",
                "amoebanet",
                source=imagenet,
                prepare=_tfrecords("imagenet", imagenet),
            )
        )
    else:
        readers.append(Reader("amoebanet-synthetic", "amoebanet"))
    return readers


def model_rates(path: str) -> dict[tuple[str, str], dict]:
    """The fastest training record per (model, preset) in a ``keras-zoo benchmark`` JSON-lines file."""
    best: dict[tuple[str, str], dict] = {}
    if not os.path.exists(path):
        return best
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("mode", "train") != "train" or "samples_per_sec" not in record:
                continue
            key = (record["model"], record.get("preset", "default"))
            if key not in best or record["samples_per_sec"] > best[key]["samples_per_sec"]:
                best[key] = record
    return best


def _children_stats() -> dict[int, list[str]]:
    """``/proc/<pid>/stat`` fields after the command name, for each live child process (Linux; else {})."""
    if not os.path.isdir("/proc"):
        return {}
    children, me = {}, os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == me:
            children[int(entry)] = fields
    return children


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its children, live or ended.

    Live children (Keras's worker processes) are read from ``/proc`` on Linux; elsewhere only children that
    have ended and been waited for are counted.
    """
    times = os.times()
    total = time.process_time() + times.children_user + times.children_system  # all threads, in ns steps
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for fields in _children_stats().values():
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def thread_schedstats() -> dict[str, tuple[float, float]]:
    """Seconds on a CPU and waiting for one (run queue) of every thread of this process and its children.

    Read from ``/proc/<pid>/task/<tid>/schedstat`` (Linux); empty where that does not exist. Keys are
    ``"<pid>/<tid>"``.
    """
    stats = {}
    for pid in (os.getpid(), *_children_stats()):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                    on_cpu, waiting = f.read().split()[:2]
            except (OSError, ValueError):
                continue
            stats[f"{pid}/{tid}"] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return stats


def worker_times(before: dict, after: dict, wall: float, main_thread: str) -> dict:
    """How the threads that made batches spent the timed ``wall`` seconds (from :func:`thread_schedstats`).

    A worker is any thread other than ``main_thread`` (the reading loop) that ran for at least 2 % of the
    time. Its wall time splits into on-CPU, run-queue wait (no free core: other load on the machine) and the
    rest, blocked: waiting for the GIL, a lock, a full queue or a file.

    Returns:
        ``{"worker_threads", "worker_cpu_s", "worker_runqueue_s", "worker_blocked_s"}``; None values where
        the OS gives no per-thread figures or no worker thread ran.
    """
    busy = []
    for key, (on_cpu, waiting) in after.items():
        start = before.get(key, (0.0, 0.0))
        if key != main_thread and on_cpu - start[0] >= 0.02 * wall:
            busy.append((on_cpu - start[0], waiting - start[1]))
    if not busy:
        return {
            "worker_threads": 0,
            "worker_cpu_s": None,
            "worker_runqueue_s": None,
            "worker_blocked_s": None,
        }
    cpu, runqueue = sum(b[0] for b in busy), sum(b[1] for b in busy)
    return {
        "worker_threads": len(busy),
        "worker_cpu_s": round(cpu, 4),
        "worker_runqueue_s": round(runqueue, 4),
        "worker_blocked_s": round(max(0.0, len(busy) * wall - cpu - runqueue), 4),
    }


@contextlib.contextmanager
def reading(stream) -> Iterator[Callable[[], object]]:
    """``next_batch()`` over one epoch of ``stream``, read as ``model.fit`` reads it.

    A ``keras.utils.PyDataset`` goes through Keras's adapter, whose enqueuer runs the dataset's workers
    (started here, stopped on exit); a ``tf.data.Dataset`` through its own iterator.
    """
    import keras

    if not isinstance(stream, keras.utils.PyDataset):
        yield iter(stream).__next__
        return
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(stream, shuffle=False)
    adapter.on_epoch_begin()
    try:
        yield iter(adapter.get_numpy_iterator()).__next__
    finally:
        adapter.on_epoch_end()


def parallelism(stream, workers: int | None) -> tuple[int, str]:
    """(workers used, how): ``"processes"``, ``"threads"``, ``"main thread"`` or ``"tf.data threads"``."""
    import keras

    from keras_zoo.datasets.base import resolve_workers

    if not isinstance(stream, keras.utils.PyDataset):
        return resolve_workers(workers), "tf.data threads"
    if stream.use_multiprocessing and stream.workers:
        return stream.workers, "processes"
    return stream.workers, "threads" if stream.workers > 1 else "main thread"


def _sample_shapes(x) -> list[list[int]]:
    inputs = x if isinstance(x, (list, tuple)) else [x]
    return [[int(d) for d in tuple(a.shape)[1:]] for a in inputs]


def _batch_size(x) -> int:
    first = x[0] if isinstance(x, (list, tuple)) else x
    return int(first.shape[0])


def measure(
    reader: Reader, batches: int = 5, warmup: int = 1, models: dict | None = None, workers: int | None = None
) -> dict:
    """Builds ``reader`` through the train CLI's parser and task, and times its training batches.

    Args:
        reader: the pipeline.
        batches: timed batches (after ``warmup`` untimed ones).
        warmup: untimed batches (worker start, tf.data graph tracing, file caches).
        models: :func:`model_rates` output; adds the model's samples/s and the ratio when it has the model.
        workers: ``--workers`` of the train CLI (None: its default, every core but one).

    Returns:
        The JSON record: reader, model, source, description, workers (as asked, None for the default),
        workers_used, parallelism, cores (usable by this process), batch, shape, batches, warmup, seconds
        (total timed), seconds_per_batch, samples_per_sec, cpu_s (CPU time of the process and its worker
        processes while timed), samples_per_cpu_s, worker_threads / worker_cpu_s / worker_runqueue_s /
        worker_blocked_s (:func:`worker_times`), setup_s, prepare_s, model_samples_per_sec, model_config,
        ratio.
    """
    from keras_zoo.cli.train import parse_args
    from keras_zoo.datasets.base import resolve_workers, usable_cores

    if batches < 1 or warmup < 0:
        raise ValueError(f"need batches >= 1 and warmup >= 0, got {batches} and {warmup}")
    # batches left unread keep the workers busy until the timing stops (two queued per worker)
    spare = 2 * resolve_workers(workers) + 1
    with tempfile.TemporaryDirectory(prefix="readers_") as scratch:
        start = time.perf_counter()
        extra = reader.prepare(scratch) if reader.prepare else []
        prepare_s = time.perf_counter() - start
        steps = warmup + batches + spare
        argv = ["--model", reader.model, *reader.argv, *extra, "--steps-per-epoch", str(steps)]
        if workers is not None:
            argv += ["--workers", str(workers)]
        args, task = parse_args(argv)
        start = time.perf_counter()
        data = task.load_data(args)
        setup_s = time.perf_counter() - start
        stream = data.train
        used, how = parallelism(stream, args.workers)
        with reading(stream) as next_batch:
            for _ in range(warmup):
                next_batch()
            threads_start, cpu_start, start = thread_schedstats(), cpu_seconds(), time.perf_counter()
            for _ in range(batches):
                x, _ = next_batch()
            total, cpu, threads_end = (
                time.perf_counter() - start,
                cpu_seconds() - cpu_start,
                thread_schedstats(),
            )
    main_thread = f"{os.getpid()}/{threading.get_native_id()}"
    size = _batch_size(x)
    record = {
        "reader": reader.name,
        "model": reader.model,
        "preset": reader.preset,
        "source": reader.source,
        "description": data.description,
        "workers": workers,
        "workers_used": used,
        "parallelism": how,
        "cores": usable_cores(),
        "batch": size,
        "shape": _sample_shapes(x),
        "batches": batches,
        "warmup": warmup,
        "seconds": round(total, 6),
        "seconds_per_batch": round(total / batches, 6),
        "samples_per_sec": round(size * batches / total, 3),
        "cpu_s": round(cpu, 6),
        "samples_per_cpu_s": round(size * batches / cpu, 3) if cpu > 0 else None,
        **worker_times(threads_start, threads_end, total, main_thread),
        "setup_s": round(setup_s, 2),
        "prepare_s": round(prepare_s, 4),
        "model_samples_per_sec": None,
        "model_config": None,
        "ratio": None,
    }
    model = (models or {}).get((reader.model, reader.preset))
    if model is not None:
        record["model_samples_per_sec"] = model["samples_per_sec"]
        settings = (model.get("backend"), model.get("precision"), model.get("jit"), model.get("batch"))
        record["model_config"] = "{} {} jit={} batch {}".format(*settings)
        record["ratio"] = round(size * batches / total / model["samples_per_sec"], 1)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", type=int, default=5, help="timed batches per reader")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches per reader")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="shared/data (absent: synthetic)")
    parser.add_argument("--model-results", default=DEFAULT_MODEL_RESULTS, help="keras-zoo benchmark lines")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        metavar="N",
        help="train CLI --workers for each run, e.g. 0 1 2 (default: the CLI's, every core but one)",
    )
    parser.add_argument("--readers", nargs="+", metavar="NAME", help="only these readers (default: all)")
    parser.add_argument("--out", help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.workers and min(args.workers) < 0:
        parser.error(f"--workers must be >= 0, got {min(args.workers)}")
    models = model_rates(args.model_results)
    for reader in default_readers(args.data_root):
        if reader.model not in args.models or (args.readers and reader.name not in args.readers):
            continue
        for workers in args.workers or [None]:
            line = json.dumps(measure(reader, args.batches, args.warmup, models, workers))
            print(line, flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/readers.py: training readers timed through the train CLI, compared with the model's speed."""

import importlib.util
import json
import os
import pathlib
import sys
import threading

import numpy as np
import pytest
from PIL import Image

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "readers.py"
spec = importlib.util.spec_from_file_location("readers", SCRIPT)
readers = importlib.util.module_from_spec(spec)
sys.modules["readers"] = readers  # dataclasses look their module up
spec.loader.exec_module(readers)

FIELDS = {
    "reader", "model", "preset", "source", "description", "workers", "workers_used", "parallelism", "cores",
    "batch", "shape", "batches", "warmup", "seconds", "seconds_per_batch", "samples_per_sec", "cpu_s",
    "samples_per_cpu_s", "worker_threads", "worker_cpu_s", "worker_runqueue_s", "worker_blocked_s", "setup_s",
    "prepare_s", "model_samples_per_sec", "model_config", "ratio",
}  # fmt: skip
TINY_UNET = ("--input-size", "32", "32", "--batch-size", "3")


def _model_results(tmp_path, model: str, rates: list[float]) -> dict:
    path = tmp_path / "models.jsonl"
    lines = [json.dumps({"model": model, "preset": "default", "mode": "train", "samples_per_sec": r,
                         "backend": "tensorflow", "precision": "fp32", "jit": "False", "batch": 2})
             for r in rates]  # fmt: skip
    lines += [
        json.dumps({"model": model, "preset": "default", "mode": "infer", "samples_per_sec": 1e6}),
        json.dumps({"model": model, "precision": "bf16", "error": "OOM"}),
        "INFO not a record",
    ]
    path.write_text("\n".join(lines) + "\n")
    return readers.model_rates(str(path))


def _check_record(record: dict, batch: int, shape: list, batches: int) -> None:
    assert set(record) == FIELDS
    assert record["batch"] == batch and record["shape"] == shape and record["batches"] == batches
    assert record["samples_per_sec"] > 0 and record["seconds"] > 0
    # both are rounded to microseconds, which is more than 0.1 % of a sub-millisecond batch
    assert record["seconds_per_batch"] == pytest.approx(record["seconds"] / batches, rel=1e-3, abs=1e-6)
    assert record["samples_per_sec"] == pytest.approx(batch * batches / record["seconds"], rel=0.01)
    assert record["cpu_s"] > 0 and record["cores"] >= 1
    assert record["samples_per_cpu_s"] == pytest.approx(batch * batches / record["cpu_s"], rel=0.01)
    json.dumps(record)  # one JSON line


def test_unet_synthetic_reader_is_timed_and_compared_with_the_fastest_training_run(tmp_path):
    models = _model_results(tmp_path, "unet", [0.2, 0.5])
    assert models[("unet", "default")]["samples_per_sec"] == 0.5  # the fastest train record, not infer
    reader = readers.Reader("unet-tiny", "unet", argv=TINY_UNET)
    record = readers.measure(reader, batches=2, warmup=1, models=models, workers=0)
    _check_record(record, batch=3, shape=[[32, 32, 1]], batches=2)
    assert record["source"] == "synthetic" and "synthetic" in record["description"]
    assert record["workers"] == record["workers_used"] == 0 and record["parallelism"] == "main thread"
    assert record["worker_threads"] == 0 and record["worker_cpu_s"] is None  # the reading loop made them
    assert record["model_samples_per_sec"] == 0.5
    assert record["ratio"] == pytest.approx(record["samples_per_sec"] / 0.5, rel=0.02)


def test_tfrecord_reader_is_prepared_then_iterated(tmp_path):
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for wnid in ("n01440764", "n01443537"):
        (folder / wnid).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / wnid / f"{wnid}_{i}.JPEG")
    reader = readers.Reader(
        "amoebanet-tiny",
        "amoebanet",
        argv=("--input-size", "32", "--batch-size", "2"),
        source=str(folder),
        prepare=readers._tfrecords("imagenet", str(folder), "--num-shards", "2"),
    )
    record = readers.measure(reader, batches=2, warmup=1, models={}, workers=1)
    _check_record(record, batch=2, shape=[[32, 32, 3]], batches=2)
    assert "tfrecords" in record["description"] and record["prepare_s"] > 0
    assert record["workers_used"] == 1 and record["parallelism"] == "tf.data threads"
    assert record["ratio"] is None and record["model_samples_per_sec"] is None


def test_without_shared_data_every_network_has_a_synthetic_reader(tmp_path):
    found = readers.default_readers(str(tmp_path / "absent"))
    assert {r.model for r in found} == set(readers.MODELS)
    assert all("synthetic" in r.source for r in found)
    assert all("--data" not in r.argv for r in found)


def test_workers_option_runs_each_reader_with_each_worker_count(tmp_path, monkeypatch, capsys):
    """``--workers 0 2``: one line per count; the U-Net reader runs 2 threads."""
    tiny = readers.Reader("unet-tiny", "unet", argv=TINY_UNET)
    monkeypatch.setattr(readers, "default_readers", lambda data_root: [tiny])
    out = tmp_path / "lines.jsonl"
    argv = [
        "--workers",
        "0",
        "2",
        "--batches",
        "2",
        "--model-results",
        str(tmp_path / "none"),
        "--out",
        str(out),
    ]
    assert readers.main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["workers"], r["workers_used"]) for r in records] == [(0, 0), (2, 2)]
    assert records[1]["parallelism"] == "threads" and "2 worker threads" in records[1]["description"]
    for record in records:
        _check_record(record, batch=3, shape=[[32, 32, 1]], batches=2)
    assert capsys.readouterr().out.count("\n") == 2  # the same lines on stdout
    with pytest.raises(SystemExit):
        readers.main(["--workers", "-1"])


def test_worker_times_split_each_worker_thread_into_cpu_run_queue_and_blocked():
    before = {"1/1": (5.0, 1.0), "1/2": (1.0, 0.5), "1/3": (2.0, 0.0), "1/4": (0.0, 0.0)}
    after = {"1/1": (9.0, 1.0), "1/2": (1.6, 0.8), "1/3": (2.005, 0.0), "1/4": (0.5, 0.1), "1/5": (0.3, 0.0)}
    # 1/1 is the reading loop; 1/3 ran for under 2 % of the second; 1/5 started during the timing
    times = readers.worker_times(before, after, wall=1.0, main_thread="1/1")
    assert times == {
        "worker_threads": 3,
        "worker_cpu_s": pytest.approx(1.4),
        "worker_runqueue_s": pytest.approx(0.4),
        "worker_blocked_s": pytest.approx(1.2),
    }
    assert readers.worker_times(before, before, 1.0, "1/1")["worker_cpu_s"] is None
    if os.path.isdir("/proc/self/task"):
        stats = readers.thread_schedstats()
        assert f"{os.getpid()}/{threading.get_native_id()}" in stats

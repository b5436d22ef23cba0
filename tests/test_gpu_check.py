"""benchmarks/gpu_check: the prepared GPU run, exercised on the CPU in its --smoke mode."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

HAS_JAX, HAS_TORCH = (importlib.util.find_spec(name) is not None for name in ("jax", "torch"))


def _script_copy(root) -> str:
    """gpu_check.sh in an otherwise empty repository tree (no .whl/ folder), so the test sees only its own."""
    (root / "benchmarks").mkdir()
    script = root / "benchmarks" / "gpu_check.sh"
    script.write_text((REPO / "benchmarks" / "gpu_check.sh").read_text())
    return str(script)


def test_gpu_run_without_keras_or_its_wheels_stops_at_once_naming_the_fix(tmp_path):
    # A Python that cannot import keras (no site-packages), as on the GPU machine before the wheels come.
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    result = subprocess.run(
        ["bash", _script_copy(tmp_path), "--out", str(tmp_path / "check.jsonl")],
        env={**os.environ, "PYTHON": str(python)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "fetch_gpu_wheels.sh" in result.stderr and "has no keras" in result.stderr
    assert not (tmp_path / "check.jsonl").exists()


def test_smoke_run_writes_a_record_per_item_and_the_table(tmp_path):
    out = tmp_path / "check.jsonl"
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(out), "--models", "unet"],
        env={**os.environ, "PYTHON": sys.executable},  # the interpreter whose torch HAS_TORCH looked for
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = {r["item"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {f"{kind}:unet" for kind in gpu_check.KINDS}
    jax = records["keras-jax:unet"]
    if HAS_JAX:  # the README's test command installs it
        assert (jax["backend"], jax["preset"], jax["batch"]) == ("jax", "tiny", 1)
        assert jax["first_step_s"] > 0 and jax["fit_step_time_ms"] > 0
    else:
        assert jax["skipped"] == "jax is not installed"
    for kind in ("torch-eager", "keras-torch", "torch-compile"):
        record = records[f"{kind}:unet"]
        if HAS_TORCH:
            assert "step_time_ms" in record, record
        else:
            assert record["skipped"] == "torch is not installed"
    table = result.stdout[result.stdout.index("| network, batch") :].splitlines()
    first_cells = f"1 | {jax['fit_step_time_ms']:,.1f}" if HAS_JAX else "? | skipped"
    assert table[2].startswith(f"| unet, {first_cells} |")


def test_table_compares_the_jax_step_with_the_eager_port():
    records = [
        {
            "item": "keras-jax:unet",
            "model": "unet",
            "batch": 2,
            "step_time_ms": 9.0,
            "fit_step_time_ms": 8.0,
            "first_step_s": 12.5,
            "mfu": 0.084,
            "roofline_fraction": 0.21,
        },
        # pipelined against pipelined: the port's unsynchronised block, not its synchronised median step
        {"item": "torch-eager:unet", "model": "unet", "step_time_ms": 11.6, "pipelined_step_time_ms": 10.4},
        {"item": "keras-torch:unet", "model": "unet", "timeout": "no result within 90 s"},
        {"item": "torch-compile:unet", "model": "unet", "error": "RuntimeError: x"},
        {"item": "keras-jax:unet:b16", "model": "unet", "batch": 16, "step_time_ms": 30.0},
        {"item": "keras-jax:amoebanet", "model": "amoebanet", "skipped": "budget spent"},
    ]
    rows = gpu_check.table(records).splitlines()[2:]
    assert rows[0] == "| unet, 2 | 8.0 | 10.4 | 1.30x | timeout | error | 12.5 | 8.4 % | 21 % |"
    assert rows[1] == "| unet, 16 | 30.0 | - | - | - | - | - | - | - |"
    assert rows[2] == "| amoebanet, ? | skipped | - | - | - | - | - | - | - |"


def test_an_item_past_its_limit_is_recorded_as_a_timeout():
    slow = gpu_check.Item("keras-jax:unet", "unet", ("-c", "import time; time.sleep(30)"), None, 60.0, "json")
    (record,) = gpu_check.run_item(slow, seconds_left=0.5)
    assert record["item"] == "keras-jax:unet" and record["timeout"] == "no result within 0 s"
    assert record["budget_cut"] and gpu_check.table([record]).endswith(
        "| budget | - | - | - | - | - | - | - |"
    )
    own = dataclasses.replace(slow, limit_s=0.5)
    (record,) = gpu_check.run_item(own, seconds_left=60)
    assert "budget_cut" not in record and gpu_check.table([record]).endswith(
        "| timeout | - | - | - | - | - | - | - |"
    )


def test_a_failing_item_keeps_its_last_error_line():
    failing = gpu_check.Item(
        "torch-eager:unet", "unet", ("-c", "raise SystemExit('bad flag')"), None, 60, "json"
    )
    (record,) = gpu_check.run_item(failing, seconds_left=60)
    assert record["error"] == "bad flag" and record["returncode"] == 1


def test_the_gpu_plan_runs_keras_jax_first_at_reference_batches_with_the_gpus_peaks():
    items = gpu_check.plan(smoke=False, peaks=gpu_check.peaks_for("NVIDIA H100 80GB HBM3"))
    assert [i.name for i in items[:6]] == [f"keras-jax:{m}" for m in gpu_check.MODELS] + [
        "keras-jax:unet:b16"
    ]
    deeplab = next(i for i in items if i.name == "keras-jax:deeplabv3plus")
    assert deeplab.argv[deeplab.argv.index("--batch-size") + 1] == "8" and "--device" in deeplab.argv
    assert deeplab.argv[deeplab.argv.index("--peak-gbps") + 1] == "3000.0" and deeplab.backend == "jax"
    assert deeplab.argv[deeplab.argv.index("--peak-gflops") + 1] == "989400.0"  # datasheet dense bf16
    unknown = next(i for i in gpu_check.plan(smoke=False) if i.name == "keras-jax:deeplabv3plus")
    assert "--peak-gflops" not in unknown.argv and "--peak-gbps" not in unknown.argv
    ports = [i for i in items if i.name.startswith("torch-")]
    assert len(ports) == 10 and all("cuda" in i.argv and "bf16" in i.argv for i in ports)
    assert all(os.path.exists(i.argv[0]) for i in ports)


def test_diagnoses_run_only_when_their_item_misses_their_targets():
    autotune0, phases, nativepool = [i for i in gpu_check.plan(smoke=False) if i.diagnoses]
    assert autotune0.name == "keras-jax:deeplabv3plus:autotune0"
    assert dict(autotune0.env) == {"XLA_FLAGS": "--xla_gpu_autotune_level=0"}
    assert phases.name == "keras-jax:deeplabv3plus:phases"
    assert dict(phases.env) == {"KERAS_ZOO_DEPTHWISE": "phases"}
    assert (
        nativepool.name == "keras-jax:amoebanet:nativepool" and nativepool.diagnoses == "keras-jax:amoebanet"
    )
    assert dict(nativepool.env) == {"KERAS_ZOO_MAX_POOLING": "native"} and nativepool.targets == ("speedup",)
    main = {"item": "keras-jax:deeplabv3plus", "model": "deeplabv3plus", "fit_step_time_ms": 50.0}
    port = {"item": "torch-eager:deeplabv3plus", "model": "deeplabv3plus", "step_time_ms": 74.0}
    fast, slow = {**main, "first_step_s": 41.0}, {**main, "first_step_s": 75.0}
    assert "41.0 s <= 60 s" in gpu_check.reason_to_skip(autotune0, [fast, port])
    assert gpu_check.reason_to_skip(autotune0, [slow, port]) is None
    timeout = {**main, "timeout": "no result within 180 s"}
    assert gpu_check.reason_to_skip(autotune0, [timeout]) is None
    assert gpu_check.reason_to_skip(phases, [timeout]) is None
    assert gpu_check.reason_to_skip(autotune0, []) == "keras-jax:deeplabv3plus did not run"
    # phases also runs when the step is fast to compile but under 1.3x the eager port
    assert "1.48x the port" in gpu_check.reason_to_skip(phases, [fast, port])
    assert gpu_check.reason_to_skip(phases, [{**fast, "fit_step_time_ms": 60.0}, port]) is None
    assert gpu_check.reason_to_skip(phases, [slow, port]) is None
    assert "no port result" in gpu_check.reason_to_skip(phases, [fast])
    # a speed-up-only diagnosis runs when its item gave no step time to compare (not "no port result")
    amoeba = {"item": "keras-jax:amoebanet", "model": "amoebanet"}
    amoeba_port = {"item": "torch-eager:amoebanet", "model": "amoebanet", "step_time_ms": 50.0}
    for failed in ({"timeout": "no result within 150 s"}, {"error": "RuntimeError: x"}):
        assert gpu_check.reason_to_skip(nativepool, [{**amoeba, **failed}, amoeba_port]) is None
    assert gpu_check.reason_to_skip(gpu_check.plan(smoke=False)[0], []) is None


def test_an_item_appends_its_xla_flags_to_the_callers(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    echo = gpu_check.Item(
        "keras-jax:unet:autotune0",
        "unet",
        ("-c", "import json, os; print(json.dumps({'flags': os.environ['XLA_FLAGS']}))"),
        None,
        60,
        "json",
        env=(("XLA_FLAGS", "--xla_gpu_autotune_level=0"),),
    )
    (record,) = gpu_check.run_item(echo, seconds_left=60)
    assert record["flags"] == "--xla_dump_to=/tmp/x --xla_gpu_autotune_level=0"


def test_table_labels_a_diagnosis_row():
    records = [
        {"item": "keras-jax:deeplabv3plus", "model": "deeplabv3plus", "timeout": "no result within 180 s"},
        {
            "item": "keras-jax:deeplabv3plus:autotune0",
            "model": "deeplabv3plus",
            "batch": 8,
            "step_time_ms": 90.0,
            "first_step_s": 35.0,
        },
    ]
    records.append({"item": "torch-eager:deeplabv3plus", "model": "deeplabv3plus", "step_time_ms": 117.0})
    rows = gpu_check.table(records).splitlines()[2:]
    assert rows[0].startswith("| deeplabv3plus, ? | timeout | 117.0 | - |")
    assert rows[1] == "| deeplabv3plus, 8 (autotune0) | 90.0 | 117.0 | 1.30x | - | - | 35.0 | - | - |"


@pytest.mark.skipif(not HAS_TORCH, reason="the PyTorch ports need torch")
def test_every_ports_smoke_arguments_train_a_step():
    """The smoke configuration of each PyTorch port builds and trains (CI has no torch; a GPU host has)."""
    ports = [i for i in gpu_check.plan(smoke=True) if i.name.startswith("torch-eager:")]
    assert len(ports) == len(gpu_check.MODELS)
    for item in ports:
        (record,) = gpu_check.run_item(item, seconds_left=120)
        assert record["step_time_ms"] > 0, record


@pytest.mark.parametrize(
    "name, bandwidth",
    [
        ("NVIDIA H200", 4_300.0),
        ("NVIDIA H100 80GB HBM3", 3_000.0),
        ("NVIDIA A100-SXM4-80GB", None),
        ("NVIDIA H100 PCIe", None),  # other parts of the same names have other ceilings
        ("NVIDIA H100 NVL", None),
        ("NVIDIA H200 NVL", None),
        ("NVIDIA GH200 480GB", None),
        (None, None),
    ],
)
def test_ceilings_follow_the_gpus_name(name, bandwidth):
    peaks = gpu_check.peaks_for(name)
    assert (peaks and peaks[1]) == bandwidth


def test_the_gpu_name_comes_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200'\necho 'NVIDIA H200'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_check.gpu_name() == "NVIDIA H200"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert gpu_check.gpu_name() is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu_check.gpu_name() is None


def test_a_gpu_run_records_the_gpu_and_its_ceilings_first(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "gpu.jsonl"
    # a budget too small to start any item: every item is recorded as skipped, nothing runs
    assert gpu_check.main(["--out", str(out), "--budget", "1", "--models", "unet"]) == 0
    device, *items = [json.loads(line) for line in out.read_text().splitlines()]
    assert device["item"] == "device" and device["gpu"] == "NVIDIA H100 80GB HBM3"
    assert (device["peak_gflops"], device["peak_gbps"]) == (989_400.0, 3_000.0)
    assert items and all(r["skipped"] == "budget spent" for r in items)
    printed = capsys.readouterr().out
    assert "gpu_check: GPU NVIDIA H100 80GB HBM3: ceilings 989,400 GFLOP/s, 3,000 GB/s" in printed
    assert "MFU of 989,400 GFLOP/s; roofline with 3,000 GB/s." in printed

"""benchmarks/gpu_check: the prepared GPU run, exercised on the CPU in its --smoke mode."""

import importlib.util
import json
import os
import subprocess
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_smoke_run_writes_a_record_per_item_and_the_table(tmp_path):
    out = tmp_path / "check.jsonl"
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(out), "--models", "unet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = {r["item"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {f"{kind}:unet" for kind in gpu_check.KINDS}
    jax = records["keras-jax:unet"]
    assert (jax["backend"], jax["preset"], jax["batch"]) == ("jax", "tiny", 1)
    assert jax["first_step_s"] > 0 and jax["fit_step_time_ms"] > 0
    for kind in ("torch-eager", "keras-torch", "torch-compile"):
        record = records[f"{kind}:unet"]
        if HAS_TORCH:
            assert "step_time_ms" in record, record
        else:
            assert record["skipped"] == "torch is not installed"
    table = result.stdout[result.stdout.index("| network, batch") :].splitlines()
    assert table[2].startswith(f"| unet, 1 | {jax['fit_step_time_ms']:,.1f} |")


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
        {"item": "torch-eager:unet", "model": "unet", "step_time_ms": 11.6},
        {"item": "keras-torch:unet", "model": "unet", "timeout": "no result within 90 s"},
        {"item": "torch-compile:unet", "model": "unet", "error": "RuntimeError: x"},
        {"item": "keras-jax:unet:b16", "model": "unet", "batch": 16, "step_time_ms": 30.0},
        {"item": "keras-jax:amoebanet", "model": "amoebanet", "skipped": "budget spent"},
    ]
    rows = gpu_check.table(records).splitlines()[2:]
    assert rows[0] == "| unet, 2 | 8.0 | 11.6 | 1.45x | timeout | error | 12.5 | 8.4 % | 21 % |"
    assert rows[1] == "| unet, 16 | 30.0 | - | - | - | - | - | - | - |"
    assert rows[2] == "| amoebanet, ? | skipped | - | - | - | - | - | - | - |"


def test_an_item_past_its_limit_is_recorded_as_a_timeout():
    slow = gpu_check.Item("keras-jax:unet", "unet", ("-c", "import time; time.sleep(30)"), None, 60.0, "json")
    (record,) = gpu_check.run_item(slow, seconds_left=0.5)
    assert record["item"] == "keras-jax:unet" and record["timeout"] == "no result within 0 s"


def test_a_failing_item_keeps_its_last_error_line():
    failing = gpu_check.Item(
        "torch-eager:unet", "unet", ("-c", "raise SystemExit('bad flag')"), None, 60, "json"
    )
    (record,) = gpu_check.run_item(failing, seconds_left=60)
    assert record["error"] == "bad flag" and record["returncode"] == 1


def test_the_gpu_plan_runs_keras_jax_first_at_reference_batches_with_the_h200_peaks():
    items = gpu_check.plan(smoke=False)
    assert [i.name for i in items[:6]] == [f"keras-jax:{m}" for m in gpu_check.MODELS] + [
        "keras-jax:unet:b16"
    ]
    deeplab = next(i for i in items if i.name == "keras-jax:deeplabv3plus")
    assert deeplab.argv[deeplab.argv.index("--batch-size") + 1] == "8" and "--device" in deeplab.argv
    assert "--peak-gbps" in deeplab.argv and deeplab.backend == "jax"
    ports = [i for i in items if i.name.startswith("torch-")]
    assert len(ports) == 10 and all("cuda" in i.argv and "bf16" in i.argv for i in ports)
    assert all(os.path.exists(i.argv[0]) for i in ports)

"""benchmarks/keras_call_overhead.py: Keras' per-layer Python on the torch backend."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "keras_call_overhead.py"


def run_script(*argv: str, backend: str = "torch") -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("model", ["unet", "cascadenet"])  # one input; three inputs and data consistency
def test_direct_path_computes_what_keras_computes_and_both_are_timed(model):
    pytest.importorskip("torch")
    result = run_script("--model", model, "--rounds", "2", "--steps", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["model"] == model and record["max_difference_at_inference"] == 0.0
    assert len(record["keras_forward_ms"]) == len(record["direct_forward_ms"]) == 2
    assert record["layers"] > 30 and min(record["keras_forward_ms"] + record["direct_forward_ms"]) > 0
    keras_ms, direct_ms = sorted(record["keras_forward_ms"]), sorted(record["direct_forward_ms"])
    median = (keras_ms[0] + keras_ms[1]) / 2 - (direct_ms[0] + direct_ms[1]) / 2
    per_layer_us = median / record["layers"] * 1e3
    assert record["call_overhead_us_per_layer"] == pytest.approx(per_layer_us, abs=0.5)  # ms rounded to 0.01


def test_refuses_another_keras_backend():
    result = run_script("--model", "unet", backend="jax")
    assert result.returncode == 2 and "torch backend" in result.stderr

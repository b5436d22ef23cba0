"""benchmarks/torch_dispatch.py: ATen operators and host time per step, Keras' torch backend against the port."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "torch_dispatch.py"


def run_script(*argv: str, backend: str = "torch") -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env)


def test_one_round_gives_both_sides_and_a_consistent_summary():
    pytest.importorskip("torch")
    result = run_script("--model", "unet", "--rounds", "1", "--steps", "1", "--warmup", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    keras_side, port_side, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert (keras_side["side"], port_side["side"], summary["side"]) == (
        "keras-torch",
        "torch-port",
        "summary",
    )
    # the same network on both sides (the script refuses to compare different ones)
    assert keras_side["parameters"] == port_side["parameters"] == summary["parameters"]
    for side in (keras_side, port_side):
        assert side["aten_ops_per_step"] > side["aten_views_per_step"] > 0 and side["step_time_ms"] > 0
    assert summary["keras_aten_ops"] == keras_side["aten_ops_per_step"]
    assert summary["ops_ratio"] == round(keras_side["aten_ops_per_step"] / port_side["aten_ops_per_step"], 2)
    assert summary["port_non_view_ops"] == port_side["aten_ops_per_step"] - port_side["aten_views_per_step"]
    assert summary["step_ratio"] == round(keras_side["step_time_ms"] / port_side["step_time_ms"], 2)


def test_refuses_another_keras_backend():
    result = run_script("--model", "unet", backend="jax")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "torch_dispatch.py measures Keras' torch backend; KERAS_BACKEND is jax"
    )


def test_reference_counts_one_keras_step_at_full_size():
    """``--reference``: one record per network, counted at the reference configuration. CascadeNet has no
    batch norm, so its operators do not depend on width or image size: the count equals the proxy's."""
    pytest.importorskip("torch")
    result = run_script("--reference", "--model", "cascadenet", "--batch-size", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["model"], record["config"], record["side"], record["batch"]) == (
        "cascadenet",
        "reference",
        "keras-torch",
        1,
    )
    assert record["layers"]["batch_norm"] in ("fused", "keras")
    proxy = run_script("--model", "cascadenet", "--rounds", "1", "--steps", "1", "--warmup", "0")
    assert proxy.returncode == 0, proxy.stderr[-2000:]
    proxy_keras = json.loads(proxy.stdout.splitlines()[0])
    assert record["parameters"] > proxy_keras["parameters"]
    assert record["aten_ops_per_step"] == proxy_keras["aten_ops_per_step"]
    assert record["aten_views_per_step"] == proxy_keras["aten_views_per_step"]

"""benchmarks/jax_build.py: one JSON line per build, with and without the persistent compilation cache."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "jax_build.py"


def test_records_the_build_and_fills_the_cache(tmp_path):
    pytest.importorskip("jax")
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    command = [sys.executable, str(SCRIPT), "unet", "--preset", "tiny", "--cache", str(tmp_path / "cache")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["model"] == "unet" and record["cache"] is True and record["build_s"] > 0
    assert (record["weights"], record["weight_shapes"]) == (28, 17)
    assert any((tmp_path / "cache").rglob("*"))  # the initialisers' programs were kept

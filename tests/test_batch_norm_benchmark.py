"""benchmarks/batch_norm.py: a batch norm's training step timed with Keras' ops and the backend's fused kernel."""

import importlib.util
import json
import os
import pathlib

import keras
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "batch_norm.py"
spec = importlib.util.spec_from_file_location("batch_norm_benchmark", SCRIPT)
batch_norm_benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(batch_norm_benchmark)


@pytest.mark.backend_agnostic
def test_each_shape_and_policy_is_timed_both_ways_with_close_results(capsys, monkeypatch):
    argv = [
        "--shape",
        "2,4,4,16",
        "--shape",
        "2,3,3,2,4",
        "--policy",
        "float32",
        "--policy",
        "mixed_bfloat16",
    ]
    argv += ["--reps", "1"]
    if keras.config.backend() == "jax":
        with pytest.raises(SystemExit, match="jax backend has none"):
            batch_norm_benchmark.main(argv)
        return
    monkeypatch.setenv("KERAS_ZOO_BATCH_NORM", "auto")
    batch_norm_benchmark.main(argv)
    assert os.environ["KERAS_ZOO_BATCH_NORM"] == "auto"  # restored
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["shape"], r["policy"], r["implementation"]) for r in records] == [
        (shape, policy, name)
        for shape in ([2, 4, 4, 16], [2, 3, 3, 2, 4])
        for policy in ("float32", "mixed_bfloat16")
        for name in ("keras", "fused")
    ]
    # TensorFlow fuses every count (4 channels in bfloat16 through a float32 copy); torch on a CPU 16 and up
    expected = {
        "tensorflow": [False, True, False, True, False, True, False, True],
        "torch": [False, True, False, True, False, False, False, False],
    }[keras.config.backend()]
    assert [r["fused_ran"] for r in records] == expected
    assert all(r["ms_median"] > 0 for r in records)
    assert all(r["max_relative_difference"] < (1e-5 if r["policy"] == "float32" else 2e-2) for r in records)


def test_shapes_need_a_batch_spatial_axes_and_channels():
    with pytest.raises(SystemExit):
        batch_norm_benchmark.main(["--shape", "2,16"])

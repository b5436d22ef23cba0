"""benchmarks/depthwise.py: DeepLab's depthwise convolutions timed under each implementation."""

import importlib.util
import json
import pathlib

import keras
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "depthwise.py"
spec = importlib.util.spec_from_file_location("depthwise_benchmark", SCRIPT)
depthwise = importlib.util.module_from_spec(spec)
spec.loader.exec_module(depthwise)


def test_cases_are_deeplabs_depthwise_shapes_at_output_stride_16():
    found = {
        name: (size, channels, stride, rate) for name, size, channels, stride, rate in depthwise.cases(513)
    }
    assert found["entry_128ch"] == (257, 128, 1, 1)
    assert found["entry_256ch_stride2"] == (129, 256, 2, 1)
    assert found["middle_728ch"] == (33, 728, 1, 1)
    assert [found[f"aspp_rate{r}"] for r in (6, 12, 18)] == [(33, 2048, 1, r) for r in (6, 12, 18)]


@pytest.mark.backend_agnostic
def test_every_implementation_is_timed_and_agrees_with_the_native_op(capsys, monkeypatch):
    if keras.config.backend() not in ("jax", "torch"):
        with pytest.raises(SystemExit, match="JAX and torch"):
            depthwise.main(["--crop", "17", "--batch-size", "1", "--reps", "1"])
        return
    monkeypatch.setenv(depthwise.IMPLEMENTATION_VARIABLE, "auto")  # restored after the script sets it
    depthwise.main(["--crop", "17", "--batch-size", "1", "--reps", "1"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 7 * 3
    assert {r["implementation"] for r in records} == {"native", "phases", "taps"}
    assert all(r["ms_median"] > 0 and r["max_rel_error_vs_native"] < 1e-5 for r in records)

"""benchmarks/max_pooling.py: a network's max pools timed natively and by taps."""

import importlib.util
import json
import pathlib

import keras
import pytest

import keras_zoo

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "max_pooling.py"
spec = importlib.util.spec_from_file_location("max_pooling_benchmark", SCRIPT)
max_pooling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(max_pooling)


def test_cases_are_the_networks_distinct_max_pools():
    found = max_pooling.cases(keras_zoo.get_model("unet", preset="tiny"))  # 32x32, 4 filters, depth 2
    assert found == {((32, 32, 4), (2, 2), (2, 2), "valid"): 1, ((16, 16, 8), (2, 2), (2, 2), "valid"): 1}


@pytest.mark.backend_agnostic
def test_every_case_is_timed_natively_and_by_taps_with_equal_results(capsys, monkeypatch):
    argv = [
        "--model",
        "genesis",
        "--preset",
        "tiny",
        "--batch-size",
        "1",
        "--reps",
        "1",
        "--dtype",
        "bfloat16",
    ]
    if keras.config.backend() != "jax":
        with pytest.raises(SystemExit, match="JAX backend"):
            max_pooling.main(argv)
        return
    monkeypatch.setenv(max_pooling.IMPLEMENTATION_VARIABLE, "auto")  # restored after the script sets it
    max_pooling.main(argv)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["implementation"] for r in records] == ["native", "taps"] * 2  # genesis tiny: depth 3, 2 pools
    assert records[0]["shape"] == [1, 16, 16, 8, 4] and records[0]["pool"] == [2, 2, 2]
    assert all(r["ms_median"] > 0 and r["equal_to_native"] and r["dtype"] == "bfloat16" for r in records)

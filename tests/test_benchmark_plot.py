"""benchmarks/plot.py: benchmark JSON lines become a PNG bar chart."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "plot.py"
spec = importlib.util.spec_from_file_location("benchmark_plot", SCRIPT)
benchmark_plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark_plot)

pytestmark = pytest.mark.backend_agnostic


def _record(model, samples, **extra):
    return json.dumps(
        {"model": model, "backend": "tensorflow", "precision": "fp32", "samples_per_sec": samples, **extra}
    )


def test_records_group_by_model_and_label():
    lines = [
        "log line",
        _record("unet", 0.2),
        _record("unet", 0.25, label="PyTorch port"),
        _record("genesis", 0.17),
        json.dumps({"model": "unet", "error": "OOM"}),
    ]
    assert benchmark_plot.collect(lines) == {
        "unet": {"tensorflow fp32": 0.2, "PyTorch port": 0.25},
        "genesis": {"tensorflow fp32": 0.17},
    }


def test_writes_a_png(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("\n".join([_record("unet", 0.2), _record("unet", 0.25, label="PyTorch port")]))
    out = tmp_path / "chart.png"
    assert benchmark_plot.main([str(results), "-o", str(out)]) == 0
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_no_records_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("nothing here\n")
    with pytest.raises(SystemExit) as exc:
        benchmark_plot.main([str(empty), "-o", str(tmp_path / "x.png")])
    assert exc.value.code == 2 and "no records" in capsys.readouterr().err

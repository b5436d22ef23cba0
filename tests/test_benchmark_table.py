"""benchmarks/to_markdown.py: JSON lines from `keras-zoo benchmark` become the docs table."""

import importlib.util
import json
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "to_markdown.py"
spec = importlib.util.spec_from_file_location("to_markdown", SCRIPT)
to_markdown = importlib.util.module_from_spec(spec)
spec.loader.exec_module(to_markdown)

RECORD = {
    "model": "cascadenet", "preset": "default", "backend": "jax", "precision": "bf16", "jit": "True",
    "batch": 10, "input_shape": [[256, 256, 2], [256, 256, 2], [256, 256, 2]], "step_time_ms": 1234.5,
    "step_time_p90_ms": 1300.0, "samples_per_sec": 8.1, "model_gflops_per_sec": 1797.53,
    "peak_host_bytes": 3 * 2**30,
}  # fmt: skip


def test_records_become_rows_and_other_lines_are_skipped():
    lines = ["INFO log line", json.dumps(RECORD), json.dumps({"model": "unet", "error": "OOM"})]
    rows = to_markdown.table(lines).splitlines()
    assert len(rows) == 3  # header, separator, one record
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells == ["cascadenet", "default", "jax", "bf16", "True", "10", "256x256x2 + 256x256x2 + 256x256x2",
                     "1,234", "1,300", "8.1", "1,797.5", "3.0"]  # fmt: skip


def test_records_from_before_the_flop_count_show_a_dash():
    old = {k: v for k, v in RECORD.items() if k != "model_gflops_per_sec"}
    cells = [c.strip() for c in to_markdown.table([json.dumps(old)]).splitlines()[2].strip("|").split("|")]
    assert cells[-2:] == ["-", "3.0"]

"""Turns ``keras-zoo benchmark`` JSON lines into the markdown table used in docs/benchmarks.md.

Usage: ``python benchmarks/to_markdown.py results.jsonl [more.jsonl ...]`` (lines that are not JSON
objects, and error records, are skipped).
"""

from __future__ import annotations

import json
import sys

HEADER = (
    "| model | preset | backend | precision | jit | batch | input | step time (ms, median) | p90 (ms) "
    "| samples/s | model GFLOP/s | peak host memory (GiB) |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def shape_text(shapes: list) -> str:
    """``[[256, 256, 1]]`` -> ``256x256x1``; several inputs are joined with ``+``."""
    return " + ".join("x".join(str(d) for d in shape) for shape in shapes)


def row(record: dict) -> str:
    memory = record.get("peak_host_bytes")
    memory_text = f"{memory / 2**30:.1f}" if memory else "-"
    gflops = record.get("model_gflops_per_sec")
    gflops_text = f"{gflops:,.1f}" if gflops else "-"
    return (
        f"| {record['model']} | {record.get('preset', '-')} | {record['backend']} | {record['precision']} "
        f"| {record['jit']} | {record['batch']} | {shape_text(record['input_shape'])} "
        f"| {record['step_time_ms']:,.0f} | {record['step_time_p90_ms']:,.0f} | {record['samples_per_sec']:.3g} "
        f"| {gflops_text} | {memory_text} |"
    )


def table(lines: list[str]) -> str:
    """The markdown table of every benchmark record in ``lines``."""
    records = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            if "step_time_ms" in record:
                records.append(record)
    return "\n".join([HEADER, *map(row, records)])


def main(paths: list[str]) -> int:
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            lines += f.readlines()
    print(table(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

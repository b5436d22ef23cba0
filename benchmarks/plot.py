"""Bar chart (PNG) of training samples/s per model from benchmark JSON lines.

Usage: ``python benchmarks/plot.py results.jsonl [more.jsonl ...] -o docs/benchmarks_cpu.png``

Each record with ``samples_per_sec`` becomes one bar in its model's group; the bar's label is the record's
``label`` when it has one (e.g. ``"PyTorch port"`` for figures measured outside the project), else
``"<backend> <precision>"``. The x axis is logarithmic: the five networks differ by 30x in samples/s.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def bar_label(record: dict) -> str:
    return record.get("label") or f"{record['backend']} {record['precision']}"


def collect(lines: list[str]) -> dict[str, dict[str, float]]:
    """model -> bar label -> samples/s (the last record wins when a label repeats)."""
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            if "samples_per_sec" in record:
                groups[record["model"]][bar_label(record)] = float(record["samples_per_sec"])
    return dict(groups)


def plot(groups: dict[str, dict[str, float]], path: str, title: str) -> None:
    """Writes the grouped horizontal bar chart of ``groups`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = sorted({label for bars in groups.values() for label in bars})
    models = sorted(groups)
    height = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.9 * len(models)))
    for i, label in enumerate(labels):
        ys = [m + i * height for m in range(len(models)) if label in groups[models[m]]]
        xs = [groups[model][label] for model in models if label in groups[model]]
        bars = ax.barh(ys, xs, height=height, label=label)
        ax.bar_label(bars, fmt="%.3g", padding=2, fontsize=8)
    ax.set_yticks([m + 0.4 - height / 2 for m in range(len(models))], models)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = [v for bars in groups.values() for v in bars.values()]
    ax.set_xlim(min(values) / 1.5, max(values) * 2.0)  # room for the value labels
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training samples/s (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(labels), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="JSON-lines files")
    parser.add_argument("-o", "--output", required=True, help="PNG to write")
    parser.add_argument("--title", default="Training throughput")
    args = parser.parse_args(argv)
    lines = []
    for path in args.paths:
        with open(path, encoding="utf-8") as f:
            lines += f.readlines()
    groups = collect(lines)
    if not groups:
        parser.error("no records with samples_per_sec in " + ", ".join(args.paths))
    plot(groups, args.output, args.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``keras-zoo``: one command for training, listing, inspecting, benchmarking and preparing data.

Subcommands: ``train`` (same flags as ``train.py``), ``list``, ``info``, ``summary`` (layers, parameters,
diagram), ``benchmark``, ``prepare``, ``export`` (SavedModel / ONNX) and ``predict`` (U-Net masks for image
files).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from keras_zoo.cli import train as train_cli

SUBCOMMANDS = ("train", "list", "info", "summary", "benchmark", "prepare", "export", "predict", "evaluate")


def cmd_list(argv: list[str]) -> int:
    """Prints every registered model with its presets and parameter counts."""
    parser = argparse.ArgumentParser(
        prog="keras-zoo list", description="List models, presets and parameter counts."
    )
    parser.add_argument(
        "--count", action="store_true", help="build each default model to count its parameters"
    )
    parser.add_argument("--markdown", action="store_true", help="print the README's model table")
    args = parser.parse_args(argv)
    from keras_zoo.registry import get_entry, get_model, list_models

    if args.markdown:
        print(model_table())
        return 0

    for name in list_models():
        entry = get_entry(name)
        line = f"{name:14s} {entry.description}"
        if entry.reference_params:
            line += f" | reference params {entry.reference_params:,}"
        if args.count:
            model = get_model(name)
            trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
            line += f" | built {model.count_params():,} ({trainable:,} trainable)"
        line += f" | presets: {', '.join(sorted(entry.presets))}"
        print(line)
    return 0


def model_table() -> str:
    """The README's model table, generated from the registry."""
    from keras_zoo.registry import get_entry, list_models

    rows = ["| model | network | reference parameters | presets |", "|---|---|---|---|"]
    for name in list_models():
        entry = get_entry(name)
        params = f"{entry.reference_params:,}" if entry.reference_params else "-"
        rows.append(f"| `{name}` | {entry.description} | {params} | {', '.join(sorted(entry.presets))} |")
    return "\n".join(rows)


def cmd_info(argv: list[str]) -> int:
    """Prints backend, devices, dtype policy and versions as JSON."""
    argparse.ArgumentParser(
        prog="keras-zoo info", description="Show backend, devices and versions."
    ).parse_args(argv)
    from keras_zoo.runtime import describe

    print(json.dumps(describe(), indent=2))
    return 0


def cmd_summary(argv: list[str]) -> int:
    from keras_zoo.cli.summary import main as summary_main

    return summary_main(argv)


def cmd_benchmark(argv: list[str]) -> int:
    from keras_zoo.cli.benchmark import main as benchmark_main

    return benchmark_main(argv)


def cmd_prepare(argv: list[str]) -> int:
    from keras_zoo.cli.prepare import main as prepare_main

    return prepare_main(argv)


def cmd_export(argv: list[str]) -> int:
    from keras_zoo.cli.export import main as export_main

    return export_main(argv)


def cmd_predict(argv: list[str]) -> int:
    from keras_zoo.cli.predict import main as predict_main

    return predict_main(argv)


def cmd_evaluate(argv: list[str]) -> int:
    from keras_zoo.cli.evaluate import main as evaluate_main

    return evaluate_main(argv)


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "summary": cmd_summary,
    "benchmark": cmd_benchmark,
    "prepare": cmd_prepare,
    "export": cmd_export,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        print("usage: keras-zoo {" + ",".join(SUBCOMMANDS) + "} [options]  (keras-zoo SUBCOMMAND --help)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    from keras_zoo.errors import KerasZooError

    try:
        if command == "train":
            return train_cli.main(rest)
        return COMMANDS[command](rest)
    except KerasZooError as exc:
        if "--debug" in rest:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``keras-zoo``: one command for training, listing, inspecting, benchmarking and preparing data.

Subcommands: ``train`` (same flags as ``train.py``), ``list``, ``info``, ``summary`` (layers, parameters,
diagram), ``benchmark``, ``prepare``, ``export`` (SavedModel / ONNX) and ``predict`` (U-Net masks for image
files). Each runs in :func:`keras_zoo.cli.command.run_command`: a user error is one ``error: ...`` line and
exit status 2, Ctrl-C one line and 130.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from keras_zoo.cli import train as train_cli
from keras_zoo.cli.command import EXIT_USER_ERROR, run_command, version

SUBCOMMANDS = ("train", "list", "info", "summary", "benchmark", "prepare", "export", "predict", "evaluate")
DESCRIPTIONS = {
    "train": "train a network (same flags as train.py; keras-zoo train --model NAME --help)",
    "list": "list the models with their presets and parameter counts",
    "info": "show the backend, devices and versions",
    "summary": "print a model's layers and parameters; optionally draw it",
    "benchmark": "measure training and inference throughput on synthetic batches",
    "prepare": "write the reference on-disk formats (Genesis cubes, VOC/ImageNet tfrecords)",
    "export": "export a model to a SavedModel folder or an ONNX file, checked against Keras",
    "predict": "run a trained model on images or volumes and write its outputs",
    "evaluate": "score a checkpoint on a labelled set with its task's metrics",
}


def cmd_list(argv: list[str]) -> int:
    """Prints every registered model with its presets and parameter counts."""
    parser = argparse.ArgumentParser(
        prog="keras-zoo list", description="List models, presets and parameter counts."
    )
    parser.add_argument(
        "--count", action="store_true", help="build each default model to count its parameters"
    )
    parser.add_argument("--markdown", action="store_true", help="print the README's model table")
    return run_command(parser.parse_args, _list, argv)


def _list(args: argparse.Namespace) -> int:
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
    """Prints backend, devices, dtype policy, what ``auto`` picks here, and versions as JSON."""
    parser = argparse.ArgumentParser(prog="keras-zoo info", description="Show backend, devices and versions.")
    return run_command(parser.parse_args, _info, argv)


def _info(args: argparse.Namespace) -> int:
    import keras

    from keras_zoo.layers import implementations
    from keras_zoo.runtime import auto_choices, describe

    # "policy" is the process's dtype policy (float32 until a run configures one); "auto" is what a run with
    # --device auto --precision auto (the defaults) would take here
    auto = auto_choices(keras.config.backend())
    print(json.dumps({**describe(), "auto": auto, "layers": implementations()}, indent=2))
    return 0


# Commands whose module has its own ``main(argv)``; imported only when run, so ``keras-zoo list`` stays quick.
MODULE_COMMANDS = {
    name: f"keras_zoo.cli.{name}"
    for name in ("summary", "benchmark", "prepare", "export", "predict", "evaluate")
}
COMMANDS = {"list": cmd_list, "info": cmd_info}


def run_module_command(name: str, argv: list[str]) -> int:
    """Runs ``keras-zoo NAME argv`` through the ``main`` of the command's module."""
    import importlib

    return importlib.import_module(MODULE_COMMANDS[name]).main(argv)


def usage() -> str:
    """``keras-zoo --help``: the subcommands, each with its one-line description."""
    width = max(map(len, SUBCOMMANDS))
    lines = [
        "usage: keras-zoo [--version] {" + ",".join(SUBCOMMANDS) + "} [options]",
        "",
        "commands:",
        *(f"  {name:{width}s}  {DESCRIPTIONS.get(name, '')}".rstrip() for name in SUBCOMMANDS),
        "",
        "keras-zoo COMMAND --help shows a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo``: dispatches to the subcommand, which runs in the one CLI skeleton."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if argv[:1] == ["--version"]:
        print(f"keras-zoo {version()}")
        return 0
    if not argv or argv[0] not in SUBCOMMANDS:
        problem = f"unknown command {argv[0]!r}" if argv else "a command is required"
        print(f"{usage()}\n\nerror: {problem}; choose one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    command, rest = argv[0], argv[1:]
    if command == "train":
        return train_cli.main(rest, prog="keras-zoo train")
    if command in COMMANDS:
        return COMMANDS[command](rest)
    return run_module_command(command, rest)


if __name__ == "__main__":
    sys.exit(main())

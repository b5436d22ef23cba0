"""Building a model for ``keras-zoo export`` / ``keras-zoo predict`` from a training output or a preset.

A checkpoint written by the train CLI sits in ``OUTPUT/checkpoints/`` beside ``OUTPUT/args.yaml``; when that
file is found the model is rebuilt by the model's :class:`~keras_zoo.cli.tasks.base.Task` with the same
arguments, so ``--weights out/checkpoints/best.h5`` is all a user has to give. Otherwise ``--model`` with an
optional ``--preset`` and ``--set key=value`` overrides picks the architecture from the registry.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from keras_zoo.cli.command import parse_overrides

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--model --preset --set --weights --debug`` to ``parser``."""
    g = parser.add_argument_group("model")
    g.add_argument(
        "--model", help="registered model name (taken from args.yaml beside a training checkpoint)"
    )
    g.add_argument("--preset", help="registry preset (default, tiny, ...)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="factory argument override (YAML value)",
    )
    g.add_argument("--weights", help=".h5 / .weights.h5 / .keras weights (a train.py checkpoint works as is)")
    g.add_argument("--debug", action="store_true", help="show tracebacks of user errors")


def model_command_parser(
    command: str, description: str
) -> tuple[argparse.ArgumentParser, argparse._ArgumentGroup]:
    """``(parser, group)`` of ``keras-zoo COMMAND``: the model arguments, then an argument group named after
    the command for its own options."""
    parser = argparse.ArgumentParser(prog=f"keras-zoo {command}", description=description)
    add_model_arguments(parser)
    return parser, parser.add_argument_group(command)


def check_network_flags(
    args: argparse.Namespace,
    name: str,
    network_flags: dict[str, tuple[str, ...]],
    tta_networks: tuple[str, ...],
) -> None:
    """ConfigError for a flag of ``network_flags`` (network -> the flags only it reads) given for another network,
    for ``--tta`` on a network outside ``tta_networks``, or a bad shared value (``--batch-size``,
    ``--threshold``, ``--scales``)."""
    from keras_zoo.errors import ConfigError

    for network, flags in network_flags.items():
        for flag in flags:
            value = getattr(args, flag)
            if value is not None and value is not False and network != name:
                raise ConfigError(f"--{flag.replace('_', '-')} applies to {network}, not {name}")
    if args.tta and name not in tta_networks:
        raise ConfigError(f"--tta is not available for {name} (only {', '.join(tta_networks)})")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ConfigError(f"--threshold must be in (0, 1), got {args.threshold}")
    if args.scales is not None and min(args.scales) <= 0:
        raise ConfigError(f"--scales must be > 0, got {args.scales}")


def find_training_args(weights: str | None) -> str | None:
    """``args.yaml`` of the training run that wrote ``weights`` (same folder or its parent), or None."""
    if not weights:
        return None
    folder = os.path.dirname(os.path.abspath(weights))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, "args.yaml")
        if os.path.isfile(path):
            return path
    return None


def read_run(args_path: str) -> tuple[argparse.Namespace, dict]:
    """The arguments and the model spec of the training run whose ``args.yaml`` is ``args_path``.

    The spec is ``model.json`` beside it (``{"name", "variant", "config"}``). Runs written before
    ``model.json`` existed get it from their recipe and arguments; options added since a run was saved
    take their defaults.

    Raises:
        ConfigError: an unreadable ``args.yaml`` or ``model.json``.
    """
    import json

    import yaml

    from keras_zoo.cli.tasks import get_task
    from keras_zoo.cli.train import MODEL_FILE, task_parser
    from keras_zoo.errors import ConfigError
    from keras_zoo.run_folder import require_complete_run

    require_complete_run(os.path.dirname(args_path))
    try:
        with open(args_path, encoding="utf-8") as f:
            saved = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{args_path}: cannot read the run's arguments ({exc})") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise ConfigError(f"{args_path}: not the args.yaml of a keras_zoo training run")
    task = get_task(saved["model"])
    parser = task_parser(task)
    defaults = {action.dest: parser.get_default(action.dest) for action in parser._actions}
    train_args = argparse.Namespace(**{**defaults, **saved})
    task.resolve_defaults(train_args)
    spec_path = os.path.join(os.path.dirname(args_path), MODEL_FILE)
    if os.path.isfile(spec_path):
        try:
            with open(spec_path, encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{spec_path}: cannot read the run's model ({exc})") from None
    else:
        recipe = task.model_config(train_args, None)
        spec = {"name": task.name, "variant": recipe["variant"], "config": recipe["config"]}
    return train_args, spec


def trained_simulation(train_args: argparse.Namespace | None) -> dict[str, str]:
    """How a CascadeNet run simulated its inputs: ``{"normalise", "mask_kind"}`` from its ``--normalise`` and
    ``--mask`` (without a run folder, the paper's: images as given, variable-density Cartesian masks)."""
    return {
        "normalise": getattr(train_args, "normalise", None) or "none",
        "mask_kind": getattr(train_args, "mask", None) or "cartesian",
    }


def model_builder(
    args: argparse.Namespace, train_args: argparse.Namespace | None
) -> Callable[[tuple[int, ...]], keras.Model]:
    """``build(input_shape) -> keras.Model``: the architecture :func:`build_model` builds for ``args``, by its
    factory at another ``input_shape`` (spatial sizes and channels), without weights.

    From the training run's model spec when ``train_args`` is given (a checkpoint beside its ``args.yaml``),
    else from ``--model/--preset/--set``; a ``weights`` file in the config is left out (the caller copies or
    loads the weights).
    """
    from keras_zoo.registry import get_model

    if train_args is not None:
        spec = read_run(find_training_args(args.weights))[1]
        name, preset = spec["name"], None
        config = {**({"variant": spec["variant"]} if spec.get("variant") else {}), **spec["config"]}
    else:
        name, preset, config = args.model, args.preset, parse_overrides(args.set)
    config = {k: v for k, v in config.items() if k != "weights"}
    return lambda input_shape: get_model(name, preset=preset, **{**config, "input_shape": tuple(input_shape)})


def rgb_builder(
    args: argparse.Namespace, train_args: argparse.Namespace | None
) -> Callable[[tuple[int, int]], keras.Model]:
    """``build((h, w)) -> keras.Model``: :func:`model_builder` for RGB inputs (DeepLabv3+'s multi-scale
    inference rebuilds the network at each size)."""
    build = model_builder(args, train_args)
    return lambda size: build((*size, 3))


def _training_run(args: argparse.Namespace) -> tuple[str, argparse.Namespace, dict] | None:
    """``(args.yaml path, training arguments, model spec)`` of the run whose checkpoint ``--weights`` is, or
    None (no run found, or ``--preset``/``--set`` asking for a registry architecture).

    Raises:
        ConfigError: ``--model`` contradicting the run's, or an unreadable run.
    """
    from keras_zoo.errors import ConfigError

    args_path = None if (args.preset or args.set) else find_training_args(args.weights)
    if not args_path:
        return None
    train_args, spec = read_run(args_path)
    if args.model and args.model != spec["name"]:
        raise ConfigError(
            f"--model {args.model} contradicts {args_path} (model: {spec['name']}); "
            "drop --model or give --preset/--set to build another architecture"
        )
    return args_path, train_args, spec


def network_name(args: argparse.Namespace) -> tuple[str, argparse.Namespace | None]:
    """``(name, training arguments or None)`` of the network :func:`build_model` builds for ``args``, found
    without building it, so that a command can check its flags first (a full network takes seconds).

    Raises:
        ConfigError: no model named, or ``--model`` contradicting the run's ``args.yaml``.
        DataError: ``--weights`` names no file.
    """
    from keras_zoo.errors import require_file

    if args.weights:
        require_file(args.weights, "weights file")
    run = _training_run(args)
    if run is not None:
        return run[2]["name"], run[1]
    return _registry_name(args), None


def _registry_name(args: argparse.Namespace) -> str:
    """``--model``, required where no training run is found beside ``--weights``."""
    from keras_zoo.errors import ConfigError

    if not args.model:
        raise ConfigError("--model is required (no args.yaml of a training run beside --weights)")
    return args.model


def build_model(args: argparse.Namespace):
    """Returns ``(model, training_args or None)`` as ``args`` say, with ``--weights`` loaded.

    Raises:
        ConfigError: no model named, an unknown model or preset, or ``--model`` contradicting args.yaml.
        WeightsError: weights missing, unreadable or for another architecture.
    """
    from keras_zoo.errors import ConfigError, KerasZooError, require_file
    from keras_zoo.registry import get_model
    from keras_zoo.weights import load_h5_weights, load_weights

    if args.weights:
        require_file(args.weights, "weights file")
    run = _training_run(args)
    train_args = None
    if run is not None:
        train_args_path, train_args, spec = run
        model = get_model(spec["name"], variant=spec.get("variant"), **spec["config"])
        log.info("rebuilt %s from %s", spec["name"], os.path.dirname(train_args_path))
    else:
        overrides = parse_overrides(args.set)
        try:
            model = get_model(_registry_name(args), preset=args.preset, **overrides)
        except KerasZooError:
            raise
        except (TypeError, ValueError) as exc:  # a factory argument that does not fit
            raise ConfigError(f"--model {args.model} with {overrides or 'its preset'}: {exc}") from None
    if args.weights:
        if (
            train_args is not None
            and args.weights.endswith(".h5")
            and not args.weights.endswith(".weights.h5")
        ):
            load_h5_weights(model, args.weights, by_name=False)  # a checkpoint of this very architecture
        else:
            load_weights(model, args.weights)
    else:
        log.warning("no --weights: using freshly initialised weights")
    return model, train_args

"""``python train.py --model NAME`` / ``keras-zoo train``: train a registered network.

Everything common to the five networks lives here: argument parsing (flags over ``-c config.yaml`` over
``--preset`` over the reference defaults of the model's :class:`~keras_zoo.cli.tasks.base.Task`), runtime
set-up, checkpoints and ``--resume``, step timing, logs, ``summary.json`` and plots. The command runs in
:func:`keras_zoo.cli.command.run_command` (user errors: one line, exit 2; Ctrl-C: one line saying how to
resume, exit 130). Keras is imported only after ``--backend`` is applied.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import logging
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any

from keras_zoo.cli.command import BACKENDS, run_command

if TYPE_CHECKING:  # Keras is imported only after --backend is applied
    import keras

    from keras_zoo.callbacks import StepTimer
    from keras_zoo.cli.tasks.base import Data, Task

log = logging.getLogger("keras_zoo.train")

EXIT_DIVERGED = 3
MODEL_FILE = "model.json"  # {"name", "variant", "config"} of the network a run trained, beside args.yaml
PRESET_NETWORK = "preset_network"  # the preset's factory arguments that no flag takes (preset_defaults)


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    """The flags that decide which parser to build and its defaults: ``--model``, ``-c``, ``--preset``,
    ``--backend`` and ``--device`` (the registry's presets load Keras), ``--resume`` and ``--output`` (the run
    to continue) and help."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    pre.add_argument("-c", "--config")
    pre.add_argument("--preset")
    pre.add_argument("--backend")
    pre.add_argument("--device")
    pre.add_argument("--resume", action="store_true")
    pre.add_argument("--output")
    pre.add_argument("-h", "--help", action="store_true")
    known, _ = pre.parse_known_args(argv)
    return known


def _load_config(path: str | None) -> dict:
    if path is None:
        return {}
    import yaml

    from keras_zoo.errors import ConfigError, require_file

    require_file(path, "config file")
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(config).__name__}")
    return {key.replace("-", "_"): value for key, value in config.items()}


def build_parser(task_names: list[str], prog: str = "train.py") -> argparse.ArgumentParser:
    """The common flags of every model (the model's own flags are added by its Task); ``prog`` names the
    command in help and errors (``keras-zoo train`` when run so)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a keras_zoo network on its embedded default data or on --data.",
        epilog="Each model adds its own flags: %(prog)s --model NAME --help. Defaults come from the "
        "reference recipe; --preset, then -c config.yaml, then flags override them.",
    )
    g = parser.add_argument_group("run")
    g.add_argument("--model", choices=task_names, help="network to train: " + ", ".join(task_names))
    g.add_argument("-c", "--config", help="YAML file of option: value defaults (flags override it)")
    g.add_argument(
        "--preset",
        help="registry preset (e.g. tiny): its factory arguments become the defaults of the flags of the "
        "same name (input_shape: --input-size without the channels); arguments no flag takes (U-Net's depth) go "
        "to the network as they are",
    )
    g.add_argument("--data", help="dataset path in the model's real format; omitted: embedded synthetic data")
    g.add_argument(
        "--output",
        help="run folder (default: a new output/train/<date>-<time>-<model>); refused if not empty",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="move the earlier run in --output aside to OUTPUT.old-<date>-<time> (nothing is deleted)",
    )
    g.add_argument("--weights", help="initial weights (.h5 / .weights.h5 / .keras) for transfer learning")
    g.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/last.h5")
    g.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate --weights only (without it: freshly initialised weights)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of weights, data and augmentation (>= 0)")
    g.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    g.add_argument(
        "--verbose",
        type=_verbosity,
        default="auto",
        metavar="{auto,0,1,2}",
        help="Keras fit output: 0 none, 1 progress bar, 2 one line per epoch; auto (default): 1 on a "
        "terminal, 2 when stdout is a file or a pipe",
    )
    h = parser.add_argument_group("training")
    h.add_argument("--epochs", type=int)
    h.add_argument("--steps-per-epoch", type=int)
    h.add_argument("--validation-steps", type=int)
    h.add_argument("--batch-size", type=int)
    h.add_argument("--lr", type=float, help="learning rate")
    h.add_argument("--input-size", type=int, nargs="+", metavar="N", help="spatial input size (H W [D])")
    h.add_argument("--filters", type=int, help="base filter count")
    h.add_argument("--keep-best", type=int, default=3, help="best-epoch checkpoints to keep")
    h.add_argument("--warmup-steps", type=int, default=5, help="steps excluded from timing figures")
    r = parser.add_argument_group("runtime")
    r.add_argument("--backend", choices=BACKENDS, help="Keras backend (sets KERAS_BACKEND)")
    r.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu", "npu"))
    r.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "mixed", "bf16", "fp16"),
        help="auto: bfloat16 mixed precision on GPUs from Ampere on and, on TensorFlow and PyTorch, on CPUs "
        "with AMX or AMD Zen 5, float16 with loss scaling on older GPUs, else fp32; mixed: the device's mixed "
        "precision; bf16/fp16: that one",
    )
    r.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="XLA jit_compile")
    r.add_argument(
        "--no-compile-cache",
        dest="compile_cache",
        action="store_false",
        help="do not keep compiled steps in the persistent cache (JAX; $KERAS_ZOO_CACHE_DIR or ~/.cache/keras_zoo)",
    )
    r.add_argument("--steps-per-execution", type=int, default=1)
    r.add_argument(
        "--workers",
        type=int,
        help="input-pipeline workers preparing batches ahead of training (0: in the training loop's thread; "
        "default: every core but one)",
    )
    r.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic ops (bitwise repeatable on CPU; cuDNN's deterministic algorithms under torch on a GPU)",
    )
    r.add_argument(
        "--distribute",
        default="none",
        choices=("none", "mirrored", "multiworker", "data-parallel"),
        help="data parallelism: mirrored/multiworker (tensorflow) or data-parallel (jax); --batch-size is global",
    )
    return parser


def task_parser(task, prog: str = "train.py") -> argparse.ArgumentParser:
    """The full parser of ``task``: common options, the task's own, and the task's defaults."""
    from keras_zoo.cli.tasks import task_names

    parser = build_parser(task_names(), prog)
    task.add_arguments(parser)
    parser.set_defaults(**task.defaults)
    return parser


def parse_args(argv: list[str], prog: str = "train.py") -> tuple[argparse.Namespace, Task]:
    """Parses ``argv`` into (args, task): flags over config-file values over ``--preset`` over the task's
    defaults. ``prog`` names the command in help and errors.

    Imports neither Keras nor a backend unless ``--preset`` is given: the registry's presets live in the
    model modules, so then the backend is applied first (and TensorFlow's general CPU kernel default, as
    the network's own choice needs the preset's values).

    Raises:
        ConfigError: no or an unknown model, a config file that does not parse or holds an unknown option
            or a value of the wrong type, an unknown preset, or a value out of range.
    """
    from keras_zoo.cli.tasks import get_task, task_names
    from keras_zoo.errors import ConfigError

    known = _pre_parse(argv)
    config = _load_config(known.config)
    resumed = _resumed_run_arguments(known)
    model = known.model or config.get("model") or resumed.get("model")
    if resumed and model != resumed.get("model"):
        raise ConfigError(f"--resume: {known.output} holds a {resumed.get('model')} run, not {model}")
    if model is None:
        if known.help:
            build_parser(task_names(), prog).parse_args(["--help"])  # prints the help, exits 0
        raise ConfigError(
            "--model is required (or 'model:' in the config file); choose one of " + ", ".join(task_names())
        )
    task = get_task(model)
    parser = task_parser(task, prog)
    parser.set_defaults(**{PRESET_NETWORK: None})
    config = check_config_values(config, parser, known.config)
    preset = known.preset or config.get("preset")
    if preset:
        backend = known.backend or config.get("backend")
        _apply_backend(backend, known.device or config.get("device"))
        parser.set_defaults(**preset_defaults(task, preset, parser))
    dests = {action.dest for action in parser._actions} | {PRESET_NETWORK}
    parser.set_defaults(**{key: value for key, value in resumed.items() if key in dests})
    parser.set_defaults(**config)
    args = parser.parse_args(argv)
    args.model = model
    _check_args(args)
    task.resolve_defaults(args)
    return args, task


# What a resumed run does not take from the run it continues: how this command runs, not what it trains.
NOT_RESUMED = tuple("resume overwrite output config eval_only weights backend device verbose".split())


def _resumed_run_arguments(known: argparse.Namespace) -> dict[str, Any]:
    """With ``--resume --output RUN``: the arguments RUN's ``args.yaml`` recorded (model, data, network,
    recipe), which a config file and flags given now override; ``{}`` otherwise, or when RUN holds no run
    (``prepare_run_folder`` says so).

    Raises:
        ConfigError: RUN's ``args.yaml`` does not parse as a mapping (:func:`_load_config`).
    """
    path = os.path.join(known.output or "", "args.yaml")
    if not (known.resume and known.output and os.path.isfile(path)):
        return {}
    recorded = _load_config(path)  # read as a config file is
    log.info("--resume: the arguments of %s, under this command's", path)
    return {key: value for key, value in recorded.items() if key not in NOT_RESUMED}


def check_config_values(config: dict, parser: argparse.ArgumentParser, path: str) -> dict:
    """``config`` with each value checked against its option, as the command line would read it.

    - on/off flags (``--batch-norm``) take YAML booleans only (``true``/``false``; ``'no'`` is a string);
    - options of several values (``--input-size``) take a list, or one value as a one-element list (like
      ``--input-size 32`` on the command line);
    - typed options convert strings as the command line does (``lr: 1e-4`` is a string in YAML), take
      numbers of their type (no booleans for numbers, no fractions for integers), and check choices;
    - ``null`` keeps the option's default meaning "not given".

    Raises:
        ConfigError: naming ``path`` and the option, for an unknown option or a value that does not fit.
    """
    from keras_zoo.errors import ConfigError

    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(config) - set(actions))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)}")
    checked = {}
    for key, value in config.items():
        try:
            checked[key] = _config_value(actions[key], value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
    return checked


def _config_value(action: argparse.Action, value: Any) -> Any:
    """``value`` of a config file as ``action``'s option; ValueError/TypeError saying what it expects."""
    if value is None:
        return None
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if isinstance(action.nargs, int) and len(values) != action.nargs:
            raise ValueError(f"expected {action.nargs} values, got {value!r}")
        if action.nargs == "+" and not values:
            raise ValueError("expected at least one value, got an empty list")
        return [_scalar_value(action, v) for v in values]
    return _scalar_value(action, value)


def _scalar_value(action: argparse.Action, value: Any) -> Any:
    kind = action.type
    if isinstance(value, (list, tuple, dict)):
        raise ValueError(f"expected one value, got {value!r}")
    if isinstance(value, str) and kind is not None:
        converted = kind(value)  # as the command line converts it; ValueError when it does not fit
    elif kind in (int, float):
        exact = isinstance(value, int) or (kind is float and isinstance(value, float))
        if isinstance(value, bool) or not exact:
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}, got {value!r}")
        converted = kind(value)
    elif kind is None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    else:
        converted = kind(value) if kind is not None else value
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted


def preset_defaults(task: Task, preset: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The defaults that registry preset ``preset`` of ``task``'s network sets: of flags, and of
    ``preset_network``.

    Each factory argument of the preset becomes the default of the flag of the same name, or of the one
    ``task.preset_flags`` names; ``input_shape`` becomes ``--input-size`` without its channel axis. Arguments no
    flag takes (e.g. U-Net's ``depth``) go to the factory as they are, through ``preset_network``
    (:func:`build_model`), so the run trains the preset's network, the one ``predict --preset`` and
    ``summary --preset`` build.

    Raises:
        ConfigError: ``preset`` is not one of the model's presets.
    """
    from keras_zoo.errors import ConfigError
    from keras_zoo.registry import get_entry
    from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

    apply_tf_cpu_defaults()  # the registry loads Keras (and TensorFlow) before the network is known
    presets = get_entry(task.name).presets
    if preset not in presets:
        raise ConfigError(f"--preset {preset}: {task.name} has the presets {', '.join(sorted(presets))}")
    dests = {action.dest for action in parser._actions}
    defaults, network = {}, {}
    for key, value in presets[preset].items():
        if key in task.preset_flags:
            defaults.update(task.preset_flags[key](value))
        elif key == "input_shape":
            defaults["input_size"] = [int(size) for size in value[:-1]]
        elif key in dests:
            defaults[key] = list(value) if isinstance(value, tuple) else value
        else:
            network[key] = value
    return {**defaults, PRESET_NETWORK: network}


def _verbosity(value: str) -> str | int:
    """``--verbose``: "auto" or 0, 1, 2."""
    if value == "auto":
        return value
    if str(value) in ("0", "1", "2"):
        return int(value)
    raise argparse.ArgumentTypeError(f"expected auto, 0, 1 or 2, got {value!r}")


def fit_verbosity(verbose: str | int, stream=None) -> int:
    """Keras ``fit``'s ``verbose`` for ``--verbose``: "auto" is 1 (progress bar) when ``stream`` (stdout)
    is a terminal, else 2 (one line per epoch, no escape codes in a log file)."""
    if verbose != "auto":
        return int(verbose)
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def _check_args(args: argparse.Namespace) -> None:
    from keras_zoo.errors import ConfigError

    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must be in [0, 2**32), got {args.seed}")

    for name in (
        "epochs",
        "batch_size",
        "steps_per_epoch",
        "validation_steps",
        "filters",
        "steps_per_execution",
    ):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and args.lr <= 0:
        raise ConfigError(f"--lr must be > 0, got {args.lr}")
    if args.resume and args.weights:
        raise ConfigError(
            "--resume and --weights conflict: a resumed run takes its weights from the checkpoint"
        )
    if args.eval_only and args.resume:
        raise ConfigError("--eval-only and --resume conflict")
    if args.overwrite and args.resume:
        raise ConfigError("--overwrite and --resume conflict: --resume continues the run in --output")
    if args.jit == "on" and args.precision == "mixed" and getattr(args, "distribute", None) == "mirrored":
        raise ConfigError(
            "--jit on with --precision mixed under --distribute mirrored is known to fail on TensorFlow"
        )


def _apply_backend(backend: str | None, device: str | None) -> None:
    """Sets ``KERAS_BACKEND`` to ``backend`` (None, or a value argparse will refuse: leaves it); then, before
    Keras loads, what makes that backend use ``device`` (:mod:`keras_zoo.runtime.placement`).

    Raises:
        ConfigError: the backend's package is not installed, or Keras is already loaded with another one.
    """
    from keras_zoo.errors import ConfigError

    if backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            raise ConfigError(
                f'--backend {backend}: {backend} is not installed (pip install -e ".[{backend}]")'
            )
        if "keras" in sys.modules:
            import keras

            if keras.config.backend() != backend:
                raise ConfigError(
                    f"--backend {backend}: Keras is already loaded with the {keras.config.backend()} backend; "
                    f"set KERAS_BACKEND={backend} before starting Python"
                )
        os.environ["KERAS_BACKEND"] = backend
    from keras_zoo.runtime.placement import pin_device_before_keras

    pin_device_before_keras(os.environ.get("KERAS_BACKEND"), device or "auto")


def main(argv: list[str] | None = None, prog: str = "train.py") -> int:
    """Entry point (``prog``: the command's name in help and errors); returns the process exit status (0 ok,
    2 user error, 3 training diverged, 130 interrupted)."""
    parse = functools.partial(parse_args, prog=prog)
    return run_command(parse, _train, argv, interrupted=_resume_hint)


def _train(parsed: tuple[argparse.Namespace, Task]) -> int:
    """Applies the runtime that ``--backend`` and the network decide, then trains in the run folder."""
    from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

    args, task = parsed
    _apply_backend(args.backend, args.device)
    apply_tf_cpu_defaults(task.traits(args))  # before TensorFlow loads: it reads the kernel choice once
    return run_in_folder(args, task)


def _resume_hint(parsed: tuple[argparse.Namespace, Task] | None) -> str:
    """What an interrupted run can do next: resume from its last checkpoint, or start again."""
    output = getattr(parsed[0], "output", None) if parsed else None
    if not output:
        return ""
    last = os.path.join(output, "checkpoints", "last.h5")
    if os.path.exists(last):
        return f"--resume --output {output} continues from the last checkpoint ({last})"
    if os.path.isdir(output):
        return f"no checkpoint was written to {output} yet; --overwrite --output {output} starts again"
    return ""


def _jit_value(args: argparse.Namespace, runtime_config, traits) -> bool | str:
    from keras_zoo.errors import ConfigError

    if args.jit == "on" and runtime_config.xla_fails(traits):
        raise ConfigError(
            f"--jit on: TensorFlow's XLA fails to compile {args.model} in {runtime_config.precision} "
            "precision; use --jit off or --precision fp32"
        )
    if args.jit != "auto":
        return args.jit == "on"
    return runtime_config.jit_for(
        traits,
        single_device=getattr(args, "distribute", "none") == "none",
        deterministic=args.deterministic,
    )


def training_callbacks(
    args: argparse.Namespace, task: Task, data: Data, state=None, chief: bool = True
) -> tuple[list[keras.callbacks.Callback], StepTimer]:
    """The callbacks of a training run, built as :func:`run` builds them.

    None of them turns off Keras 3's asynchronous dispatch of batch-end hooks (see
    ``keras_zoo.callbacks.stride``): the per-batch ones (NaN guard, step timer) act on a stride and are
    ``async_safe``, the rest have epoch hooks only.

    Args:
        args: parsed arguments (``batch_size``, ``warmup_steps``, ``output``, ``keep_best``, ``resume`` and
            what ``task.callbacks`` reads).
        task: the model's :class:`~keras_zoo.cli.tasks.base.Task`.
        data: the run's :class:`~keras_zoo.cli.tasks.base.Data`.
        state: checkpoint state of a resumed run, or None.
        chief: whether this worker writes checkpoints and logs.

    Returns:
        ``(callbacks, timer)``: the list for ``model.fit`` and its :class:`~keras_zoo.callbacks.StepTimer`.
    """
    import keras

    from keras_zoo.callbacks import EpochTensorBoard, HDF5Checkpoint, LossScaleMonitor, NaNGuard, StepTimer
    from keras_zoo.cli import report

    output = args.output
    monitor, mode = task.monitor(args) if data.val is not None else ("loss", "min")
    final_metric = task.final_metric(args) if data.val is not None else "loss"
    timer = StepTimer(args.batch_size, args.warmup_steps, final_metric=final_metric)
    callbacks = [NaNGuard(), timer, LossScaleMonitor()]
    if chief:  # only one worker writes checkpoints and logs
        callbacks += [
            HDF5Checkpoint(
                os.path.join(output, "checkpoints"), monitor, mode, args.keep_best, initial_state=state
            ),
            *task.callbacks(args, data, output),
            keras.callbacks.CSVLogger(os.path.join(output, "history.csv"), append=args.resume),
        ]
        if report.tensorboard_available():
            callbacks.append(EpochTensorBoard(os.path.join(output, "tensorboard")))
    return callbacks, timer


def build_model(task: Task, args: argparse.Namespace, data: Data | None) -> tuple[keras.Model, dict]:
    """Builds the run's network through the registry, with ``--weights`` loaded.

    Returns:
        ``(model, spec)``: the model and ``{"name", "variant", "config"}``, what ``model.json`` records.

    Raises:
        ConfigError: a configuration the factory rejects (its ``ValueError`` as one line).
        WeightsError: ``--weights`` unreadable or for another architecture.
    """
    from keras_zoo.errors import ConfigError, KerasZooError
    from keras_zoo.registry import get_model
    from keras_zoo.weights import load_pretrained

    recipe = task.model_config(args, data)
    config = {**recipe["config"], **(getattr(args, PRESET_NETWORK, None) or {})}
    spec = {"name": task.name, "variant": recipe["variant"], "config": config}
    try:
        model = get_model(task.name, variant=spec["variant"], **spec["config"])
    except ValueError as exc:
        if isinstance(exc, KerasZooError):
            raise
        raise ConfigError(f"{task.name}: {exc}") from None
    if getattr(args, "weights", None):
        logged: set[str] = set()  # the report is logged once, whether or not the network's loader did
        listener = logging.Handler(logging.INFO)
        listener.emit = lambda record: logged.add(record.getMessage())
        logging.getLogger("keras_zoo").addHandler(listener)
        try:
            report = load_pretrained(task.name, model, args.weights, **task.weights_options(args))
        finally:
            logging.getLogger("keras_zoo").removeHandler(listener)
        if report is None:
            log.info("%s: loaded into %s (the format gives no per-layer report)", args.weights, model.name)
        elif report.summary() not in logged:
            log.info(report.summary())
    return model, json.loads(json.dumps(spec))  # tuples as lists, as model.json reads back


def run_in_folder(args: argparse.Namespace, task: Task) -> int:
    """:func:`run` in a run folder of its own: a new one, or ``--output`` locked against a second process and
    checked (empty, the run to ``--resume``, or set aside with ``--overwrite``)."""
    from keras_zoo.errors import ConfigError
    from keras_zoo.run_folder import RunLock, default_output, prepare_run_folder
    from keras_zoo.runtime.distribute import is_chief

    if args.resume and not args.output:
        raise ConfigError("--resume needs --output, the folder of the run to continue")
    args.output = args.output or default_output(args.model)
    if not is_chief():  # the chief owns the folder; other workers write nothing there
        return run(args, task)
    with RunLock(args.output):
        prepare_run_folder(args.output, resume=args.resume, overwrite=args.overwrite)
        return run(args, task)


def run(args: argparse.Namespace, task: Task) -> int:
    """Trains (or evaluates) ``task``'s model as ``args`` say; writes everything under ``args.output``."""
    started = time.time()
    prepared = _prepare(args, task)
    callbacks, timer = training_callbacks(args, task, prepared.data, prepared.state, prepared.chief)
    if not args.eval_only and _fit(args, prepared, callbacks) == "diverged":
        print(
            "error: training stopped: the loss became NaN/Inf; last good checkpoint kept in "
            f"{os.path.join(args.output, 'checkpoints')}",
            file=sys.stderr,
        )
        return EXIT_DIVERGED
    metrics = task.evaluate(prepared.model, prepared.data, args)
    if prepared.chief:
        _report(args, task, prepared, metrics, timer, time.time() - started)
    return 0


@dataclasses.dataclass
class _Prepared:
    """What :func:`_prepare` set up for a run: runtime, data, compiled model and resume state."""

    runtime_config: Any
    data: Data
    model: Any
    replicas: int
    initial_epoch: int
    state: Any
    chief: bool


def _prepare(args: argparse.Namespace, task: Task) -> _Prepared:
    """Output folder, runtime, data and the compiled model (restored from the checkpoint on ``--resume``)."""
    import yaml

    from keras_zoo import runtime
    from keras_zoo.callbacks import restore_checkpoint
    from keras_zoo.errors import ConfigError
    from keras_zoo.io import write_text
    from keras_zoo.runtime.distribute import check_split_batches, distribution_scope, is_chief

    output = args.output
    ckpt_dir = os.path.join(output, "checkpoints")
    last = os.path.join(ckpt_dir, "last.h5")
    if args.resume and not os.path.exists(last):
        raise ConfigError(f"--resume: no checkpoint at {last}")

    rt = runtime.configure(args.device, args.precision, args.seed, deterministic=args.deterministic)
    if rt.backend == "torch" and args.steps_per_execution > 1:  # Keras refuses it only once fit starts
        raise ConfigError(
            f"--steps-per-execution {args.steps_per_execution}: Keras' torch backend runs one step at a time"
        )
    if getattr(args, "compile_cache", True):
        runtime.enable_compilation_cache(rt.backend)
    scope, replicas = distribution_scope(args.distribute)
    chief = is_chief()
    data = task.load_data(args)
    if args.batch_size % replicas:
        raise ConfigError(f"--batch-size {args.batch_size} does not split evenly over {replicas} replicas")
    if args.distribute == "data-parallel":
        check_split_batches(data.val, replicas)
    log.info("data: %s; %d replica(s)", data.description, replicas)
    if args.eval_only:
        if data.val is None:
            raise ConfigError(
                f"--eval-only: nothing to evaluate, the data has no validation samples ({data.description})"
            )
        if not args.weights:
            log.warning("no --weights: using freshly initialised weights")
    jit = _jit_value(args, rt, task.traits(args))
    initial_epoch, state = 0, None
    with scope:
        model, spec = build_model(task, args, data)
        model.compile(
            optimizer=task.optimizer(args, len(data.train)),
            loss=task.loss(args, data),
            metrics=task.metrics(args),
            jit_compile=jit,
            steps_per_execution=args.steps_per_execution,
        )
        if args.resume:
            state = restore_checkpoint(model, last)
            initial_epoch = state.epoch
            log.info("resuming at epoch %d from %s", initial_epoch + 1, last)
            if hasattr(data.train, "set_epoch"):
                data.train.set_epoch(initial_epoch)
    # The run folder gets its first files only now, once the device, the data and the model are known to be
    # right: a run refused before this point leaves the folder as it found it (RunLock removes one it made), so
    # the corrected command can use the same --output.
    os.makedirs(ckpt_dir, exist_ok=True)
    if chief:
        write_text(os.path.join(output, "args.yaml"), yaml.safe_dump(vars(args), sort_keys=True))
        write_text(os.path.join(output, MODEL_FILE), json.dumps(spec, indent=2))
    return _Prepared(rt, data, model, replicas, initial_epoch, state, chief)


def _fit(args: argparse.Namespace, prepared: _Prepared, callbacks: list) -> str:
    """Runs ``model.fit``; returns ``"done"``, ``"diverged"`` (a NaN/Inf loss) or ``"nothing to do"``."""
    from keras_zoo.datasets.base import build_compiled_state

    if prepared.initial_epoch >= args.epochs:
        log.info(
            "checkpoint already at epoch %d of %d: nothing to train", prepared.initial_epoch, args.epochs
        )
        return "nothing to do"
    build_compiled_state(prepared.model, prepared.data.train)  # else JAX/torch drop a batch: see there
    history = prepared.model.fit(
        prepared.data.train,
        validation_data=prepared.data.val,
        epochs=args.epochs,
        initial_epoch=prepared.initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # batches are already random and seeded by (seed, epoch, index): resumable
        verbose=fit_verbosity(args.verbose),
    )
    losses = history.history.get("loss", [])
    return "diverged" if losses and not all(map(_finite, losses)) else "done"


def _report(args, task: Task, prepared: _Prepared, metrics: dict, timer, wall_time_s: float) -> None:
    """Writes summary.json, the loss curves and the preview panels; logs the final metrics."""
    from keras_zoo import runtime
    from keras_zoo.cli import report
    from keras_zoo.io import write_text
    from keras_zoo.layers import implementations

    output = args.output
    summary = {
        "model": args.model,
        "parameters": int(prepared.model.count_params()),
        "data": prepared.data.description,
        "epochs": 0 if args.eval_only else args.epochs,  # epochs trained: --eval-only trains none
        "initial_epoch": prepared.initial_epoch,
        "batch_size": args.batch_size,
        "replicas": prepared.replicas,
        "metrics": metrics,
        "timing": timer.summary,
        "wall_time_s": wall_time_s,
        "runtime": {
            **runtime.describe(),
            "device": prepared.runtime_config.device,
            "jit_compile": str(prepared.model.jit_compile),  # as Keras resolved "auto" (JAX: True)
            "layers": implementations(),
        },
        "keras_zoo": _version(),
    }
    write_text(os.path.join(output, "summary.json"), json.dumps(summary, indent=2, default=float))
    report.plot_history(os.path.join(output, "history.csv"), os.path.join(output, "curves.png"))
    task.save_previews(prepared.model, prepared.data, os.path.join(output, "previews.png"), args)
    log.info("final metrics: %s", json.dumps(metrics, default=float))
    log.info("outputs written to %s", output)
    pictures = [os.path.join(output, n) for n in ("previews.png", "curves.png")]
    if shown := [p for p in pictures if os.path.exists(p)]:
        log.info("pictures: %s", ", ".join(shown))
    if args.config:
        log.info("the reference recipe (no config): %s", _reference_command(args))


def _reference_command(args) -> str:
    """The command line of the reference's own recipe on the data of this run."""
    data = f" --data {shlex.quote(args.data)}" if args.data else ""
    return f"python train.py --model {args.model}{data}"


def _finite(value) -> bool:
    import math

    return math.isfinite(float(value))


def _version() -> str:
    from keras_zoo import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())

"""``keras-zoo benchmark``: training and inference throughput of a network on synthetic batches.

Prints one JSON line per configuration: model, backend, device, precision, jit, batch, input shape,
parameters, the first step's time (tracing and compilation: ``first_step_s``), median and p90 step time of
``train_on_batch`` (each step returns its loss to Python, so the host waits for the device every step),
the step time of a pipelined ``fit`` on the same batch kept on the device (``fit_step_time_ms``: what a
training run gets, Keras dispatching the next step while the device runs this one; on TensorFlow the batch
is fed by ``tf.data``, from host memory, as a Keras ``PyDataset`` would add a Python generator op to every
step), samples/s
(over the timed steps' total time, so their mean, where ``step_time_ms`` is the median), model FLOPs
and bytes per step (``keras_zoo.flops``) with the FLOP/s they make, model-FLOPs utilisation and a roofline
step time when the device's peaks are given, peak host and device memory, versions. ``--sweep`` runs every
installed backend x precision x jit setting, each in a fresh process (the Keras backend is fixed at import).
``--set KEY=VALUE`` (a YAML value, repeatable) overrides the preset's factory arguments, as in ``export``,
``summary`` and ``predict``; ``--config JSON`` is its deprecated older form.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import subprocess
import sys
import time

from keras_zoo.cli.command import parse_overrides, run_command
from keras_zoo.cli.tasks import get_task, reference_args, reference_batch
from keras_zoo.runtime.placement import pin_device_before_keras
from keras_zoo.runtime.tf_env import ONEDNN_VARIABLE, apply_tf_cpu_defaults
from keras_zoo.runtime.traits import ModelTraits

# Reference batch sizes (reference_specs.md) used when --batch-size is not given.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-zoo benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--preset", default="default", help="registry preset (default: the reference config)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="factory argument over the preset (YAML value; repeatable), e.g. --set filters=16",
    )
    parser.add_argument(
        "--config",
        help="deprecated: JSON object of factory arguments; use --set KEY=VALUE (both: --set wins)",
    )
    parser.add_argument("--batch-size", type=int)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "mixed", "bf16", "fp16"),
        help="auto: what train.py would use here (runtime.auto_precision)",
    )
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--mode", default="train", choices=("train", "infer", "both"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed steps before the timed ones, at least the first (timed on its own: first_step_s)",
    )
    parser.add_argument(
        "--fit-epochs",
        type=int,
        default=3,
        help="pipelined fit: epochs of --steps steps each, the median epoch gives fit_step_time_ms (0: skip)",
    )
    parser.add_argument(
        "--compile-cache",
        action="store_true",
        help="use the persistent compilation cache as train.py does (off: first_step_s is a cold compile)",
    )
    parser.add_argument(
        "--flops",
        action="store_true",
        help="also XLA's cost analysis of the compiled step (JAX; counts depthwise convs as dense ones)",
    )
    parser.add_argument(
        "--peak-gflops",
        type=float,
        help="the device's peak GFLOP/s at the run's precision; adds model-FLOPs utilisation (mfu)",
    )
    parser.add_argument(
        "--peak-gbps",
        type=float,
        help="the device's memory bandwidth in GB/s; with --peak-gflops adds the roofline step time",
    )
    parser.add_argument("--sweep", action="store_true", help="all installed backends x precisions x jit")
    return parser


def synthetic_batch(model, batch: int, seed: int = 0):
    """Random inputs and targets matching the model's input and output shapes."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def make(shape):
        return rng.random((batch, *shape[1:]), dtype=np.float32)

    xs = [make(t.shape) for t in model.inputs]
    ys = [make(t.shape) for t in model.outputs]
    return (xs[0] if len(xs) == 1 else xs), (ys[0] if len(ys) == 1 else ys)


def _device_peak_bytes(backend: str) -> int | None:
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use")
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    except Exception:  # noqa: BLE001 - memory stats are best effort, never fail a benchmark
        return None
    return None


def time_steps(step, n_warmup: int, n_steps: int) -> list[float]:
    """Seconds of each of ``n_steps`` calls of ``step`` after ``n_warmup`` untimed ones."""
    for _ in range(n_warmup):
        step()
    times = []
    for _ in range(n_steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _first_and_warm_steps(step, n_warmup: int, n_steps: int) -> tuple[float, list[float]]:
    """Seconds of the first call of ``step`` (tracing, compilation, first run), then the timed steps."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    return first, time_steps(step, max(0, n_warmup - 1), n_steps)


def _fit_step_times(model, x, y, steps: int, epochs: int) -> list[float]:
    """Per-step seconds of each epoch of a pipelined ``fit`` on the batch (x, y) held on the device.

    One untimed epoch of one step first builds ``fit``'s path; then ``epochs`` epochs of ``steps`` steps.
    The clock (:class:`keras_zoo.callbacks.EpochClock`) has no batch hooks, so Keras keeps dispatching
    steps asynchronously, and it counts each epoch's device work.
    """
    import keras

    from keras_zoo.callbacks import EpochClock

    x, y = keras.tree.map_structure(keras.ops.convert_to_tensor, (x, y))

    class SameBatch(keras.utils.PyDataset):
        def __init__(self, n):
            super().__init__()
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, index):
            return x, y

    def batches(n: int):
        if keras.backend.backend() == "tensorflow":  # Keras would wrap a PyDataset in a Python generator op
            import tensorflow as tf

            return tf.data.Dataset.from_tensors((x, y)).repeat(n)
        return SameBatch(n)

    model.fit(batches(1), epochs=1, verbose=0)
    clock = EpochClock()
    model.fit(batches(steps), epochs=epochs, verbose=0, callbacks=[clock])
    return [seconds / steps for seconds in clock.seconds]


def step_figures(times: list[float], batch: int) -> dict:
    """Median and 90th-percentile step time (ms) and samples per second of steps of ``batch`` samples
    that took ``times`` seconds each."""
    import numpy as np

    t = np.asarray(times)
    return {
        "step_time_ms": round(1000 * float(np.median(t)), 3),
        "step_time_p90_ms": round(1000 * float(np.percentile(t, 90)), 3),
        "samples_per_sec": round(batch * len(t) / float(t.sum()), 3),
    }


def _cost_figures(model, batch: int, mode: str, step_time_ms: float, args: argparse.Namespace) -> dict:
    """Model FLOPs and bytes of one step (training: see keras_zoo.flops), the GFLOP/s they make at
    ``step_time_ms``, and with the device's peaks its model-FLOPs utilisation and roofline step time."""
    from keras_zoo import flops as cost  # imports Keras: after the TF env is set

    train = mode == "train"
    flops = cost.training_step_flops(model, batch) if train else cost.forward_flops(model, batch)
    moved = cost.training_step_bytes(model, batch) if train else cost.forward_bytes(model, batch)
    figures = {
        "model_flops_per_step": flops,
        "model_bytes_per_step": moved,
        "model_gflops_per_sec": round(flops / step_time_ms / 1e6, 2),
    }
    if args.peak_gflops:
        figures["mfu"] = round(figures["model_gflops_per_sec"] / args.peak_gflops, 4)
    if args.peak_gbps:
        figures["memory_roofline_ms"] = round(moved / args.peak_gbps / 1e6, 3)
    if args.peak_gflops and args.peak_gbps:
        compute_ms = flops / args.peak_gflops / 1e6
        figures["roofline_ms"] = round(max(compute_ms, figures["memory_roofline_ms"]), 3)
        figures["roofline_fraction"] = round(figures["roofline_ms"] / step_time_ms, 4)
    return figures


def _jax_step_flops(model, x, y) -> float | None:
    """FLOPs of one compiled training step from XLA's cost analysis (JAX backend only)."""
    try:
        import jax

        from keras_zoo.runtime import trainer_state

        lowered = jax.jit(model.train_step).lower(trainer_state(model), (x, y))
        cost = lowered.compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops")) if cost else None
    except Exception:  # noqa: BLE001 - cost analysis is optional
        return None


def run_one(args: argparse.Namespace, factory_config: dict, traits: ModelTraits | None) -> list[dict]:
    """Benchmarks one configuration in this process; returns the JSON records.

    Args:
        args: the parsed command line.
        factory_config: ``--set``/``--config`` parsed (factory keyword arguments over the preset).
        traits: the network's runtime traits for the per-network jit choice, or None (see ``_traits``).
    """
    import keras

    from keras_zoo import runtime
    from keras_zoo.layers import implementations
    from keras_zoo.registry import get_model

    config = runtime.configure(args.device, args.precision, seed=0)
    if args.compile_cache:
        runtime.enable_compilation_cache(config.backend)
    jit = {"on": True, "off": False}.get(args.jit, config.jit_compile)
    if args.jit == "auto" and traits is not None:
        jit = config.jit_for(traits)
    model = get_model(args.model, preset=args.preset, **factory_config)
    batch = reference_batch(args.model) if args.batch_size is None else args.batch_size
    x, y = synthetic_batch(model, batch)
    base = {
        "model": args.model,
        "preset": args.preset,
        "backend": config.backend,
        "device": config.device,
        "precision": config.precision,
        "policy": config.policy,
        "jit": str(jit),
        "batch": batch,
        "input_shape": [list(t.shape[1:]) for t in model.inputs],
        "parameters": int(model.count_params()),
        "overrides": factory_config,
    }
    records = []
    modes = ["train", "infer"] if args.mode == "both" else [args.mode]
    for mode in modes:
        fit = {}
        if mode == "train":
            model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit)
            first, times = _first_and_warm_steps(lambda: model.train_on_batch(x, y), args.warmup, args.steps)
            if args.fit_epochs:
                fit_times = _fit_step_times(model, x, y, args.steps, args.fit_epochs)
                fit_ms = 1000 * sorted(fit_times)[len(fit_times) // 2]
                fit = {
                    "fit_step_time_ms": round(fit_ms, 3),
                    "fit_samples_per_sec": round(1000 * batch / fit_ms, 3),
                }
        else:
            if not model.compiled:
                model.compile(loss="mse", jit_compile=jit)
            first, times = _first_and_warm_steps(lambda: model.predict_on_batch(x), args.warmup, args.steps)
        record = {
            **base,
            "mode": mode,
            "steps": args.steps,
            "warmup": args.warmup,
            "first_step_s": round(first, 3),
            **step_figures(times, batch),
            **fit,
        }
        # utilisation and roofline judge the pipelined step when there is one: it is what training gets
        judged_ms = fit.get("fit_step_time_ms", record["step_time_ms"])
        record.update(_cost_figures(model, batch, mode, judged_ms, args))
        if mode == "train" and args.flops and config.backend == "jax":
            record["xla_flops_per_step"] = _jax_step_flops(model, x, y)
        records.append(record)
    peak_host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    info = runtime.describe()
    versions = {k: info[k] for k in ("keras", "tensorflow", "jax", "torch", "numpy") if k in info}
    forms = implementations()
    for record in records:
        record.update(
            peak_host_bytes=peak_host,
            peak_device_bytes=_device_peak_bytes(config.backend),
            layers=forms,
            versions=versions,
            host=host_record(info),
            date=time.strftime("%Y-%m-%d"),
        )
    return records


def host_record(info: dict) -> dict:
    """The machine facts that the runtime's choices read, so a JSON line says what it was measured on.

    Args:
        info: :func:`keras_zoo.runtime.describe`'s dict.

    Returns:
        ``cpu_count``, ``cpu_vendor_family`` (e.g. ``["AuthenticAMD", 26]``), ``cpu_flags``, and under the
        TensorFlow backend ``tf_enable_onednn_opts`` (the variable's value, None when unset).
    """
    host = {key: info[key] for key in ("cpu_count", "cpu_vendor_family", "cpu_flags")}
    if info["backend"] == "tensorflow":
        host["tf_enable_onednn_opts"] = os.environ.get(ONEDNN_VARIABLE)
    return host


def _preset_arguments(model: str, preset: str, config: dict) -> dict:
    """The factory arguments of registry preset ``preset`` of ``model`` with the overrides ``config`` over
    them. A preset other than the reference one is read from the registry, which loads Keras (and
    TensorFlow), so TensorFlow's CPU kernels are chosen first, as ``train.py --preset`` chooses them."""
    if preset == "default":
        return dict(config)  # the registry's reference preset is empty
    apply_tf_cpu_defaults()
    from keras_zoo.registry import get_entry

    return {**get_entry(model).presets.get(preset, {}), **config}


def _traits(model: str, arguments: dict) -> ModelTraits | None:
    """The runtime traits ``train.py`` derives for ``model`` built with the factory ``arguments``: the
    recipe's, with their ``filters`` and ``dynamic``; None when ``filters`` is not a number (the factory
    refuses it)."""
    filters = arguments.get("filters")
    if filters is not None and not isinstance(filters, int):
        return None
    args = reference_args(model)
    if filters is not None:
        args.filters = filters
    if hasattr(args, "dynamic"):
        args.dynamic = bool(arguments.get("dynamic", False))
    return get_task(model).traits(args)


def _installed_backends() -> list[str]:
    return [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]


def sweep(args: argparse.Namespace, argv: list[str]) -> int:
    """Runs every backend x precision x jit combination in a subprocess, passing the JSON lines through."""
    base = [a for a in argv if a != "--sweep"]
    status = 0
    for backend, precision, jit in itertools.product(_installed_backends(), ("fp32", "bf16"), ("off", "on")):
        if backend == "jax" and jit == "off":
            continue  # JAX always compiles its steps
        cmd = [sys.executable, "-m", "keras_zoo.cli.benchmark", *base, "--precision", precision, "--jit", jit]
        env = {**os.environ, "KERAS_BACKEND": backend}
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode or not lines:
            status = 1
            tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(
                json.dumps(
                    {
                        "model": args.model,
                        "backend": backend,
                        "precision": precision,
                        "jit": jit,
                        "error": tail,
                    }
                )
            )
        for line in lines:
            print(line, flush=True)
    return status


def check_args(args: argparse.Namespace) -> None:
    """ConfigError naming the first option out of range."""
    from keras_zoo.errors import ConfigError

    if args.steps < 1 or args.warmup < 0:
        raise ConfigError("--steps must be >= 1 and --warmup >= 0")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    for flag, value in (("--peak-gflops", args.peak_gflops), ("--peak-gbps", args.peak_gbps)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} must be > 0")
    if args.fit_epochs < 0:
        raise ConfigError("--fit-epochs must be >= 0")


def factory_overrides(args: argparse.Namespace) -> dict:
    """The factory arguments over the preset: ``--config`` JSON (deprecated), then ``--set`` items over it.

    Raises:
        ConfigError: ``--config`` not a JSON object, or a ``--set`` item not ``KEY=VALUE``.
    """
    from keras_zoo.errors import ConfigError

    config = {}
    if args.config is not None:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config is not valid JSON ({exc}); use --set KEY=VALUE") from None
        if not isinstance(config, dict):
            raise ConfigError(
                "--config must be a JSON object of factory keyword arguments; use --set KEY=VALUE"
            )
    return {**config, **parse_overrides(args.set)}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo benchmark``; returns 0, 1 (a sweep configuration failed) or 2 (user error)."""
    parser = build_parser()
    return run_command(lambda argv: (parser.parse_args(argv), argv), _benchmark, argv)


def _benchmark(parsed: tuple[argparse.Namespace, list[str]]) -> int:
    args, argv = parsed
    check_args(args)
    config = factory_overrides(args)
    if args.sweep:
        return sweep(args, argv)
    pin_device_before_keras(os.environ.get("KERAS_BACKEND"), args.device)  # before Keras loads
    traits = _traits(args.model, _preset_arguments(args.model, args.preset, config))
    apply_tf_cpu_defaults(traits)  # before TensorFlow loads, for the reference preset
    for record in run_one(args, config, traits):
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

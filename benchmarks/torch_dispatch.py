"""Host work per training step: Keras on the torch backend against the PyTorch port of the same network.

On a GPU or an Ascend NPU (reached through torch_npu, Keras' torch backend) the kernels of a small or thin
network finish faster than the host can queue them, and the step time becomes the host's: the Python code
around each operator and the dispatch of each ATen operator. This measures both halves on any machine:

- ``aten_ops_per_step``: the ATen operators one training step dispatches (forward, backward, optimizer),
  counted with ``harness.OperatorCounter`` for Keras' ``train_on_batch`` and for the port's step alike, and
  ``aten_views_per_step`` of them views. The counts do not depend on the machine; on a GPU or NPU a view
  launches no kernel and most other operators launch one (the summary's ``non_view`` figures).
- ``step_ms``: the median step time at a *proxy* configuration of each network: its reference depth (every
  layer is there), but a few channels and a small image, so the arithmetic is negligible and the time is
  host time. The proxy is what a device-side step approaches when its kernels take no time.

Both sides run Adam(1e-4, eps=1e-7) on the mean squared error against a random target, in float32, with
``--threads`` CPU threads: the step of ``benchmarks/torch_ports/harness.py``. The Keras side runs in this
process (``KERAS_BACKEND=torch`` is set here), the port in a subprocess; rounds alternate between them.
One JSON line per measurement (``side``: keras-torch or torch-port), then one summary line per network
(``ops_ratio``, ``non_view_ratio`` and ``step_ratio``: Keras over the port)::

    python benchmarks/torch_dispatch.py [--model amoebanet ...] [--rounds 2] [--steps 10] [--warmup 2]

``--reference`` counts instead the operators of one Keras step at each network's *reference* configuration
(full width and input; no timing, no port), where every layer takes the path it takes at full size (the
proxies' few channels keep some batch norms on Keras' ops on a CPU, ``keras_zoo.layers.batch_norm``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence

if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
    print(
        f"torch_dispatch.py measures Keras' torch backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']}",
        file=sys.stderr,
    )
    sys.exit(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "torch_ports"))
import harness  # noqa: E402
from gpu_check import port_script  # noqa: E402 - the port of each network; imports neither Keras nor torch

import keras_zoo  # noqa: E402
from keras_zoo.cli.benchmark import step_figures, time_steps  # noqa: E402
from keras_zoo.layers import implementations  # noqa: E402

# Each network at its reference depth with a few channels and a small input: the Keras configuration and
# the same network on the port's command line (the parameter counts are compared at run time).
PROXIES: dict[str, tuple[dict, tuple[str, ...]]] = {
    "unet": (
        {"input_shape": (64, 64, 1), "filters": 4},
        ("--input-shape", "64", "64", "1", "--filters", "4"),
    ),
    "genesis": (
        {"input_shape": (32, 32, 16, 1), "filters": 2},
        ("--input-shape", "32", "32", "16", "1", "--filters", "2"),
    ),
    "cascadenet": (
        {"input_shape": (32, 32, 2), "filters": 4},
        ("--size", "32", "32", "--filters", "4"),
    ),
    "deeplabv3plus": (
        {"input_shape": (65, 65, 3), "width": 1 / 16},
        ("--input-size", "65", "65", "--width", "0.0625"),
    ),
    "amoebanet": (
        {"input_shape": (64, 64, 3), "filters": 8, "stem_filters": 8, "classes": 10},
        ("--input-shape", "64", "64", "3", "--filters", "8", "--stem-filters", "8", "--classes", "10"),
    ),
}
COUNTS = ("aten_ops_per_step", "aten_views_per_step")


def keras_step(model_name: str, batch: int, config: dict):
    """Builds ``model_name`` with ``config`` (factory arguments); returns ``(step, parameter_count)``,
    ``step()`` being one ``train_on_batch`` on torch tensors already in memory (no per-step input
    conversion)."""
    keras.utils.set_random_seed(0)
    model = keras_zoo.get_model(model_name, **config)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-7), loss="mse")
    rng = np.random.default_rng(0)
    inputs = [torch.from_numpy(rng.random((batch, *t.shape[1:]), dtype=np.float32)) for t in model.inputs]
    target = torch.from_numpy(rng.random((batch, *model.outputs[0].shape[1:]), dtype=np.float32))
    x = inputs if len(inputs) > 1 else inputs[0]
    return (lambda: model.train_on_batch(x, target)), model.count_params()


def operator_counts(step) -> dict:
    """The ATen operators (and views among them) that one call of ``step`` dispatches."""
    with harness.OperatorCounter() as counter:
        step()
    return {"aten_ops_per_step": counter.count, "aten_views_per_step": counter.views}


def measure_keras(step, batch: int, steps: int, warmup: int) -> dict:
    """Median and 90th-percentile step time of ``step`` after ``warmup`` calls, then one counted step."""
    figures = step_figures(time_steps(step, warmup, steps), batch)
    return {
        "step_time_ms": figures["step_time_ms"],
        "step_time_p90_ms": figures["step_time_p90_ms"],
        **operator_counts(step),
    }


def measure_port(model_name: str, batch: int, steps: int, warmup: int, threads: int) -> dict:
    """The port's harness record for the proxy (``--count-ops``), from a subprocess."""
    script = pathlib.Path(port_script(model_name))
    argv = [sys.executable, str(script), "--batch-size", str(batch), "--steps", str(steps)]
    argv += ["--warmup", str(warmup), "--threads", str(threads), "--count-ops", *PROXIES[model_name][1]]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{script.name} failed (exit {result.returncode}): {tail}")
    return json.loads(lines[-1])


def compare(model_name: str, args: argparse.Namespace) -> list[dict]:
    """The records of ``args.rounds`` alternating rounds for one network, then its summary."""
    step, keras_params = keras_step(model_name, args.batch_size, PROXIES[model_name][0])
    base = {"model": model_name, "batch": args.batch_size, "config": PROXIES[model_name][0]}
    records, keras_ms, port_ms = [], [], []
    for round_index in range(args.rounds):
        keras_record = {**base, "side": "keras-torch", "round": round_index, "parameters": keras_params}
        keras_record.update(measure_keras(step, args.batch_size, args.steps, args.warmup))
        port = measure_port(model_name, args.batch_size, args.steps, args.warmup, args.threads)
        port_record = {**base, "side": "torch-port", "round": round_index, "parameters": port["parameters"]}
        port_record.update({k: port[k] for k in ("step_time_ms", "step_time_p90_ms", *COUNTS)})
        if port["parameters"] != keras_params:
            raise RuntimeError(
                f"{model_name}: the port has {port['parameters']} parameters, Keras {keras_params}"
            )
        records += [keras_record, port_record]
        keras_ms.append(keras_record["step_time_ms"])
        port_ms.append(port_record["step_time_ms"])
    keras_last, port_last = records[-2], records[-1]
    keras_kernels = keras_last["aten_ops_per_step"] - keras_last["aten_views_per_step"]
    port_kernels = port_last["aten_ops_per_step"] - port_last["aten_views_per_step"]
    summary = {
        **base,
        "side": "summary",
        "parameters": keras_params,
        "keras_aten_ops": keras_last["aten_ops_per_step"],
        "port_aten_ops": port_last["aten_ops_per_step"],
        "ops_ratio": round(keras_last["aten_ops_per_step"] / port_last["aten_ops_per_step"], 2),
        "keras_non_view_ops": keras_kernels,
        "port_non_view_ops": port_kernels,
        "non_view_ratio": round(keras_kernels / port_kernels, 2),
        "keras_step_ms": keras_ms,
        "port_step_ms": port_ms,
        "step_ratio": round(float(np.median(keras_ms)) / float(np.median(port_ms)), 2),
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "keras": keras.__version__},
        "date": time.strftime("%Y-%m-%d"),
    }
    return [*records, summary]


def reference_counts(model_name: str, batch: int) -> dict:
    """The ATen operators of one Keras training step of ``model_name`` at its reference configuration (the
    second step: the first also creates the optimizer's state)."""
    step, parameters = keras_step(model_name, batch, {})
    step()
    return {
        "model": model_name,
        "batch": batch,
        "config": "reference",
        "side": "keras-torch",
        "parameters": parameters,
        **operator_counts(step),
        "layers": implementations(),
        "versions": {"torch": torch.__version__, "keras": keras.__version__},
        "date": time.strftime("%Y-%m-%d"),
    }


def _count(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def proxy_parser(description: str, rounds: int) -> argparse.ArgumentParser:
    """The options of the benchmarks that time the proxies: ``--model`` (repeatable; default: all),
    ``--batch-size``, ``--rounds``, ``--steps`` (timed per round; these three >= 1) and ``--threads``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", action="append", choices=sorted(PROXIES), help="repeatable; default: all")
    parser.add_argument("--batch-size", type=_count, default=2, help="2: torch's batch norm needs 2 at 1x1")
    parser.add_argument("--rounds", type=_count, default=rounds)
    parser.add_argument("--steps", type=_count, default=10, help="timed calls per round")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = proxy_parser(__doc__.split("\n\n")[0], rounds=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--reference", action="store_true", help="count one Keras step at the reference configurations"
    )
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    torch.set_num_threads(args.threads)
    for model_name in args.model or list(PROXIES):
        records = (
            [reference_counts(model_name, args.batch_size)] if args.reference else compare(model_name, args)
        )
        for record in records:
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

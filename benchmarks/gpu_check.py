"""The GPU check: every network's training step under Keras/JAX, Keras/torch and the PyTorch ports, one run.

Runs a fixed list of items, most important first, each in its own process under its own time limit, and
stops starting items once the overall budget is spent (the rest are recorded as skipped). Every item
appends JSON lines to one file: the records of ``keras-zoo benchmark`` or of ``benchmarks/torch_ports``,
tagged with the item's name, or one record saying why the item has none (``error``, ``timeout``,
``skipped``). A GPU run's first line names the GPU (``nvidia-smi``) and the ceilings its MFU and
roofline figures use (``GPU_PEAKS``; none for a GPU not listed there). At the end a markdown table
compares each network's Keras/JAX step with the PyTorch port in eager bf16. ``benchmarks/gpu_check.sh``
is the command to run on a lent GPU; ``--smoke`` runs the same items on the CPU with tiny presets, one
step each, and is what the test suite runs. Examples::

    python benchmarks/gpu_check.py --out gpu_check.jsonl                 # on the GPU machine
    python benchmarks/gpu_check.py --smoke --out /tmp/smoke.jsonl       # anywhere, a couple of minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from keras_zoo.cli.tasks import reference_batch, task_names  # noqa: E402 - imports neither Keras nor a backend
from keras_zoo.runtime.traits import nvidia_smi_query  # noqa: E402 - nor does this

MODELS = tuple(task_names())
KINDS = ("keras-jax", "torch-eager", "keras-torch", "torch-compile")
TORCH_PORT = {"deeplabv3plus": "deeplab"}  # benchmarks/torch_ports/<file>.py where it differs from the model
# Ceilings per GPU, by nvidia-smi's exact name of the SXM parts (another name, e.g. "NVIDIA H100 PCIe" or
# "NVIDIA H200 NVL", gets no MFU or roofline): (GFLOP/s, GB/s). The first is the datasheet's dense bf16
# tensor-core rate, 989.4 TFLOP/s on both, so MFU has its usual meaning; the second the copy bandwidth
# measured on the device tool's machines (its KINDS.md: 4.3 TB/s on the H200, 3.0 on the H100, counting bytes
# read and written; datasheets 4.8 and 3.35), so the memory roofline is one a step can reach.
GPU_PEAKS = {"NVIDIA H200": (989_400.0, 4_300.0), "NVIDIA H100 80GB HBM3": (989_400.0, 3_000.0)}
# Small configurations of the PyTorch ports for --smoke (the Keras items use the registry's "tiny" presets).
SMOKE_PORT_ARGS = {
    "unet": ("--preset", "tiny"),
    "genesis": ("--preset", "tiny"),
    "cascadenet": ("--size", "32", "32", "--n-cascades", "2", "--n-convs", "3", "--filters", "8"),
    "deeplabv3plus": ("--input-size", "65", "65", "--width", "0.125", "--middle-units", "1"),
    # the registry's tiny AmoebaNet-D (the port needs at least 3 cells)
    "amoebanet": ("--input-shape", "32", "32", "3", "--classes", "10", "--num-cells", "3", "--filters", "16")
    + ("--stem-filters", "8"),
}
# Seconds an item may run on the GPU: what compiling the step once took in the first GPU run, plus margin.
GPU_LIMIT_S = {"unet": 90, "genesis": 90, "cascadenet": 90, "deeplabv3plus": 180, "amoebanet": 150}
# Issue 16's targets: the first (trace + compile + autotune + run) training step of a network, and the
# Keras/JAX step's speed-up over the PyTorch port in eager bf16.
FIRST_STEP_TARGET_S = 60.0
SPEEDUP_TARGET = 1.3
# Diagnoses of a network's keras-jax item: the same item with other settings, run only when it misses one
# of the targets named ("first_step", "speedup").
DIAGNOSES = {
    "deeplabv3plus": {
        # without XLA:GPU's autotuning: whether autotuning (the first attempt's logs ended in it) takes the time
        "autotune0": ({"XLA_FLAGS": "--xla_gpu_autotune_level=0"}, ("first_step",)),
        # depthwise convolutions by phases instead of taps (keras_zoo.layers.atrous_depthwise): which is faster
        "phases": ({"KERAS_ZOO_DEPTHWISE": "phases"}, ("first_step", "speedup")),
    },
    # Keras' max pooling (select_and_scatter gradients) instead of taps (keras_zoo.layers.max_pooling)
    "amoebanet": {"nativepool": ({"KERAS_ZOO_MAX_POOLING": "native"}, ("speedup",))},
}


@dataclasses.dataclass(frozen=True)
class Item:
    """One measurement: a command, its environment, and how long it may take.

    Attributes:
        name: ``<kind>:<model>[:b<batch>]``; kinds are keras-jax, keras-torch, torch-eager, torch-compile.
        model: registry name.
        argv: the command (without the Python executable).
        backend: ``KERAS_BACKEND`` for Keras items, None for the PyTorch ports.
        limit_s: the item's time limit.
        needs: the module the item needs (``jax`` or ``torch``); missing, it is skipped.
        env: extra environment variables (``XLA_FLAGS`` is appended to the caller's).
        diagnoses: an earlier item's name; this one runs only if that one missed one of ``targets``
            (gave no result, or a first step over ``FIRST_STEP_TARGET_S``, or a speed-up over the eager
            port under ``SPEEDUP_TARGET``).
        targets: what ``diagnoses`` is judged by: ``"first_step"``, ``"speedup"``.
    """

    name: str
    model: str
    argv: tuple[str, ...]
    backend: str | None
    limit_s: float
    needs: str
    env: tuple[tuple[str, str], ...] = ()
    diagnoses: str | None = None
    targets: tuple[str, ...] = ()


def port_script(model: str) -> str:
    """Path of ``model``'s PyTorch port, ``benchmarks/torch_ports/<file>.py``."""
    return os.path.join(REPO, "benchmarks", "torch_ports", f"{TORCH_PORT.get(model, model)}.py")


def gpu_name() -> str | None:
    """The first GPU's name as ``nvidia-smi`` gives it ("NVIDIA H200"), or None where it names none."""
    return nvidia_smi_query("name")


def peaks_for(name: str | None) -> tuple[float, float] | None:
    """``(GFLOP/s, GB/s)`` of ``GPU_PEAKS`` for the GPU called ``name``, or None for another or no GPU."""
    return GPU_PEAKS.get((name or "").strip())


def plan(smoke: bool, peaks: tuple[float, float] | None = None) -> list[Item]:
    """The items in the order they run: Keras/JAX, then the PyTorch ports in eager bf16 (the comparison),
    then the diagnoses of DeepLabv3+ and AmoebaNet-D (only where it missed a target), then Keras on the
    torch backend, then the ports under ``torch.compile``. ``peaks`` (GFLOP/s, GB/s) go to the Keras/JAX
    items' ``--peak-gflops`` and ``--peak-gbps`` (not in ``smoke`` runs)."""
    steps = ["--steps", "1", "--warmup", "0"] if smoke else ["--steps", "10", "--warmup", "2"]
    peak_args = (
        [] if smoke or peaks is None else ["--peak-gflops", str(peaks[0]), "--peak-gbps", str(peaks[1])]
    )
    device = "cpu" if smoke else "cuda"

    def keras_item(kind: str, backend: str, model: str, batch: int) -> Item:
        argv = ["-m", "keras_zoo.cli.benchmark", "--model", model, "--batch-size", str(batch), *steps]
        argv += peak_args + (["--preset", "tiny", "--fit-epochs", "1"] if smoke else ["--device", "gpu"])
        suffix = "" if batch == reference_batch(model) or smoke else f":b{batch}"
        return Item(f"{kind}:{model}{suffix}", model, tuple(argv), backend, _limit(model, smoke), backend)

    def port_item(kind: str, model: str) -> Item:
        script = port_script(model)
        batch = 2 if smoke else reference_batch(model)  # batch norm over a 1x1 map needs 2 samples in torch
        argv = [script, "--batch-size", str(batch), *steps, "--device", device, "--precision", "bf16"]
        argv += ["--channels-last"]
        if smoke:
            argv += SMOKE_PORT_ARGS[model]
        if kind == "torch-compile":
            argv += ["--compile", *(["--compile-backend", "eager"] if smoke else [])]
        return Item(f"{kind}:{model}", model, tuple(argv), None, _limit(model, smoke), "torch")

    items = [keras_item("keras-jax", "jax", m, 1 if smoke else reference_batch(m)) for m in MODELS]
    if not smoke:
        items.append(keras_item("keras-jax", "jax", "unet", 16))
    items += [port_item("torch-eager", m) for m in MODELS]
    for model, diagnoses in DIAGNOSES.items():
        diagnosed = next(i for i in items if i.name == f"keras-jax:{model}")
        items += [
            dataclasses.replace(
                diagnosed,
                name=f"{diagnosed.name}:{why}",
                env=tuple(env.items()),
                diagnoses=diagnosed.name,
                targets=targets,
            )
            for why, (env, targets) in diagnoses.items()
        ]
    items += [keras_item("keras-torch", "torch", m, 1 if smoke else reference_batch(m)) for m in MODELS]
    items += [port_item("torch-compile", m) for m in MODELS]
    return items


def _limit(model: str, smoke: bool) -> float:
    return 120.0 if smoke else float(GPU_LIMIT_S[model])


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_item(item: Item, seconds_left: float) -> list[dict]:
    """Runs ``item`` with the smaller of its limit and ``seconds_left``; returns its records, tagged."""
    tag = {"item": item.name, "model": item.model}
    if not _available(item.needs):
        return [{**tag, "skipped": f"{item.needs} is not installed"}]
    limit = min(item.limit_s, seconds_left)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for key, value in item.env:
        env[key] = f"{env[key]} {value}" if key == "XLA_FLAGS" and env.get(key) else value
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    if item.backend:
        env["KERAS_BACKEND"] = item.backend
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, *item.argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        record = {**tag, "timeout": f"no result within {limit:.0f} s", "wall_s": round(limit, 1)}
        if limit < item.limit_s:  # stopped by the overall budget before its own limit
            record["budget_cut"] = True
        return [record]
    wall = round(time.perf_counter() - start, 1)
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            try:
                records.append({**tag, **json.loads(line), "wall_s": wall})
            except json.JSONDecodeError:
                continue
    if result.returncode or not records:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        return [{**tag, "error": lines[-1][:500], "returncode": result.returncode, "wall_s": wall}]
    return records


def reason_to_skip(item: Item, records: list[dict]) -> str | None:
    """Why a diagnosis need not run: the item it diagnoses never ran, or met each of its targets (a
    speed-up with no port result to compare with counts as met: there is nothing to explain). One whose
    item gave no result (a timeout, an error) runs."""
    if item.diagnoses is None:
        return None
    found = {r["item"]: r for r in records if r.get("mode", "train") == "train"}
    diagnosed = found.get(item.diagnoses)
    if diagnosed is None:
        return f"{item.diagnoses} did not run"
    if not _cell(diagnosed)[0].isdigit():
        return None
    met = []
    if "first_step" in item.targets:
        first = diagnosed.get("first_step_s")
        if first is None or first > FIRST_STEP_TARGET_S:
            return None
        met.append(f"first step {first:.1f} s <= {FIRST_STEP_TARGET_S:.0f} s")
    if "speedup" in item.targets:
        speedup = _speedup(diagnosed, found.get(f"torch-eager:{diagnosed['model']}"))
        if speedup is not None and speedup < SPEEDUP_TARGET:
            return None
        met.append("no port result" if speedup is None else f"{speedup:.2f}x the port")
    return f"{item.diagnoses}: " + ", ".join(met)


def _step_ms(record: dict) -> float | None:
    """The step time a training run gets: pipelined steps (Keras' ``fit``, the port's block of steps
    with no synchronisation between them) where measured, else the median synchronised step."""
    return (
        record.get("fit_step_time_ms") or record.get("pipelined_step_time_ms") or record.get("step_time_ms")
    )


def _speedup(jax: dict, port: dict | None) -> float | None:
    """The eager port's step time over Keras/JAX's, where both gave one."""
    if port is None or not _cell(jax)[0].isdigit() or not _cell(port)[0].isdigit():
        return None
    return _step_ms(port) / _step_ms(jax)


def _cell(record: dict | None) -> str:
    if record is None:
        return "-"
    if record.get("budget_cut"):
        return "budget"
    for why in ("skipped", "timeout", "error"):
        if why in record:
            return why
    return f"{_step_ms(record):,.1f}"


def table(records: list[dict]) -> str:
    """Markdown: per network, each kind's training step time (ms), Keras/JAX's speed-up over the eager
    bf16 port, the JAX first step (s), its model-FLOPs utilisation and the roofline share of its step."""
    by_item = {r["item"]: r for r in records if r.get("mode", "train") == "train"}
    rows = [
        "| network, batch | keras-jax (ms) | torch-eager bf16 (ms) | jax speed-up | keras-torch (ms) "
        "| torch-compile (ms) | jax first step (s) | jax MFU | roofline / jax step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, jax in by_item.items():
        if not name.startswith("keras-jax:"):
            continue
        model = jax["model"]
        suffix = name.split(":")[2:]  # [], ["b16"] (another batch) or a diagnosis, e.g. ["autotune0"]
        diagnosis = suffix[0] if suffix and suffix[0][0] != "b" else None
        label = f"{model}, {jax.get('batch', '?')}" + (f" ({diagnosis})" if diagnosis else "")
        at_reference = not suffix  # U-Net at 16 has no port to compare; a diagnosis only the eager port
        others = {k: by_item.get(f"{k}:{model}") if at_reference else None for k in KINDS[1:]}
        port = by_item.get(f"torch-eager:{model}") if at_reference or diagnosis else None
        found = _speedup(jax, port)
        speedup = "-" if found is None else f"{found:.2f}x"
        first = f"{jax['first_step_s']:.1f}" if "first_step_s" in jax else "-"
        mfu = f"{100 * jax['mfu']:.1f} %" if "mfu" in jax else "-"
        roof = f"{100 * jax['roofline_fraction']:.0f} %" if "roofline_fraction" in jax else "-"
        rows.append(
            f"| {label} | {_cell(jax)} | {_cell(port)} | {speedup} "
            f"| {_cell(others['keras-torch'])} | {_cell(others['torch-compile'])} | {first} | {mfu} | {roof} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny presets, one step per item")
    parser.add_argument("--out", default="gpu_check.jsonl", help="JSON lines file (appended to)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all items together")
    parser.add_argument("--only", nargs="+", choices=KINDS, metavar="KIND", help=f"run only these: {KINDS}")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS, help="networks to run")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error("--budget must be > 0")
    deadline = time.perf_counter() + args.budget
    records: list[dict] = []
    name = None if args.smoke else gpu_name()
    peaks = peaks_for(name)
    with open(args.out, "a", encoding="utf-8") as out:
        if not args.smoke:
            ceilings = (
                "no MFU or roofline figures"
                if peaks is None
                else f"ceilings {peaks[0]:,.0f} GFLOP/s, {peaks[1]:,.0f} GB/s"
            )
            print(f"gpu_check: GPU {name or '(none found)'}: {ceilings}", flush=True)
            device = {
                "item": "device",
                "gpu": name,
                "peak_gflops": peaks and peaks[0],
                "peak_gbps": peaks and peaks[1],
                "date": time.strftime("%Y-%m-%d"),
            }
            out.write(json.dumps(device) + "\n")
        for item in plan(args.smoke, peaks):
            if (args.only and item.name.split(":")[0] not in args.only) or item.model not in args.models:
                continue
            left = deadline - time.perf_counter()
            why = "budget spent" if left <= 5 else reason_to_skip(item, records)
            found = (
                [{"item": item.name, "model": item.model, "skipped": why}] if why else run_item(item, left)
            )
            for record in found:
                record.setdefault("date", time.strftime("%Y-%m-%d"))
                out.write(json.dumps(record) + "\n")
                out.flush()
            records += found
            print(f"{item.name}: {_cell(found[0]) if len(found) == 1 else 'ok'}", flush=True)
    print(table(records), flush=True)
    ceilings = (
        [] if peaks is None else [f"MFU of {peaks[0]:,.0f} GFLOP/s; roofline with {peaks[1]:,.0f} GB/s."]
    )
    print(" ".join(["Step times: pipelined (Keras' fit; the port's steps with no synchronisation between them).",
                    *ceilings]), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

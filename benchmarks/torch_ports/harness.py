"""Times PyTorch training steps the way ``keras-zoo benchmark`` times Keras ones.

The ports in this folder are measuring equipment: PyTorch versions of the five networks, layer for layer,
used to compare keras_zoo's training throughput with the reference implementations' framework on the
same machine. A step is Adam(1e-4, eps=1e-7) on the mean squared error against a random target of the
output's shape, inputs uniform in [0, 1): the same step ``keras-zoo benchmark`` times.

Devices and execution modes (options shared by every port's command line, see ``add_timing_arguments``):

- ``--device cuda`` puts the model, the inputs and the target on the current CUDA device, turns on
  ``torch.backends.cudnn.benchmark`` and synchronises the device before every clock reading, so a step
  time is the time the GPU took, not the time the host took to queue the kernels. Asked for on a machine
  whose torch sees no CUDA device, the command prints one error line and exits with status 2.
- ``--precision bf16`` runs forward and loss under ``torch.autocast(device, torch.bfloat16)`` on either
  device; parameters, optimizer state and gradients stay float32.
- ``--channels-last`` converts model and inputs to ``torch.channels_last`` (2D networks, 4-D inputs) or
  ``torch.channels_last_3d`` (3D networks, 5-D inputs).
- ``--compile`` wraps the model in ``torch.compile`` (``--compile-mode`` and ``--compile-backend``
  optional). The loss, backward and optimizer stay eager. Compilation happens during the first step, so
  the record carries that step's wall time as ``first_step_s`` and the timed steps only start after the
  warm-up; give ``--warmup 2`` or more on a GPU, as the second step can still autotune.
- ``--count-ops`` runs one more step under :class:`OperatorCounter` and records how many ATen operators it
  dispatched (``aten_ops_per_step``, of them views ``aten_views_per_step``): host work per step, which a
  fast device cannot hide.

The record: one JSON line with the network, the options, parameter count, median and 90th percentile
step times (each step synchronised, as ``train_on_batch``), samples per second, ``pipelined_step_time_ms``
(``--steps`` more steps with one synchronisation before and one after, as ``fit`` runs them and
``keras-zoo benchmark``'s ``fit_step_time_ms`` times them), ``first_step_s``, the device (and GPU name,
CUDA version and peak device memory on CUDA) and the torch version.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")  # the last two: debugging, and fast tests


def add_timing_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the options every port's command line shares (see the module docstring)."""
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed steps first (the first one is reported as first_step_s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="where model and data live; cuda: the current CUDA device, synchronised timing",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16"),
        help="bf16: torch.autocast(device, bfloat16) around forward and loss",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="channels_last (2D) / channels_last_3d (3D) memory format for model and inputs",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        default=None,
        help="torch.compile mode (inductor only; default: torch's default mode)",
    )
    parser.add_argument(
        "--compile-backend",
        choices=COMPILE_BACKENDS,
        default="inductor",
        help="torch.compile backend (eager / aot_eager: no code generation, for checks)",
    )
    parser.add_argument(
        "--count-ops",
        action="store_true",
        help="one more step, counting the ATen operators it dispatches (aten_ops_per_step)",
    )
    return parser


class OperatorCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched while it is active, backward pass included.

    Each one is a trip through PyTorch's dispatcher, so the count per training step is host work that a
    framework adds whatever its kernels cost. ``views`` counts those of them that only make a view
    (``permute``, ``unsqueeze``, ``detach``, ...): they launch no kernel on a GPU or NPU, most of the others
    launch one. Use as ``with OperatorCounter() as counter: step()``, then read ``counter.count``.
    """

    def __init__(self):
        super().__init__()
        self.count = 0
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        self.views += func.is_view
        return func(*args, **(kwargs or {}))


def option_error(args: argparse.Namespace) -> str | None:
    """The reason ``args`` cannot run here (one line), or None when they can."""
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        return "--batch-size, --steps and --threads must be >= 1 and --warmup >= 0"
    if args.device == "cuda" and not torch.cuda.is_available():
        return (
            f"--device cuda: torch {torch.__version__} sees no CUDA device "
            f"(built with CUDA {torch.version.cuda}); use --device cpu"
        )
    if not args.compile and (args.compile_mode is not None or args.compile_backend != "inductor"):
        return "--compile-mode and --compile-backend need --compile"
    if args.compile_mode is not None and args.compile_backend != "inductor":
        return f"--compile-mode applies to the inductor backend only, not {args.compile_backend!r}"
    return None


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, then checks that the options can run on this machine.

    Exits with status 2 after printing one line to stderr when they cannot (``--device cuda`` without a
    CUDA device, ``--compile-mode`` without ``--compile``, ...), before any model is built.
    """
    args = parser.parse_args(argv)
    error = option_error(args)
    if error is not None:
        print(f"{parser.prog}: error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    return args


def count_parameters(module: torch.nn.Module, include_buffers: bool = True) -> int:
    """Parameters plus (by default) batch-norm running statistics, as Keras ``count_params()`` counts."""
    total = sum(p.numel() for p in module.parameters())
    if include_buffers:
        statistics = ("running_mean", "running_var")
        total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(statistics))
    return total


def memory_format(input_shapes: Sequence[Sequence[int]]) -> torch.memory_format:
    """channels_last for (C, H, W) inputs, channels_last_3d for (C, D, H, W) ones (shapes without batch)."""
    return torch.channels_last if len(input_shapes[0]) == 3 else torch.channels_last_3d


def torch_compile(args: argparse.Namespace) -> Callable[[torch.nn.Module], Callable]:
    """``module -> torch.compile(module)`` with ``args.compile_backend`` (and ``compile_mode`` if given)."""
    options = {"backend": args.compile_backend}
    if args.compile_mode is not None:
        options["mode"] = args.compile_mode
    return lambda module: torch.compile(module, **options)


def time_training(
    model: torch.nn.Module,
    input_shapes: Sequence[Sequence[int]],
    args: argparse.Namespace,
    name: str,
    forward: Callable | None = None,
    compile_model: Callable[[torch.nn.Module, Callable], Callable] | None = None,
) -> dict:
    """Times ``args.steps`` training steps after ``args.warmup`` untimed ones; returns a JSON-ready record.

    The first step (the first warm-up step, or the first timed one with ``--warmup 0``) is also timed on
    its own as ``first_step_s``: with ``--compile`` it includes the compilation. On CUDA the device is
    synchronised before each clock reading, and the peak memory counts the warm-up and timed steps.

    Args:
        model: the port, in training mode, on the CPU.
        input_shapes: per input, its shape without the batch axis, channels first (C, H, W[, D]).
        args: parsed ``add_timing_arguments`` options (``parse_args`` checks them first).
        name: the network's name in the record.
        forward: ``forward(model, inputs) -> output``; default ``model(*inputs)``.
        compile_model: with ``--compile``, ``compile_model(model, compile) -> runner`` where ``compile``
            is ``torch.compile`` with the options given and ``runner`` replaces ``model`` in ``forward``;
            default ``compile(model)``. CascadeNet compiles its CNNs only (``CascadeNet.compile_cnns``).

    Returns:
        The record (``print_record``). When a step or the setup raises (out of device memory, a compiler
        error), the traceback goes to stderr and the record comes back with ``error`` (the exception, one
        line), ``failed_at`` ("setup", "first step", "warm-up", "timed steps" or "operator count") and null
        timings, so a scripted run still gets one JSON line per command.

    Raises:
        ValueError: when ``args`` cannot run here (see ``option_error``).
    """
    error = option_error(args)
    if error is not None:
        raise ValueError(error)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    record = {
        "model": name,
        "framework": f"torch {torch.__version__}",
        "precision": args.precision,
        "channels_last": bool(args.channels_last),
        "threads": args.threads,
        "batch": args.batch_size,
        "input_shape": [list(s) for s in input_shapes],
        "parameters": count_parameters(model),
        "step_time_ms": None,
        "step_time_p90_ms": None,
        "samples_per_sec": None,
        "date": time.strftime("%Y-%m-%d"),
        "device": device.type,
        "compile": bool(args.compile),
        "compile_mode": args.compile_mode if args.compile else None,
        "compile_backend": args.compile_backend if args.compile else None,
        "first_step_s": None,
        "warmup": args.warmup,
        "steps": args.steps,
        "peak_memory_mib": None,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if cuda else None,
        "gpu": None,
        "fp32_precision": None,
        "aten_ops_per_step": None,
        "aten_views_per_step": None,
    }
    phase = "setup"
    try:
        if cuda:
            record["gpu"] = torch.cuda.get_device_name(device)
            record["fp32_precision"] = fp32_precision()
        torch.set_num_threads(args.threads)
        if cuda:
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        fmt = memory_format(input_shapes) if args.channels_last else None
        model = model.to(device=device, memory_format=fmt) if fmt is not None else model.to(device)
        inputs = []
        for shape in input_shapes:
            x = torch.from_numpy(rng.random((args.batch_size, *shape), dtype=np.float32)).to(device)
            inputs.append(x.contiguous(memory_format=fmt) if fmt is not None and x.dim() in (4, 5) else x)
        forward = forward or (lambda m, xs: m(*xs))
        model.train()
        with torch.no_grad():  # the eager model: the output's shape, without compiling a no-grad graph
            out = forward(model, inputs)
        target = torch.from_numpy(rng.random(tuple(out.shape), dtype=np.float32)).to(device)
        del out
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-7)
        runner = model
        if args.compile:
            compile = torch_compile(args)
            runner = compile(model) if compile_model is None else compile_model(model, compile)

        def step() -> None:
            if args.compile and args.compile_mode in ("reduce-overhead", "max-autotune"):
                torch.compiler.cudagraph_mark_step_begin()  # the CUDA-graph modes: a new step's outputs
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                prediction = forward(runner, inputs)
                loss = torch.mean((prediction.float() - target) ** 2)  # float32 whatever the precision
            loss.backward()
            optimizer.step()

        def clock() -> float:
            if cuda:
                torch.cuda.synchronize(device)
            return time.perf_counter()

        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for index in range(args.warmup + args.steps):
            phase = "first step" if index == 0 else "warm-up" if index < args.warmup else "timed steps"
            start = clock()
            step()
            elapsed = clock() - start
            if index == 0:
                record["first_step_s"] = round(elapsed, 4)
            if index >= args.warmup:
                times.append(elapsed)
        phase = "pipelined steps"  # as Keras' fit runs them: one synchronisation for the lot
        start = clock()
        for _ in range(args.steps):
            step()
        record["pipelined_step_time_ms"] = round(1000 * (clock() - start) / args.steps, 3)
        if args.count_ops:
            phase = "operator count"
            with OperatorCounter() as counter:
                step()
            record["aten_ops_per_step"] = counter.count
            record["aten_views_per_step"] = counter.views
    except Exception as failure:  # one record whatever went wrong (out of memory, a compiler error, ...)
        traceback.print_exc(file=sys.stderr)
        record["error"] = f"{type(failure).__name__}: {failure}"[:2000]
        record["failed_at"] = phase
        if cuda and torch.cuda.is_initialized():
            record["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        return record
    t = np.asarray(times)
    record["step_time_ms"] = round(1000 * float(np.median(t)), 3)
    record["step_time_p90_ms"] = round(1000 * float(np.percentile(t, 90)), 3)
    record["samples_per_sec"] = round(args.batch_size * len(t) / float(t.sum()), 3)
    if cuda:
        record["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return record


def fp32_precision() -> dict:
    """What float32 convolutions and matmuls may use on CUDA, as torch reports it (never raises).

    ``conv`` and ``matmul`` are torch's ``fp32_precision`` settings ("tf32", "ieee", or "none": follow the
    global one), ``float32_matmul_precision`` the older global ("highest": no TF32). torch's defaults allow
    TF32 in cuDNN convolutions but not in matmuls; the record keeps them so a run can be compared with a
    framework whose defaults differ.
    """
    try:
        conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
        matmul = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
        if conv is None:  # torch before the fp32_precision settings
            conv = "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
        if matmul is None:
            matmul = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
        return {
            "conv": conv,
            "matmul": matmul,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
    except Exception as failure:  # a record field, not worth failing a run for
        return {"unknown": f"{type(failure).__name__}: {failure}"}


def print_record(record: dict) -> None:
    """Prints ``record`` as one JSON line on stdout; exits with status 1 after it if it carries an error."""
    print(json.dumps(record), flush=True)
    if record.get("error"):
        raise SystemExit(1)

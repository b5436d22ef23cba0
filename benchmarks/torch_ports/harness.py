"""Times PyTorch training steps the way ``keras-zoo benchmark`` times Keras ones.

The ports in this folder are measuring equipment: PyTorch versions of the five networks, layer for layer,
used to compare keras_zoo's training throughput with the reference implementations' framework on the
same machine. A step is Adam(1e-4, eps=1e-7) on the mean squared error against a random target of the
output's shape, inputs uniform in [0, 1): the same step ``keras-zoo benchmark`` times.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Sequence

import numpy as np
import torch


def add_timing_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the options every port's command line shares."""
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: CPU autocast")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    return parser


def count_parameters(module: torch.nn.Module, include_buffers: bool = True) -> int:
    """Parameters plus (by default) batch-norm running statistics, as Keras ``count_params()`` counts."""
    total = sum(p.numel() for p in module.parameters())
    if include_buffers:
        statistics = ("running_mean", "running_var")
        total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(statistics))
    return total


def time_training(
    model: torch.nn.Module,
    input_shapes: Sequence[Sequence[int]],
    args: argparse.Namespace,
    name: str,
    forward: Callable | None = None,
) -> dict:
    """Times ``args.steps`` training steps after ``args.warmup`` untimed ones; returns a JSON-ready record.

    Args:
        model: the port, in training mode.
        input_shapes: per input, its shape without the batch axis, channels first (C, H, W[, D]).
        args: parsed ``add_timing_arguments`` options.
        name: the network's name in the record.
        forward: ``forward(model, inputs) -> output``; default ``model(*inputs)``.
    """
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    fmt = None
    if args.channels_last:
        fmt = torch.channels_last if len(input_shapes[0]) == 3 else torch.channels_last_3d
        model = model.to(memory_format=fmt)
    inputs = []
    for shape in input_shapes:
        x = torch.from_numpy(rng.random((args.batch_size, *shape), dtype=np.float32))
        inputs.append(x.contiguous(memory_format=fmt) if fmt is not None and x.dim() in (4, 5) else x)
    forward = forward or (lambda m, xs: m(*xs))
    model.train()
    with torch.no_grad():
        out = forward(model, inputs)
    target = torch.from_numpy(rng.random(tuple(out.shape), dtype=np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-7)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            prediction = forward(model, inputs)
        loss = torch.mean((prediction.float() - target) ** 2)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    t = np.asarray(times)
    return {
        "model": name,
        "framework": f"torch {torch.__version__}",
        "precision": args.precision,
        "channels_last": bool(args.channels_last),
        "threads": args.threads,
        "batch": args.batch_size,
        "input_shape": [list(s) for s in input_shapes],
        "parameters": count_parameters(model),
        "step_time_ms": round(1000 * float(np.median(t)), 3),
        "step_time_p90_ms": round(1000 * float(np.percentile(t, 90)), 3),
        "samples_per_sec": round(args.batch_size * len(t) / float(t.sum()), 3),
        "date": time.strftime("%Y-%m-%d"),
    }


def print_record(record: dict) -> None:
    print(json.dumps(record), flush=True)

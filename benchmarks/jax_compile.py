"""Trace, lowering and compile time of each network's JAX training step, without running it.

Builds the network (registry preset, reference batch), compiles it with Adam and MSE as ``keras-zoo
benchmark`` does, then times ``jax.jit(model.train_step).trace(...)``, ``.lower()`` and ``.compile()`` on
the device JAX chooses, and counts the convolutions of the lowered step by kind (grouped, dilated,
batch-grouped), the patterns that XLA:GPU handles badly. One JSON line per network. Needs
``KERAS_BACKEND=jax``. Examples::

    KERAS_BACKEND=jax python benchmarks/jax_compile.py                       # all five, reference configs
    KERAS_BACKEND=jax python benchmarks/jax_compile.py --models deeplabv3plus --batch-size 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from keras_zoo.cli.tasks import reference_batch, task_names  # noqa: E402 - imports neither Keras nor a backend

MODELS = tuple(task_names())
CONVOLUTION = re.compile(r"stablehlo\.convolution.*")


def conv_kinds(stablehlo: str) -> dict[str, int]:
    """Counts of the convolutions in StableHLO text: all, grouped (feature_group_count > 1), dilated
    (rhs_dilate > 1), batch-grouped (batch_group_count > 1) and those that are both grouped and dilated."""
    counts = {"convolutions": 0, "grouped": 0, "dilated": 0, "batch_grouped": 0, "grouped_dilated": 0}
    for line in CONVOLUTION.findall(stablehlo):
        grouped = re.search(r"feature_group_count = (\d+)", line)
        batch = re.search(r"batch_group_count = (\d+)", line)
        dilate = re.search(r"rhs_dilate = \[([\d, ]+)\]", line)
        is_grouped = bool(grouped and int(grouped.group(1)) > 1)
        is_dilated = bool(dilate and any(int(d) > 1 for d in dilate.group(1).split(",")))
        counts["convolutions"] += 1
        counts["grouped"] += is_grouped
        counts["dilated"] += is_dilated
        counts["batch_grouped"] += bool(batch and int(batch.group(1)) > 1)
        counts["grouped_dilated"] += is_grouped and is_dilated
    return counts


def measure(name: str, preset: str, batch: int, precision: str) -> dict:
    """Times tracing, lowering and compiling ``name``'s training step; returns the JSON record."""
    import jax
    import keras
    import numpy as np

    from keras_zoo import runtime
    from keras_zoo.registry import get_model

    config = runtime.configure("auto", precision, seed=0)
    model = get_model(name, preset=preset)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    rng = np.random.default_rng(0)

    def batch_like(tensors):
        arrays = [rng.random((batch, *t.shape[1:]), dtype=np.float32) for t in tensors]
        return arrays[0] if len(arrays) == 1 else arrays

    x, y = batch_like(model.inputs), batch_like(model.outputs)
    model.optimizer.build(model.trainable_variables)
    state = runtime.trainer_state(model)
    start = time.perf_counter()
    traced = jax.jit(model.train_step).trace(state, (x, y))
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    lowered.compile()
    compiled_at = time.perf_counter()
    return {
        "model": name,
        "preset": preset,
        "batch": batch,
        "device": config.device,
        "policy": config.policy,
        "trace_s": round(traced_at - start, 2),
        "lower_s": round(lowered_at - traced_at, 2),
        "compile_s": round(compiled_at - lowered_at, 2),
        **conv_kinds(lowered.as_text()),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--batch-size", type=int, help="default: each network's reference batch")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "mixed", "bf16", "fp16"))
    args = parser.parse_args(argv)
    if os.environ.get("KERAS_BACKEND") != "jax":
        print("error: run with KERAS_BACKEND=jax", file=sys.stderr)
        return 2
    for name in args.models:
        record = measure(name, args.preset, args.batch_size or reference_batch(name), args.precision)
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

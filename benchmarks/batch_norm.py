"""A batch norm's training step (forward, input and weight gradients): Keras' ops vs the backend's kernel.

Times ``keras_zoo.layers.BatchNormalization`` under ``$KERAS_ZOO_BATCH_NORM=keras`` and ``fused`` on the
TensorFlow or torch backend (``$KERAS_BACKEND``), for each ``--shape`` (batch, ..., channels) and each
``--policy``: the median of ``--reps`` runs of a step (a ``tf.function`` on TensorFlow, eager autograd on
torch) after one untimed (tracing, warm-up) run. One JSON line per shape, policy and
implementation, with the step's largest difference from the Keras computation's output (relative to its
largest value), and ``fused_ran`` (False where the layer kept Keras' ops, e.g. torch on a CPU below 16
channels). Example::

    python benchmarks/batch_norm.py --shape 2,256,256,12 --shape 6,64,64,32,64 --policy mixed_bfloat16
    KERAS_BACKEND=torch python benchmarks/batch_norm.py
"""

# ruff: noqa: E402 - TensorFlow's CPU defaults are set before Keras loads it
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

apply_tf_cpu_defaults()  # before Keras loads TensorFlow

import keras
import numpy as np

from keras_zoo.layers import batch_norm

# U-Net (ISBI recipe: 12 filters), AmoebaNet-D, DeepLabv3+ (728: the middle flow) and Genesis maps
DEFAULT_SHAPES = (
    (2, 256, 256, 12),
    (2, 128, 128, 24),
    (2, 64, 64, 48),
    (2, 256, 256, 32),
    (8, 28, 28, 100),
    (8, 28, 28, 112),
    (2, 33, 33, 728),
    (2, 129, 129, 256),
    (6, 64, 64, 32, 32),
)
IMPLEMENTATIONS = ("keras", "fused")


def training_step(layer: batch_norm.BatchNormalization, x: np.ndarray) -> Callable[[], tuple]:
    """A function running one training step of ``layer`` on ``x``: the forward pass and the gradients of the
    output's sum with respect to the input and the weights; it returns (output as float32, input gradient)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32))
            return tf.cast(y, tf.float32), tape.gradient(loss, [x, *layer.trainable_variables])[0]

        return lambda: step(x)
    import torch

    x = torch.as_tensor(x).requires_grad_()
    weights = [v.value for v in layer.trainable_variables]
    # a dense output gradient, as a next layer's backward gives (a sum's gradient is a stride-0 expansion,
    # which sends torch's kernel down another path)
    cotangent = torch.ones(x.shape, dtype=getattr(torch, layer.compute_dtype))

    def eager_step():
        y = layer(x, training=True)
        gradients = torch.autograd.grad(y, [x, *weights], cotangent)
        return y.detach().float(), gradients[0]

    return eager_step


def time_step(shape: tuple[int, ...], policy: str, reps: int) -> tuple[float, np.ndarray, bool]:
    """(median ms, output as float32, whether the fused kernel ran) of one training step of a fresh layer
    under the implementation that ``$KERAS_ZOO_BATCH_NORM`` names."""
    layer = batch_norm.BatchNormalization(dtype=policy)
    layer.build(shape)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    fused = layer._fuses(keras.ops.cast(x, layer.compute_dtype))  # what a training call decides
    step = training_step(layer, x)
    y = keras.ops.convert_to_numpy(step()[0])
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(step()[1])
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), y, fused


def parse_shape(text: str) -> tuple[int, ...]:
    shape = tuple(int(v) for v in text.split(","))
    if len(shape) < 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"a shape is batch,...,channels with at least 4 sizes >= 1, got {text}"
        )
    return shape


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=parse_shape, action="append", help="batch,...,channels (repeatable)")
    parser.add_argument(
        "--policy",
        action="append",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="(repeatable)",
    )
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)
    if keras.config.backend() not in batch_norm.FUSED_BACKENDS:
        raise SystemExit(
            f"batch_norm.py times TensorFlow's or torch's fused kernel; the {keras.config.backend()} backend "
            "has none"
        )
    previous = os.environ.get(batch_norm.IMPLEMENTATION_VARIABLE)
    try:
        for shape in args.shape or DEFAULT_SHAPES:
            for policy in args.policy or ("float32", "mixed_bfloat16"):
                outputs = {}
                for name in IMPLEMENTATIONS:
                    os.environ[batch_norm.IMPLEMENTATION_VARIABLE] = name
                    ms, outputs[name], fused_ran = time_step(shape, policy, args.reps)
                    difference = (
                        np.abs(outputs[name] - outputs["keras"]).max() / np.abs(outputs["keras"]).max()
                    )
                    record = {
                        "shape": list(shape),
                        "policy": policy,
                        "implementation": name,
                        "fused_ran": fused_ran,
                    }
                    record.update({"ms_median": round(ms, 3), "max_relative_difference": float(difference)})
                    print(json.dumps(record), flush=True)
    finally:
        if previous is None:
            os.environ.pop(batch_norm.IMPLEMENTATION_VARIABLE, None)
        else:
            os.environ[batch_norm.IMPLEMENTATION_VARIABLE] = previous


if __name__ == "__main__":
    main()

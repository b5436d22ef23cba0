"""A batch norm's training step (forward, input and weight gradients), Keras' ops vs TensorFlow's fused kernel.

Times ``keras_zoo.layers.BatchNormalization`` under ``$KERAS_ZOO_BATCH_NORM=keras`` and ``fused`` on the
TensorFlow backend, for each ``--shape`` (batch, ..., channels) and each ``--policy``: the median of
``--reps`` runs of a ``tf.function`` step after one untimed (tracing) run. One JSON line per shape, policy and
implementation, with the step's largest difference from the Keras computation's output (relative to its
largest value), and ``fused_ran`` (False where the layer kept Keras' ops, e.g. bfloat16 with a channel count
that is not a multiple of 16). Example::

    python benchmarks/batch_norm.py --shape 2,256,256,12 --shape 6,64,64,32,64 --policy mixed_bfloat16
"""

# ruff: noqa: E402 - TensorFlow's CPU defaults are set before Keras loads it
from __future__ import annotations

import argparse
import json
import os
import time

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


def time_step(shape: tuple[int, ...], policy: str, reps: int) -> tuple[float, np.ndarray, bool]:
    """(median ms, output as float32, whether the fused kernel ran) of one training step of a fresh layer
    under the implementation that ``$KERAS_ZOO_BATCH_NORM`` names."""
    import tensorflow as tf

    layer = batch_norm.BatchNormalization(dtype=policy)
    layer.build(shape)
    x = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))
    fused = layer._fuses(tf.cast(x, layer.compute_dtype))  # what a training call decides

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        return (tf.cast(y, tf.float32), *tape.gradient(loss, [x, *layer.trainable_variables]))

    y = step(x)[0].numpy()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step(x)[1].numpy()
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
    if keras.config.backend() != "tensorflow":
        raise SystemExit(
            f"batch_norm.py times TensorFlow's fused kernel, not the {keras.config.backend()} backend"
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

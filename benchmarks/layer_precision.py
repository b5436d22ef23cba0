"""Forward+backward time of single Keras layers under the float32 and mixed_bfloat16 policies.

Shows which layer kinds gain from bfloat16 on this machine (convolutions on oneDNN/AMX) and which lose
(element-wise ops and depthwise convolutions on kernels built without AVX). One JSON line per case:

    python benchmarks/layer_precision.py [CASE ...]
"""

# ruff: noqa: E402 - TensorFlow's CPU defaults are set before Keras loads it
from __future__ import annotations

import json
import sys
import time

from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

apply_tf_cpu_defaults()  # before Keras loads TensorFlow

import keras
import numpy as np

L = keras.layers


def _depthwise():
    return L.DepthwiseConv2D(3, padding="same", use_bias=False)


CASES = {
    "depthwise3x3_129x129x256": (_depthwise, (2, 129, 129, 256)),
    "depthwise3x3_33x33x728": (_depthwise, (2, 33, 33, 728)),
    "depthwise3x3_rate2_33x33x1536": (
        lambda: L.DepthwiseConv2D(3, padding="same", dilation_rate=2, use_bias=False),
        (2, 33, 33, 1536),
    ),
    "conv1x1_129x129x256": (lambda: L.Conv2D(256, 1, use_bias=False), (2, 129, 129, 256)),
    "conv1x1_33x33x728": (lambda: L.Conv2D(728, 1, use_bias=False), (2, 33, 33, 728)),
    "batchnorm_129x129x256": (lambda: L.BatchNormalization(), (2, 129, 129, 256)),
    "relu_129x129x256": (lambda: L.ReLU(), (2, 129, 129, 256)),
    "conv3x3_56x56x64": (lambda: L.Conv2D(64, 3, padding="same", use_bias=False), (8, 56, 56, 64)),
    "conv1x7_28x28x128": (lambda: L.Conv2D(128, (1, 7), padding="same", use_bias=False), (8, 28, 28, 128)),
    "maxpool3x3_56x56x128": (lambda: L.MaxPooling2D(3, 1, padding="same"), (8, 56, 56, 128)),
    "avgpool3x3_56x56x128": (lambda: L.AveragePooling2D(3, 1, padding="same"), (8, 56, 56, 128)),
    # Models Genesis at the reference width and batch (6 cubes of 64x64x32; the first level's 64 filters)
    "conv3d_3x3x3_64x64x32x32": (lambda: L.Conv3D(64, 3, padding="same"), (6, 64, 64, 32, 32)),
    "batchnorm_64x64x32x64": (lambda: L.BatchNormalization(), (6, 64, 64, 32, 64)),
    "relu_64x64x32x64": (lambda: L.ReLU(), (6, 64, 64, 32, 64)),
    "maxpool3d_2_64x64x32x64": (lambda: L.MaxPooling3D(2), (6, 64, 64, 32, 64)),
    "upsampling3d_2_32x32x16x128": (lambda: L.UpSampling3D(2), (6, 32, 32, 16, 128)),
}


def time_layer(make_layer, shape: tuple[int, ...], policy: str, repeats: int = 5) -> float:
    """Median ms of one compiled forward+backward pass (input and weight gradients) of a fresh layer."""
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)
    layer = make_layer()
    layer.build(shape)
    x = tf.constant(np.random.default_rng(0).random(shape, dtype=np.float32))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    step(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        make_layer, shape = CASES[name]
        policies = ("float32", "mixed_bfloat16")
        figures = {policy: round(time_layer(make_layer, shape, policy), 2) for policy in policies}
        print(json.dumps({"case": name, "shape": list(shape), **figures}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

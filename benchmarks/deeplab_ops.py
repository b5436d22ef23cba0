"""Times forward+backward of DeepLabv3+ ops suspected of slow TF-CPU training; prints JSON lines.

Usage: python benchmarks/deeplab_ops.py [batch]  (shapes of a 513 crop at OS16)
"""

import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def bench(name, layer_fn, shape, reps=5):
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
    layer = layer_fn()
    layer(x)  # build

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    step(x)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        [g.numpy() for g in step(x) if g is not None]
        times.append(time.perf_counter() - t)
    print(
        json.dumps({"op": name, "shape": shape, "ms_median": round(1e3 * float(np.median(times)), 2)}),
        flush=True,
    )


B = int(sys.argv[1]) if len(sys.argv) > 1 else 2
feat = (B, 33, 33, 2048)  # ASPP input at OS16 for a 513 crop
for r in (1, 2, 6, 12, 18):
    bench(
        f"aspp_depthwise3x3_rate{r}",
        lambda r=r: layers.DepthwiseConv2D(3, dilation_rate=r, padding="same", use_bias=False),
        feat,
    )
ent = (B, 129, 129, 128)  # entry block2 input
bench("depthwise_stride1_same", lambda: layers.DepthwiseConv2D(3, padding="same", use_bias=False), ent)
bench(
    "depthwise_stride2_same",
    lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False),
    ent,
)
bench(
    "zeropad+depthwise_stride2_valid",
    lambda: keras.Sequential(
        [layers.ZeroPadding2D(1), layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False)]
    ),
    ent,
)
bench("pointwise_1x1_128to256", lambda: layers.Conv2D(256, 1, use_bias=False), ent)
bench("keras_batchnorm", lambda: layers.BatchNormalization(momentum=0.9997, epsilon=1e-3), ent)


class Fused(keras.layers.Layer):
    def build(self, s):
        self.g = self.add_weight(shape=(s[-1],), initializer="ones")
        self.b = self.add_weight(shape=(s[-1],), initializer="zeros")

    def call(self, x, training=None):
        return tf.compat.v1.nn.fused_batch_norm(x, self.g, self.b, epsilon=1e-3, is_training=True)[0]


bench("tf_fused_batchnorm", Fused, ent)
bench(
    "resizing_bilinear_33to129", lambda: layers.Resizing(129, 129, interpolation="bilinear"), (B, 33, 33, 256)
)
bench(
    "resizing_bilinear_129to513",
    lambda: layers.Resizing(513, 513, interpolation="bilinear"),
    (B, 129, 129, 21),
)

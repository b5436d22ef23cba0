"""Forward + both gradients of DeepLabv3+'s depthwise convolutions under each implementation; JSON lines.

Times ``keras_zoo.layers.DepthwiseConv2D`` (3x3, "same") at the shapes DeepLabv3+'s aligned Xception-65
gives it at output stride 16, for every value of ``$KERAS_ZOO_DEPTHWISE`` (``taps``, ``phases``, ``native``),
on the JAX or torch backend (TensorFlow keeps its own op). One line per shape and implementation, with the
median of ``--reps`` timed runs after one untimed (compiling) run and the largest difference from
``native``. Example::

    KERAS_BACKEND=jax python benchmarks/depthwise.py --crop 257 --batch-size 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import keras
import numpy as np

from keras_zoo.layers import DepthwiseConv2D, atrous_depthwise
from keras_zoo.layers.atrous_depthwise import IMPLEMENTATION_VARIABLE

# every implementation the variable names, "native" first: the others are compared with it
IMPLEMENTATIONS = ("native", *sorted(set(atrous_depthwise.IMPLEMENTATIONS) - {"auto", "native"}))


def cases(crop: int) -> list[tuple[str, int, int, int, int]]:
    """(name, spatial size, channels, stride, rate) of the depthwise convolutions of a ``crop`` input."""
    entry, middle = math.ceil(crop / 2), math.ceil(crop / 16)
    return [
        ("entry_128ch", entry, 128, 1, 1),
        ("entry_128ch_stride2", entry, 128, 2, 1),
        ("entry_256ch_stride2", math.ceil(crop / 4), 256, 2, 1),
        ("middle_728ch", middle, 728, 1, 1),
        *[(f"aspp_rate{rate}", middle, 2048, 1, rate) for rate in (6, 12, 18)],
    ]


def gradient_step(layer: DepthwiseConv2D):
    """A function (inputs) -> (outputs, input gradient, kernel gradient) of loss sum(sin(outputs))."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        def loss(x, kernel):
            y = _with_kernel(layer, kernel, x)
            return jax.numpy.sin(y).sum(), y

        grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

        def step(x):
            (_, y), (dx, dk) = grads(x, layer.kernel.value)
            return [np.asarray(t) for t in (y, dx, dk)]

        return step
    if backend == "torch":
        import torch

        def step(x):
            x = torch.as_tensor(x).requires_grad_()
            y = layer(x)
            dx, dk = torch.autograd.grad(torch.sin(y).sum(), [x, layer.kernel.value])
            return [t.detach().cpu().numpy() for t in (y, dx, dk)]

        return step
    raise SystemExit(f"depthwise.py times the JAX and torch backends, not {backend}")


def _with_kernel(layer: DepthwiseConv2D, kernel, x):
    """The layer's output with ``kernel`` in place of its variable (so JAX can differentiate it)."""
    variable = layer.kernel
    with keras.StatelessScope(state_mapping=[(variable, kernel)]):
        return layer(x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=257, help="input size (DeepLab's reference: 513)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    for name, size, channels, stride, rate in cases(args.crop):
        x = rng.standard_normal((args.batch_size, size, size, channels), dtype=np.float32)
        layer = DepthwiseConv2D(3, strides=stride, dilation_rate=rate, padding="same", use_bias=False)
        layer.build(x.shape)
        reference = None
        for implementation in IMPLEMENTATIONS:
            os.environ[IMPLEMENTATION_VARIABLE] = implementation
            step = gradient_step(layer)
            found = step(x)  # compiles on JAX
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                step(x)
                times.append(time.perf_counter() - start)
            reference = reference or found
            error = max(
                float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1)) for a, b in zip(found, reference)
            )
            record = {"case": name, "shape": list(x.shape), "stride": stride, "rate": rate}
            record |= {"implementation": implementation, "ms_median": round(1e3 * float(np.median(times)), 1)}
            record |= {"max_rel_error_vs_native": error, "backend": keras.config.backend()}
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

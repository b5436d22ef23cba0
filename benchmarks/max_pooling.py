"""Forward + input gradient of a network's max pools, native (``select_and_scatter``) vs taps; JSON lines.

Builds the network (registry defaults, or ``--preset``), collects the distinct max-pooling layers (input
shape, window, stride, padding) and times each under ``$KERAS_ZOO_MAX_POOLING=native`` and ``taps``
(``keras_zoo.layers.max_pooling``) on the JAX backend: the median of ``--reps`` runs of the jitted
forward pass and input gradient of ``sum(sin(pool(x)))``, after one untimed (compiling) run. One line per
distinct layer and implementation, with how many layers of the network share it and whether the outputs
and gradients equal native's bit for bit. Example::

    KERAS_BACKEND=jax python benchmarks/max_pooling.py --model amoebanet --batch-size 16 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time

import keras
import numpy as np

import keras_zoo
from keras_zoo.layers.max_pooling import IMPLEMENTATION_VARIABLE, MaxPooling2D, MaxPooling3D

IMPLEMENTATIONS = ("native", "taps")


def cases(model: keras.Model) -> collections.Counter:
    """Counter of (input shape without batch, pool_size, strides, padding) over ``model``'s max pools."""
    return collections.Counter(
        (tuple(layer.input.shape[1:]), tuple(layer.pool_size), tuple(layer.strides), layer.padding)
        for layer in model.layers
        if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.MaxPooling3D))
    )


def gradient_step(layer: keras.layers.Layer):
    """A jitted function x -> (pool(x), d sum(sin(pool(x))) / dx) on JAX."""
    import jax

    def loss(x):
        y = layer(x)
        return jax.numpy.sin(y.astype("float32")).sum(), y

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="amoebanet", help="registry name (amoebanet, unet, genesis)")
    parser.add_argument("--preset", default=None, help="a registry preset, e.g. tiny")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    if keras.config.backend() != "jax":
        raise SystemExit(
            f"max_pooling.py times the JAX backend, where taps are the default, not {keras.config.backend()}"
        )
    config = {"preset": args.preset} if args.preset else {}
    found = cases(keras_zoo.get_model(args.model, **config))
    if not found:
        raise SystemExit(f"{args.model} has no max-pooling layer")
    rng = np.random.default_rng(0)
    for (shape, pool, strides, padding), count in sorted(
        found.items(), key=lambda item: -np.prod(item[0][0])
    ):
        x = keras.ops.cast(rng.standard_normal((args.batch_size, *shape), dtype=np.float32), args.dtype)
        layer = (MaxPooling2D if len(pool) == 2 else MaxPooling3D)(pool, strides=strides, padding=padding)
        reference = None
        for implementation in IMPLEMENTATIONS:
            os.environ[IMPLEMENTATION_VARIABLE] = implementation
            step = gradient_step(layer)
            (_, y), dx = step(x)  # compiles
            result = [np.asarray(y.astype("float32")), np.asarray(dx.astype("float32"))]
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                (_, y), dx = step(x)
                dx.block_until_ready()
                times.append(time.perf_counter() - start)
            reference = reference or result
            record = {
                "shape": list(x.shape),
                "pool": list(pool),
                "strides": list(strides),
                "padding": padding,
            }
            record |= {"layers": count, "dtype": args.dtype, "implementation": implementation}
            record |= {"ms_median": round(1e3 * float(np.median(times)), 2)}
            record |= {"equal_to_native": all(np.array_equal(a, b) for a, b in zip(result, reference))}
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

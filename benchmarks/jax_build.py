"""Time to build a network on JAX (``keras_zoo.get_model``), with or without the persistent compilation cache.

Building runs Keras' initialisers eagerly, and JAX compiles each random draw once per weight shape; the cache
(``keras_zoo.runtime.enable_compilation_cache``, on in the CLI) keeps those programs. One JSON line per run;
run it once without a cache, then twice with one folder (empty, then filled), each in a fresh process::

    python benchmarks/jax_build.py unet                       # no cache
    python benchmarks/jax_build.py unet --cache /tmp/cache    # twice: the cache empty, then filled
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--cache", help="persistent compilation cache folder (default: none)")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    import keras_zoo
    from keras_zoo import runtime

    if args.cache:
        runtime.enable_compilation_cache("jax", args.cache)
    keras_zoo.list_models()  # the registry imported before the clock starts
    start = time.perf_counter()
    model = keras_zoo.get_model(args.model, preset=None if args.preset == "default" else args.preset)
    record = {
        "model": args.model,
        "preset": args.preset,
        "cache": bool(args.cache),
        "build_s": round(time.perf_counter() - start, 2),
        "weights": len(model.weights),
        "weight_shapes": len({tuple(w.shape) for w in model.weights}),
    }
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

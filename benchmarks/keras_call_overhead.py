"""Keras' per-layer Python on the torch backend: what ``Layer.__call__`` costs each layer of a network.

The forward pass of each network's host-bound proxy (``torch_dispatch.PROXIES``: reference depth, a few
channels) is timed two ways in one process, alternating:

- ``keras``: ``model(x, training=True)``, every layer through Keras' ``Layer.__call__`` (input conversion,
  call-spec binding, training-flag and mask resolution, autocast scopes, attribute tracking), as a training
  step runs it;
- ``direct``: the same graph with each layer's ``call`` invoked in the graph's order, the layer's arithmetic
  and nothing else.

``direct`` is a measuring device, not a way to run a network: it skips what ``__call__`` does for mixed
precision and masks, so it runs in float32 only, and its output is checked against Keras' at
``training=False`` (where no dropout draws differ) before anything is timed. Both run with autograd
recording, as in a training step. ``call_overhead_us_per_layer`` is the difference over the layer count.
One JSON line per network::

    python benchmarks/keras_call_overhead.py [--model amoebanet ...] [--rounds 3] [--steps 10]

Upstream work on this overhead: keras-team/keras#22561.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
    print(
        f"keras_call_overhead.py measures Keras' torch backend, not {os.environ['KERAS_BACKEND']}",
        file=sys.stderr,
    )
    sys.exit(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch_dispatch import PROXIES, proxy_parser  # noqa: E402 - also puts the repository on sys.path

import keras_zoo  # noqa: E402
from keras_zoo.cli.benchmark import step_figures, time_steps  # noqa: E402


def direct_forward(model: keras.Model) -> Callable[..., list[torch.Tensor]]:
    """A function ``(inputs, training) -> outputs`` that runs ``model``'s graph by calling each layer's
    ``call`` in the graph's order, bypassing ``Layer.__call__``. ``inputs``: one tensor per model input."""
    plan = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            takes_training = "training" in inspect.signature(layer.call).parameters
            plan.append((layer, node, takes_training))

    def forward(inputs: Sequence[torch.Tensor], training: bool) -> list[torch.Tensor]:
        values = {id(symbolic): value for symbolic, value in zip(model.inputs, inputs)}
        for layer, node, takes_training in plan:
            args, kwargs = node.arguments.fill_in(values)
            if takes_training:
                kwargs["training"] = training
            outputs = layer.call(*args, **kwargs)
            for symbolic, value in zip(keras.tree.flatten(node.outputs), keras.tree.flatten(outputs)):
                values[id(symbolic)] = value
        return [values[id(symbolic)] for symbolic in model.outputs]

    return forward


def measure(model_name: str, batch: int, rounds: int, steps: int) -> dict:
    """The record of one network's proxy: layer count, both forward times per round, the overhead per layer,
    and the largest difference between the two paths' outputs at ``training=False``."""
    keras.utils.set_random_seed(0)
    model = keras_zoo.get_model(model_name, **PROXIES[model_name][0])
    rng = np.random.default_rng(0)
    inputs = [torch.from_numpy(rng.random((batch, *t.shape[1:]), dtype=np.float32)) for t in model.inputs]
    x = inputs if len(inputs) > 1 else inputs[0]
    forward = direct_forward(model)
    with torch.no_grad():
        expected = keras.tree.flatten(model(x, training=False))
        got = forward(inputs, training=False)
    max_difference = max(float((a - b).abs().max()) for a, b in zip(expected, got))
    if max_difference > 0:
        raise RuntimeError(f"{model_name}: the direct path differs from Keras' by {max_difference}")
    layers = sum(1 for layer in model.layers if not isinstance(layer, keras.layers.InputLayer))

    def median_ms(call: Callable[[], object]) -> float:
        return step_figures(time_steps(call, 0, steps), batch)["step_time_ms"]

    keras_ms, direct_ms = [], []
    for _ in range(rounds):
        keras_ms.append(median_ms(lambda: model(x, training=True)))
        direct_ms.append(median_ms(lambda: forward(inputs, training=True)))
    keras_median, direct_median = float(np.median(keras_ms)), float(np.median(direct_ms))
    return {
        "model": model_name,
        "batch": batch,
        "config": PROXIES[model_name][0],
        "layers": layers,
        "keras_forward_ms": [round(t, 2) for t in keras_ms],
        "direct_forward_ms": [round(t, 2) for t in direct_ms],
        "keras_over_direct": round(keras_median / direct_median, 2),
        "call_overhead_us_per_layer": round((keras_median - direct_median) / layers * 1e3, 1),
        "max_difference_at_inference": max_difference,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "keras": keras.__version__},
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = proxy_parser(__doc__.split("\n\n")[0], rounds=3)  # --steps: timed forward passes per path
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for model_name in args.model or sorted(PROXIES):
        print(json.dumps(measure(model_name, args.batch_size, args.rounds, args.steps)), flush=True)


if __name__ == "__main__":
    main()

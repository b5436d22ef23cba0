"""Helpers shared by the torch-port tests: Keras-side weight randomising, layout moves, comparisons.

Importing this file needs no torch (CI runs without it); functions that use torch import it themselves, and
the ``port``/``load_port`` fixtures (conftest.py) skip the tests before they get here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import keras
import numpy as np


def randomise_batch_norm(
    model: keras.Model, rng: np.random.Generator | int = 0, variance: tuple[float, float] = (0.5, 2.0)
) -> None:
    """Gives every BN layer non-trivial gamma, beta and moving statistics, so the copy of each is checked.

    Per layer, in order: gamma U(0.5, 1.5), beta N(0, 0.1), moving mean N(0, 0.1), moving variance
    U(*variance), each of shape (channels,), float32.

    Args:
        model: a flat Keras model.
        rng: a generator (drawn from and advanced) or a seed for a new one.
        variance: the bounds of the moving variance's uniform draw.
    """
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n).astype("float32"),
                    rng.normal(0.0, 0.1, n).astype("float32"),
                    rng.normal(0.0, 0.1, n).astype("float32"),
                    rng.uniform(*variance, n).astype("float32"),
                ]
            )


def channels_first(x: np.ndarray):
    """Keras channels-last (N, *spatial, C) array -> torch (N, C, *spatial) view (no copy, strided)."""
    import torch

    return torch.from_numpy(x).permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def channels_last(x) -> np.ndarray:
    """Torch (N, C, *spatial) tensor -> numpy (N, *spatial, C)."""
    return x.permute(0, *range(2, x.dim()), 1).numpy()


def compare_logits_and_outputs(
    port,
    keras_factory: Callable[..., keras.Model],
    config: dict,
    logits_layer: str,
    x: np.ndarray,
    training: bool = False,
    randomise: Sequence[Callable[[keras.Model], None]] = (randomise_batch_norm,),
) -> tuple[float, float]:
    """Builds both models at ``config``, copies the Keras weights into the port, runs both on ``x``.

    The Keras model is built after ``keras.utils.set_random_seed(0)`` and then passed through each of
    ``randomise`` (non-trivial weights, so their copy is checked). The port must have ``logits(x)`` (the
    output of Keras layer ``logits_layer``) and ``forward``; both models run in the same mode (``training``).

    Args:
        x: Keras layout (N, *spatial, C), float32.

    Returns:
        max |keras - torch| of the logits (relative to their scale, at least 1) and of the outputs.
    """
    import torch

    keras.utils.set_random_seed(0)
    keras_model = keras_factory(**config)
    for randomise_weights in randomise:
        randomise_weights(keras_model)
    keras_logits_model = keras.Model(keras_model.input, keras_model.get_layer(logits_layer).output)
    torch_model = port.build(**config)
    port.copy_keras_weights(keras_model, torch_model)
    torch_model.train(training)
    with torch.no_grad():
        xt = channels_first(x)
        torch_logits = channels_last(torch_model.logits(xt))
        torch_out = channels_last(torch_model(xt))
    keras_logits = keras.ops.convert_to_numpy(keras_logits_model(x, training=training))
    keras_out = keras.ops.convert_to_numpy(keras_model(x, training=training))
    assert torch_out.shape == keras_out.shape
    assert keras_out.std() > 1e-3  # not saturated: the comparison means something
    scale = max(1.0, float(np.abs(keras_logits).max()))
    logits_diff = float(np.abs(keras_logits - torch_logits).max()) / scale
    return logits_diff, float(np.abs(keras_out - torch_out).max())


def run_command_line(port, capsys, argv: Sequence[str]) -> dict:
    """Runs ``port.main(argv)``, checks that it printed exactly one line; returns that line's JSON record."""
    port.main(list(argv))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])

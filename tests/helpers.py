"""Common checks every model passes on a tiny configuration (after KerasHub's TestCase.run_model_test)."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from keras_zoo.runtime import trainer_state
from keras_zoo.weights import load_h5_weights, save_h5_weights

# CascadeNet's Ascend variant (one conv stack with batch norm shared by every cascade, one learned lambda) at a
# tiny size, for the model's tests and its PyTorch port's.
CASCADENET_ASCEND_TINY = {
    "input_shape": (8, 8, 2),
    "n_cascades": 3,
    "n_convs": 3,
    "filters": 4,
    "batch_norm": True,
    "shared_weights": True,
    "noise_lambda": 0.5,
    "trainable_lambda": True,
    "lambda_form": "ascend",
}


def steps_per_execution_cases(*values: int) -> list:
    """``steps_per_execution`` values as pytest params; those over 1 are skipped on torch, whose Keras
    trainer runs one step per call."""
    skip = pytest.mark.skipif(
        keras.config.backend() == "torch", reason="Keras' torch trainer runs one step per call"
    )
    return [pytest.param(v, marks=skip) if v > 1 else v for v in values]


def keras_version() -> tuple[int, int]:
    """The installed Keras' (major, minor) version, for checks of behaviour that changed between releases."""
    major, minor = keras.__version__.split(".")[:2]
    return int(major), int(minor)


def tf_same_padding(size: int, window: int, stride: int = 1, rate: int = 1) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's "same" along one axis of ``size`` pixels for a ``window``
    dilated by ``rate``: ceil(size / stride) outputs, the odd pixel after. Written out here, apart from
    ``keras_zoo.layers.rewrites.same_padding``, so that tests do not check the library against itself."""
    extent = (window - 1) * rate + 1
    total = max((-(-size // stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def value_and_grads(fn, args: list, cotangent) -> list[np.ndarray]:
    """``[fn(*args), d<fn(*args), cotangent>/d args[0], ...]`` as float64 NumPy arrays, on the current
    backend (jax.vjp, tf.GradientTape or torch.autograd). ``args`` and ``cotangent``: arrays or tensors;
    the cotangent is cast to the output's dtype."""
    backend = keras.config.backend()
    args = [keras.ops.convert_to_tensor(a) for a in args]
    if backend == "jax":
        import jax

        y, vjp = jax.vjp(fn, *args)
        grads = vjp(keras.ops.cast(cotangent, y.dtype))
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(args)
            y = fn(*args)
        grads = tape.gradient(y, args, output_gradients=keras.ops.cast(cotangent, y.dtype))
    else:
        import torch

        args = [a.detach().requires_grad_() for a in args]
        y = fn(*args)
        grads = torch.autograd.grad(y, args, keras.ops.cast(cotangent, y.dtype))
    return [
        np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")), np.float64) for t in (y, *grads)
    ]


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _predict(model: keras.Model, inputs):
    return [keras.ops.convert_to_numpy(y) for y in _as_list(model(inputs, training=False))]


def _assert_same(a, b, atol=1e-5):
    for x, y in zip(_predict(*a) if isinstance(a, tuple) else a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


def check_model(
    model: keras.Model,
    inputs,
    tmp_path,
    expected_output_shapes: list[tuple] | None = None,
    targets=None,
    loss="mse",
    fit: bool = True,
) -> None:
    """Runs the checks every keras_zoo model must pass.

    - the outputs are finite float32 with the expected shapes;
    - ``get_config`` / ``from_config`` rebuilds an equivalent model;
    - ``.keras`` (safe mode), ``.weights.h5`` and legacy ``.h5`` (plain ``load_weights`` and by name)
      save/load round trips reproduce the outputs;
    - one ``fit`` step runs and gives a finite loss.

    Args:
        model: a model built at a tiny config.
        inputs: a batch the model takes (array or list of arrays).
        tmp_path: pytest's tmp_path.
        expected_output_shapes: shapes of the outputs, in order.
        targets: training targets for the fit step (default: zeros like the outputs).
        loss: loss for the fit step.
        fit: run the fit step.
    """
    outputs = _predict(model, inputs)
    for y in outputs:
        assert y.dtype == np.float32, y.dtype
        assert np.all(np.isfinite(y))
    if expected_output_shapes is not None:
        assert [tuple(y.shape) for y in outputs] == [tuple(s) for s in expected_output_shapes]

    rebuilt = model.__class__.from_config(model.get_config())
    assert rebuilt.count_params() == model.count_params()
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    _assert_same(_predict(loaded, inputs), outputs)

    path = os.path.join(tmp_path, "model.weights.h5")
    model.save_weights(path)
    fresh = model.__class__.from_config(model.get_config())
    fresh.load_weights(path)
    _assert_same(_predict(fresh, inputs), outputs)

    path = os.path.join(tmp_path, "model.h5")
    save_h5_weights(model, path)
    fresh = model.__class__.from_config(model.get_config())
    fresh.load_weights(path)
    _assert_same(_predict(fresh, inputs), outputs)
    fresh = model.__class__.from_config(model.get_config())
    report = load_h5_weights(fresh, path, by_name=True)
    assert not report.missing and not report.mismatched
    _assert_same(_predict(fresh, inputs), outputs)

    if fit:
        if targets is None:
            targets = [np.zeros_like(y) for y in outputs]
            targets = targets[0] if len(targets) == 1 else targets
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        history = model.fit(inputs, targets, epochs=1, batch_size=len(_as_list(inputs)[0]), verbose=0)
        assert np.isfinite(history.history["loss"][0])


def mixed_precision_forward(factory, inputs, **config) -> list[np.ndarray]:
    """Builds ``factory(**config)`` under the mixed_bfloat16 policy and returns its outputs (float32 expected)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = factory(**config)
        return _predict(model, inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def lowered_train_step(model: keras.Model, x: np.ndarray, y: np.ndarray, loss: str = "mse") -> str:
    """StableHLO text of ``model``'s whole JAX training step (forward, gradients, Adam) on one batch (x, y)."""
    import jax

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    model.optimizer.build(model.trainable_variables)
    return jax.jit(model.train_step).lower(trainer_state(model), (x, y)).as_text()

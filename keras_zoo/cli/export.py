"""``keras-zoo export``: write a trained model as a TensorFlow SavedModel or an ONNX file, and check it.

``keras-zoo export --model unet --preset tiny --weights w.h5 --format onnx --output unet.onnx`` uses Keras'
``model.export`` (ONNX through tf2onnx) on the TensorFlow backend, in a subprocess where the process runs
another backend (see :func:`main`), writes atomically (a failed export never
leaves a half-written output), with ``--overwrite`` replaces only an earlier export of the same format (an
ONNX file, or a folder holding nothing but a SavedModel; never a folder of other files: see
:func:`keras_zoo.run_folder.replace_output`), then runs the exported file (onnxruntime, or the SavedModel's
``serve`` endpoint) on seeded random inputs and compares it with the Keras model (``model(x, training=False)``).
``--input-size`` rebuilds the network at that spatial size (one value per spatial axis; see
:func:`at_input_size`), so the exported inputs have it; a size the network cannot take is one line.

The check is ``max|exported - keras| <= tolerance + rtol * max|keras|`` for every output: an absolute floor
plus a bound relative to the output's own magnitude (``np.allclose`` with the output's peak as the scale). The
relative part is what makes the check honest across networks: a float32 graph run by another runtime sums in
another order, so its error grows with the activations' size (AmoebaNet's tiny-preset logits reach ~3e3 and
differ by ~1.5e-3, a relative 5e-7), while an absolute bound alone says nothing about outputs of size 1e-9.
Both figures are reported (``max_abs_diff``, ``max_rel_diff`` = absolute difference / ``output_scale``).

ONNX has no complex tensors, so the ONNX graph is traced inside :func:`keras_zoo.layers.fft.real_dft`:
CascadeNet's data-consistency FFTs become real DFT matrix products there (O(N^3) instead of O(N^2 log N) per
transform). The check still compares with the ordinary Keras model, which runs the FFT.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from keras_zoo.cli.command import run_command
from keras_zoo.cli.inference_model import build_model, model_builder, model_command_parser
from keras_zoo.run_folder import check_replaceable, replace_output

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

FORMATS = {"savedmodel": "tf_saved_model", "onnx": "onnx"}
ONNX_INSTALL = "pip install tf2onnx onnx onnxruntime"
# The modules each format imports, onnx before tf2onnx (which imports it, so that a broken onnx is named as
# itself); onnxruntime is checked only where installed (without it the export is written unverified).
CONVERTER_MODULES = {"savedmodel": (), "onnx": ("onnx", "tf2onnx")}


def build_parser() -> argparse.ArgumentParser:
    parser, g = model_command_parser("export", "Export a model to a SavedModel folder or an ONNX file.")
    g.add_argument("--format", required=True, choices=sorted(FORMATS))
    g.add_argument("--output", required=True, help="SavedModel folder or .onnx file to write")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export of the same format (never a folder of other files)",
    )
    g.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        metavar="N",
        help="spatial size of the exported inputs, one value per spatial axis in the input's order (H W for "
        "images, 3 values for volumes and dynamic CascadeNet); the network is rebuilt at that size. Default: "
        "the model's own (free sizes stay free and are checked at 32)",
    )
    g.add_argument("--no-verify", action="store_true", help="skip running the export against Keras")
    g.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="absolute part of the accepted difference (default 1e-4)",
    )
    g.add_argument(
        "--rtol",
        type=float,
        default=1e-5,
        help="relative part: accepted difference grows by rtol * max|Keras output| (default 1e-5)",
    )
    return parser


def sample_inputs(
    model, input_size: list[int] | None = None, batch: int = 2, seed: int = 0
) -> list[np.ndarray]:
    """Seeded uniform [0, 1) float32 arrays, one per model input; None dims take ``input_size`` (or 32)."""
    from keras_zoo.errors import ConfigError

    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = list(tensor.shape[1:])
        free = [i for i, d in enumerate(shape) if d is None]
        sizes = list(input_size or [32] * len(free))
        if len(sizes) < len(free):
            raise ConfigError(
                f"--input-size needs {len(free)} values for input {tensor.name} {tuple(tensor.shape)}"
            )
        for i, size in zip(free, sizes):
            shape[i] = size
        arrays.append(rng.random((batch, *shape), dtype=np.float32))
    return arrays


def check_input_size(input_size: list[int] | None) -> None:
    """ConfigError when a value of ``--input-size`` is below 1 (checked before anything is built)."""
    from keras_zoo.errors import ConfigError

    if input_size is not None and min(input_size) < 1:
        raise ConfigError(f"--input-size must be >= 1, got {' '.join(map(str, input_size))}")


def at_input_size(
    model: keras.Model, input_size: list[int] | None, build: Callable[[tuple[int, ...]], keras.Model]
) -> keras.Model:
    """``model`` (weights loaded) with inputs of spatial size ``input_size``, so that the export has that shape.

    The network is rebuilt by its factory through ``build``, whose argument checks
    refuse a size the network cannot take (e.g. a U-Net's sizes must be multiples of ``2**depth``), and the
    loaded weights are copied into it (no network keras_zoo registers has weights that depend on the input
    size). Returns ``model`` itself for ``input_size`` None or the size it already has.

    Args:
        model: functional model whose inputs are (batch, *spatial, channels), all of one spatial size.
        input_size: ``--input-size``: one value >= 1 per spatial axis (2 for images, 3 for volumes and for
            dynamic CascadeNet's (frames, H, W)), or None.
        build: ``build(input_shape) -> keras.Model`` of the same architecture at ``(*spatial, channels)``
            (:func:`keras_zoo.cli.inference_model.model_builder`).

    Raises:
        ConfigError: another number of values than the model has spatial axes, or a size the network cannot
            take (its factory's message), before the network is built at that size or traced.
    """
    from keras_zoo.errors import ConfigError, KerasZooError

    if input_size is None:
        return model
    check_input_size(input_size)
    shape = tuple(model.inputs[0].shape)
    axes = len(shape) - 2
    given = " ".join(map(str, input_size))
    if len(input_size) != axes:
        raise ConfigError(
            f"--input-size needs {axes} values for {model.name} (input {model.inputs[0].name} of shape "
            f"{shape[1:]} after the batch axis), got {len(input_size)}: {given}"
        )
    size = tuple(int(s) for s in input_size)
    if all(tuple(t.shape[1:-1]) == size for t in model.inputs):
        return model
    try:
        resized = build((*size, shape[-1]))
    except KerasZooError as exc:
        raise ConfigError(f"--input-size {given}: {exc}") from None
    except TypeError as exc:  # a factory without input_shape
        raise ConfigError(
            f"--input-size {given}: {model.name} cannot be built at another input size ({exc})"
        ) from None
    except ValueError as exc:  # the factory's argument checks, naming the network and the size
        raise ConfigError(f"--input-size {given}: {_layer_message(exc)}") from None
    try:
        resized.set_weights(model.get_weights())
    except ValueError as exc:
        raise ConfigError(
            f"--input-size {given}: {model.name}'s weights depend on its input size ({_layer_message(exc)})"
        ) from None
    return resized


def _flat_outputs(outputs) -> list[np.ndarray]:
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(outputs)]


def keras_outputs(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return _flat_outputs(model(inputs if len(inputs) > 1 else inputs[0], training=False))


def require_converter(fmt: str) -> None:
    """Imports the modules that exporting to ``fmt`` needs, so that a missing or broken one is one line.

    A broken install fails at import with any exception, not only ImportError: onnx 1.19 beside TensorFlow
    2.16 raises AttributeError (it needs an ml_dtypes newer than the one TensorFlow 2.16 pins).

    Raises:
        ConfigError: a module is not installed, or is installed but cannot be imported.
    """
    import importlib

    from keras_zoo.errors import ConfigError

    optional = ("onnxruntime",) if fmt == "onnx" and _onnxruntime_available() else ()
    for name in (*CONVERTER_MODULES[fmt], *optional):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"--format {fmt} needs {name}, which is not installed ({exc}); {ONNX_INSTALL}"
            ) from None
        except Exception as exc:  # whatever a broken install raises, reported in one line
            raise ConfigError(
                f"--format {fmt}: {name} is installed but cannot be imported ({type(exc).__name__}: {exc}); "
                "install versions that work with this TensorFlow (README, Versions)"
            ) from None


def export_model(model, path: str, fmt: str, inputs: list[np.ndarray], overwrite: bool = False) -> None:
    """Writes ``model`` to ``path`` in ``fmt`` ("savedmodel" or "onnx") through a temporary path.

    The ONNX graph is traced inside :func:`real_dft` (real DFT matmuls in place of complex FFTs, which ONNX
    cannot express); the SavedModel keeps the FFTs.

    Raises:
        ConfigError: ``path`` exists without ``overwrite`` or is not an earlier export of ``fmt`` (see
            :func:`check_replaceable`), the format's converter is missing or broken, the model
            cannot be traced for the format (the real DFT needs static height and width), or the
            converted ONNX graph is not valid ONNX (``onnx.checker``, e.g. a complex op that no ONNX opset
            defines), or ``path``'s folder cannot be written; nothing is written or removed then.
    """
    from keras_zoo.errors import ConfigError
    from keras_zoo.layers.fft import real_dft

    require_converter(fmt)
    path = os.path.normpath(path)  # "out/" names the folder "out"
    check_replaceable(path, fmt, overwrite)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=".export-", dir=directory)
    except OSError as exc:  # a file on the way, a read-only file system, /proc
        raise ConfigError(
            f"{path}: cannot write there ({exc.strerror or exc}); choose another --output"
        ) from None
    try:
        keras_outputs(model, inputs)  # Keras' exporters need a model that has been called once
        target = os.path.join(scratch, os.path.basename(path))
        try:
            with real_dft() if fmt == "onnx" else contextlib.nullcontext():
                model.export(target, format=FORMATS[fmt], verbose=False)
        except ValueError as exc:  # e.g. real_dft on free spatial sizes
            raise ConfigError(f"{model.name}: cannot export to {fmt} ({_layer_message(exc)})") from None
        if fmt == "onnx":
            check_onnx(target, model.name)
        replace_output(target, path, fmt, overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # the folder made above: what is left of this export


def _layer_message(exc: Exception) -> str:
    """The original message of an error raised inside a layer call (Keras wraps it in bold in a longer text)."""
    text = str(exc)
    inner = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, flags=re.DOTALL)
    return (inner.group(1) if inner else text).strip().splitlines()[0]


def check_onnx(path: str, model_name: str) -> None:
    """Raises ConfigError naming the first problem when ``path`` is not a valid ONNX model (``onnx.checker``)."""
    import onnx

    from keras_zoo.errors import ConfigError

    try:
        onnx.checker.check_model(path)
    except onnx.checker.ValidationError as exc:
        problem = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{model_name}: does not convert to valid ONNX ({problem})") from None


def run_onnx(path: str, inputs: list[np.ndarray], input_names: list[str]) -> list[np.ndarray]:
    """Runs an ONNX file with onnxruntime; inputs are matched by name, else by position."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if sorted(names) == sorted(input_names):
        feeds = dict(zip(input_names, inputs))
    else:
        feeds = dict(zip(names, inputs))
    return [np.asarray(o) for o in session.run(None, feeds)]


def run_savedmodel(path: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Runs the ``serve`` endpoint of a SavedModel written by ``model.export``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    outputs = loaded.serve(inputs if len(inputs) > 1 else inputs[0])
    return [np.asarray(o) for o in tf.nest.flatten(outputs)]


def verify(model, path: str, fmt: str, inputs: list[np.ndarray]) -> dict:
    """Compares the exported file's outputs with Keras' (inference mode) on ``inputs``.

    Returns:
        ``max_abs_diff`` (largest absolute difference over all outputs), ``output_scale`` (largest absolute
        Keras output value) and ``max_rel_diff`` (the largest per-output ratio of the two); each output's
        ``(abs_diff, scale)`` pair is kept under ``per_output`` for :func:`within_tolerance`.
    """
    expected = keras_outputs(model, inputs)
    if fmt == "onnx":
        got = run_onnx(path, inputs, [t.name for t in model.inputs])
    else:
        got = run_savedmodel(path, inputs)
    if len(got) != len(expected):
        raise AssertionError(f"{path}: {len(got)} outputs, Keras model has {len(expected)}")
    per_output = []
    for g, e in zip(got, expected):
        e = e.astype(np.float64)
        per_output.append((float(np.max(np.abs(g.astype(np.float64) - e))), float(np.max(np.abs(e)))))
    return {
        "max_abs_diff": max(diff for diff, _ in per_output),
        "max_rel_diff": max(
            diff / scale if scale else (np.inf if diff else 0.0) for diff, scale in per_output
        ),
        "output_scale": max(scale for _, scale in per_output),
        "per_output": per_output,
    }


def within_tolerance(per_output: list[tuple[float, float]], atol: float, rtol: float) -> bool:
    """True when every output's ``abs_diff <= atol + rtol * scale`` (``scale`` = its largest Keras value)."""
    return all(diff <= atol + rtol * scale for diff, scale in per_output)


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo export``; returns 0, 1 (export differs from Keras) or 2 (user error).

    The export runs on the TensorFlow backend, whose exporters keras_zoo checks (tf2onnx and SavedModel).
    Under another Keras backend the command runs itself again in a subprocess on TensorFlow (weight files do
    not depend on the backend): Keras' own ONNX exporters there need jax2onnx (JAX) or fail to trace some of
    the networks (torch: AmoebaNet-D, CascadeNet's complex FFTs), and SavedModel needs TensorFlow anyway.
    """
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    argv = list(sys.argv[1:] if argv is None else argv)
    # Keras (and with it TensorFlow) is imported only inside the command, after run_command has quieted
    # TensorFlow's start-up log lines.
    return run_command(build_parser().parse_args, functools.partial(_export_on_this_backend, argv), argv)


def _export_on_this_backend(argv: list[str], args: argparse.Namespace) -> int:
    """Checks that TensorFlow and the format's converter are there and that ``--output`` may be written,
    before the slow part; then exports here on the TensorFlow backend, else through
    :func:`_export_on_tensorflow` (whose process checks the converter).

    Raises:
        ConfigError: TensorFlow or the converter is missing or broken, ``--output`` cannot be replaced, or
            an ``--input-size`` value is below 1.
    """
    import importlib.util

    import keras

    from keras_zoo.errors import ConfigError

    backend = keras.config.backend()
    if backend != "tensorflow" and importlib.util.find_spec("tensorflow") is None:
        raise ConfigError(
            "keras-zoo export runs on the TensorFlow backend (tf2onnx, SavedModel), which is not installed: "
            "pip install tensorflow"
        )
    check_input_size(args.input_size)
    check_replaceable(os.path.normpath(args.output), args.format, args.overwrite)
    if backend == "tensorflow":
        require_converter(args.format)  # before the model is built and its weights read
        return _export(args)
    return _export_on_tensorflow(argv, backend)


def _export_on_tensorflow(argv: list[str], backend: str) -> int:
    """Runs ``keras-zoo export argv`` in a subprocess on the TensorFlow backend (this process runs
    ``backend``); returns its exit status."""
    log.info("exporting on the TensorFlow backend (this process runs %s)", backend)
    command = [sys.executable, "-m", "keras_zoo.cli.main", "export", *argv]
    return subprocess.run(command, env={**os.environ, "KERAS_BACKEND": "tensorflow"}, check=False).returncode


def _export(args: argparse.Namespace) -> int:
    model, train_args = build_model(args)
    model = at_input_size(model, args.input_size, model_builder(args, train_args))
    inputs = sample_inputs(model)
    export_model(model, args.output, args.format, inputs, overwrite=args.overwrite)
    result = {"model": model.name, "format": args.format, "output": args.output}
    if args.no_verify or (args.format == "onnx" and not _onnxruntime_available()):
        result["verified"] = False
    else:
        figures = verify(model, args.output, args.format, inputs)
        per_output = figures.pop("per_output")
        result.update(figures, tolerance=args.tolerance, rtol=args.rtol)
        result["verified"] = within_tolerance(per_output, args.tolerance, args.rtol)
    print(json.dumps(result))
    if result.get("verified") is False and "max_abs_diff" in result:
        print(
            f"error: {args.output} differs from the Keras model by {result['max_abs_diff']:.3g} "
            f"(relative {result['max_rel_diff']:.3g} of output scale {result['output_scale']:.3g}; "
            f"accepted {args.tolerance:g} + {args.rtol:g} * scale)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

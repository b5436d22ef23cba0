"""``keras-zoo export``: write a trained model as a TensorFlow SavedModel or an ONNX file, and check it.

``keras-zoo export --model unet --preset tiny --weights w.h5 --format onnx --output unet.onnx`` uses Keras'
``model.export`` (ONNX through tf2onnx on the TensorFlow backend), writes atomically (a failed export never
leaves a half-written output), then runs the exported file (onnxruntime, or the SavedModel's ``serve``
endpoint) on seeded random inputs and reports the largest absolute difference from the Keras model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile

import numpy as np

from keras_zoo.cli.inference_model import add_model_arguments, build_model, run_cli

log = logging.getLogger(__name__)

FORMATS = {"savedmodel": "tf_saved_model", "onnx": "onnx"}
ONNX_INSTALL = "pip install tf2onnx onnx onnxruntime"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-zoo export", description="Export a model to a SavedModel folder or an ONNX file."
    )
    add_model_arguments(parser)
    g = parser.add_argument_group("export")
    g.add_argument("--format", required=True, choices=sorted(FORMATS))
    g.add_argument("--output", required=True, help="SavedModel folder or .onnx file to write")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")
    g.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        metavar="N",
        help="spatial size for inputs declared with None dims",
    )
    g.add_argument("--no-verify", action="store_true", help="skip running the export against Keras")
    g.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted absolute difference")
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


def _flat_outputs(outputs) -> list[np.ndarray]:
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(outputs)]


def keras_outputs(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return _flat_outputs(model(inputs if len(inputs) > 1 else inputs[0], training=False))


def export_model(model, path: str, fmt: str, inputs: list[np.ndarray], overwrite: bool = False) -> None:
    """Writes ``model`` to ``path`` in ``fmt`` ("savedmodel" or "onnx") through a temporary path.

    Raises:
        ConfigError: ``path`` exists without ``overwrite``, or the format's converter is not installed.
    """
    from keras_zoo.errors import ConfigError

    if os.path.exists(path) and not overwrite:
        raise ConfigError(f"{path}: exists; pass --overwrite to replace it")
    keras_outputs(model, inputs)  # Keras' exporters need a model that has been called once
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".export-", dir=directory)
    try:
        target = os.path.join(scratch, os.path.basename(path))
        try:
            model.export(target, format=FORMATS[fmt], verbose=False)
        except ImportError as exc:
            raise ConfigError(
                f"--format {fmt} needs a converter that is not installed ({exc}); {ONNX_INSTALL}"
            ) from None
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


def verify(model, path: str, fmt: str, inputs: list[np.ndarray]) -> float:
    """Largest absolute difference between the exported file's outputs and Keras' on ``inputs``."""
    expected = keras_outputs(model, inputs)
    if fmt == "onnx":
        got = run_onnx(path, inputs, [t.name for t in model.inputs])
    else:
        got = run_savedmodel(path, inputs)
    if len(got) != len(expected):
        raise AssertionError(f"{path}: {len(got)} outputs, Keras model has {len(expected)}")
    return max(
        float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)))) for g, e in zip(got, expected)
    )


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo export``; returns 0, 1 (export differs from Keras) or 2 (user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)

    def body() -> int:
        args = build_parser().parse_args(argv)
        model, _ = build_model(args)
        inputs = sample_inputs(model, args.input_size)
        export_model(model, args.output, args.format, inputs, overwrite=args.overwrite)
        result = {"model": model.name, "format": args.format, "output": args.output}
        if args.no_verify or (args.format == "onnx" and not _onnxruntime_available()):
            result["verified"] = False
        else:
            result["max_abs_diff"] = verify(model, args.output, args.format, inputs)
            result["verified"] = result["max_abs_diff"] <= args.tolerance
        print(json.dumps(result))
        if result.get("verified") is False and "max_abs_diff" in result:
            print(
                f"error: {args.output} differs from the Keras model by {result['max_abs_diff']:.3g}",
                file=sys.stderr,
            )
            return 1
        return 0

    return run_cli(body, argv, "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())

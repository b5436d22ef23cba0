"""``keras-zoo export``: every network at its tiny preset round-trips to ONNX (onnxruntime output equal to
Keras within 1e-4 absolute + 1e-5 relative to the output's peak) and to a SavedModel; every network called
without ``training`` is in inference mode (what both exporters trace); user errors exit 2 with one line.
CascadeNet's ONNX graph computes its FFTs as real DFT matmuls (ONNX has no complex tensors) and is compared
with the Keras model's FFTs."""

import contextlib
import importlib.util
import json
import os
import pathlib
import re
import sys

import keras
import numpy as np
import pytest

from keras_zoo.cli import export
from keras_zoo.cli.command import is_startup_noise
from keras_zoo.layers import fft
from keras_zoo.registry import get_model, list_models
from keras_zoo.weights import save_h5_weights

ONNX_READY = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not ONNX_READY, reason="needs tf2onnx, onnx and onnxruntime")


def _weights(tmp_path, name):
    path = tmp_path / f"{name}.h5"
    save_h5_weights(get_model(name, preset="tiny"), path)
    return path


def _export(tmp_path, name, fmt, output):
    return export.main(
        ["--model", name, "--preset", "tiny", "--weights", str(_weights(tmp_path, name)), "--format", fmt,
         "--output", str(output)]
    )  # fmt: skip


def _result(capfd):
    return json.loads(capfd.readouterr().out.strip().splitlines()[-1])


# Lines that native libraries log through absl on file descriptor 2, which capfd sees: the CLI quiets
# TensorFlow's start-up lines, but not its errors (TensorFlow's "failed call to cuInit" on a host with CUDA
# libraries and no GPU), nor anything in a process where JAX was imported first (JAX sets
# TF_CPP_MIN_LOG_LEVEL=1, which counts as the user's choice: the TensorFlow subprocess of an export then
# logs).
# In that subprocess the command's own INFO and WARNING records reach stderr too (in this process pytest
# captures them).
NATIVE_LOG_LINE = re.compile(
    r"^([EF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "  # absl's format (is_startup_noise drops I and W)
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] )"  # TensorFlow 2.16's own logger's
)
LOG_RECORD_LINE = re.compile(r"^(INFO|WARNING) [\w.]+: ")


def _stderr(capfd) -> str:
    """What the command wrote to stderr, without log lines (native libraries' and its own)."""
    lines = capfd.readouterr().err.splitlines()
    kept = [
        x for x in lines if not (NATIVE_LOG_LINE.match(x) or LOG_RECORD_LINE.match(x) or is_startup_noise(x))
    ]
    return "\n".join(kept).strip()


@needs_onnx
@pytest.mark.parametrize("name", list_models())
def test_onnx_round_trip(tmp_path, capfd, name):
    assert _export(tmp_path, name, "onnx", tmp_path / f"{name}.onnx") == 0
    result = _result(capfd)
    # Absolute floor plus a bound relative to the output's size: DeepLab's tiny logits are ~1e-9 (the relative
    # figure is the meaningful one), AmoebaNet's ~3e3 (float32 summation order alone gives ~3e-3 there).
    assert result["verified"] and result["max_abs_diff"] <= 1e-4 + 1e-5 * result["output_scale"], result
    assert result["max_rel_diff"] <= 1e-5, result
    assert (tmp_path / f"{name}.onnx").stat().st_size > 1000


@needs_onnx
def test_dynamic_cascadenet_with_data_sharing_round_trips_to_onnx(tmp_path, capfd):
    """The dynamic preset (3D convs, k-space averaging over frames: DFTs of 5D tensors), made small."""
    argv = ["--model", "cascadenet", "--preset", "dynamic", "--set", "input_shape=[4, 12, 8, 2]",
            "--set", "n_cascades=2", "--set", "n_convs=2", "--set", "filters=4", "--format", "onnx",
            "--output", str(tmp_path / "dynamic.onnx")]  # fmt: skip
    assert export.main(argv) == 0
    result = _result(capfd)
    assert result["verified"] and result["max_rel_diff"] <= 1e-5, result


@needs_onnx
def test_free_spatial_sizes_cannot_use_real_dft(tmp_path, capfd):
    argv = ["--model", "cascadenet", "--preset", "tiny", "--set", "input_shape=[null, null, 2]",
            "--format", "onnx", "--output", str(tmp_path / "free.onnx")]  # fmt: skip
    assert export.main(argv) == 2
    err = _stderr(capfd)
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "static height and width" in err, err
    assert list(tmp_path.iterdir()) == []


@needs_onnx
@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="patches the exporter in this process; under other backends the export runs in a subprocess",
)
def test_invalid_onnx_graph_is_one_line_error_and_writes_nothing(tmp_path, capfd, monkeypatch):
    # Without the real DFT, tf2onnx writes CascadeNet's complex FFTs as ``Complex`` nodes no opset defines.
    monkeypatch.setattr(fft, "real_dft", contextlib.nullcontext)
    assert _export(tmp_path, "cascadenet", "onnx", tmp_path / "cascadenet.onnx") == 2
    err = _stderr(capfd)
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Complex" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cascadenet.h5"]


@needs_onnx
@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="changes this process's modules; under other backends the export runs in a subprocess",
)
@pytest.mark.parametrize(
    "module, broken, needle",
    [
        # onnx 1.19 beside TensorFlow 2.16 fails at import with this error (its ml_dtypes is too old)
        ("onnx", "raise AttributeError(\"module 'ml_dtypes' has no attribute 'float4_e2m1fn'\")",
         "onnx is installed but cannot be imported (AttributeError: module 'ml_dtypes' has no attribute"),
        ("tf2onnx", "raise ImportError('No module named tf2onnx')", "needs tf2onnx, which is not installed"),
    ],
)  # fmt: skip
def test_a_missing_or_broken_converter_is_one_line_before_the_model_is_built(
    tmp_path, capfd, monkeypatch, module, broken, needle
):
    fake = tmp_path / "site" / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(broken + "\n")
    importlib.import_module(module)  # the real one, put back in sys.modules when the test ends
    monkeypatch.delitem(sys.modules, module)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    argv = [*TINY_UNET, "--weights", "absent.h5", "--format", "onnx", "--output", str(tmp_path / "u.onnx")]
    assert export.main(argv) == 2
    err = _error_line(capfd)
    assert needle in err, err  # and not the missing weights file: the model was never built
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


@pytest.mark.parametrize("name", list_models())
def test_call_without_training_is_inference(name):
    """``model(x)`` must equal ``model(x, training=False)``: both exporters trace the call without ``training``.

    Keras' image preprocessing layers (``Resizing``) default to ``training=True`` and hand that value on to
    every later layer of a call that passed none; DeepLab's decoder batch norms then used batch statistics and
    its ONNX export differed from Keras by 0.0997. The fix calls those layers with ``training=False``.
    """
    model = get_model(name, preset="tiny")
    inputs = export.sample_inputs(model, [16, 16, 8])
    feed = inputs if len(inputs) > 1 else inputs[0]
    plain = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(model(feed))]
    for got, inference in zip(plain, export.keras_outputs(model, inputs), strict=True):
        np.testing.assert_array_equal(got, inference)


@pytest.mark.parametrize(
    "per_output, accepted",
    [
        ([(1.5e-3, 2870.0)], True),  # float32 summation order at AmoebaNet's logit scale (relative 5e-7)
        ([(5e-5, 1e-9)], True),  # within the absolute floor
        ([(0.0997, 1e-8)], False),  # DeepLab's batch-statistics decoder before the fix
        ([(1e-6, 1.0), (1.0, 2.0)], False),  # every output must pass
    ],
)
def test_tolerance_is_absolute_plus_relative_to_output_scale(per_output, accepted):
    assert export.within_tolerance(per_output, atol=1e-4, rtol=1e-5) is accepted


@pytest.mark.parametrize(
    "name", ["unet", "cascadenet", pytest.param("deeplabv3plus", marks=pytest.mark.large)]
)
def test_savedmodel_round_trip(tmp_path, capfd, name):
    pytest.importorskip("tensorflow")
    assert _export(tmp_path, name, "savedmodel", tmp_path / "saved") == 0
    result = _result(capfd)
    assert result["verified"] and result["max_abs_diff"] <= 1e-4, result
    assert (tmp_path / "saved" / "saved_model.pb").is_file()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["--model", "unet", "--preset", "huge", "--format", "onnx", "--output", "x.onnx"],
            "no preset 'huge'",
        ),
        (["--model", "nope", "--format", "onnx", "--output", "x.onnx"], "unknown model 'nope'"),
        (
            ["--model", "unet", "--weights", "missing.h5", "--format", "onnx", "--output", "x.onnx"],
            "missing.h5",
        ),
        (
            ["--model", "unet", "--set", "filters", "--format", "onnx", "--output", "x.onnx"],
            "expected KEY=VALUE",
        ),
        (["--format", "onnx", "--output", "x.onnx"], "--model is required"),
    ],
)
def test_user_errors_exit_2(tmp_path, capfd, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert export.main(argv) == 2
    err = _stderr(capfd)
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and needle in err, err


# --overwrite replaces only an earlier export of the same format; the user's other files survive byte for byte.


def _snapshot(root) -> dict:
    """``{relative path: file bytes, or None for a folder}`` of everything under ``root``."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            tree[os.path.relpath(os.path.join(folder, name), root)] = pathlib.Path(folder, name).read_bytes()
    return tree


def _training_run(folder) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "args.yaml").write_text("model: unet\npreset: tiny\n")
    (folder / "checkpoints" / "best.h5").write_bytes(bytes(range(256)) * 8)
    (folder / "history.csv").write_text("epoch,loss\n0,0.69\n")


def _error_line(capfd) -> str:
    err = _stderr(capfd)
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


TINY_UNET = ["--model", "unet", "--preset", "tiny"]


def test_existing_output_needs_overwrite(tmp_path, capfd):
    (tmp_path / "saved" / "variables").mkdir(parents=True)
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"an earlier export")
    (tmp_path / "saved" / "variables" / "variables.index").write_bytes(b"index")
    before = _snapshot(tmp_path)
    assert export.main([*TINY_UNET, "--format", "savedmodel", "--output", str(tmp_path / "saved")]) == 2
    assert "saved: exists; pass --overwrite to replace it" in _error_line(capfd)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_overwrite_refuses_a_training_run_folder(tmp_path, capfd, fmt):
    """Was: the whole folder, checkpoints included, deleted and replaced by the .onnx file."""
    _training_run(tmp_path / "run")
    before = _snapshot(tmp_path)
    argv = [*TINY_UNET, "--format", fmt, "--output", str(tmp_path / "run"), "--overwrite"]
    assert export.main(argv) == 2
    err = _error_line(capfd)
    assert f"{tmp_path / 'run'}: exists and is not" in err and "choose another --output" in err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_output_dot_is_one_line_error(tmp_path, capfd, monkeypatch, fmt, overwrite):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    before = _snapshot(tmp_path)
    assert export.main([*TINY_UNET, "--format", fmt, "--output", ".", *overwrite]) == 2
    assert _error_line(capfd).startswith("error: .: exists and is not")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "fmt, name, content",
    [
        ("onnx", "notes.onnx", b"my notes, named .onnx"),  # right name, not an ONNX model
        ("onnx", "weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64),
        ("savedmodel", "model.onnx", b"\x08\x08\x12\x07tf2onnx"),  # an ONNX export is no SavedModel
    ],
)
def test_overwrite_refuses_a_file_of_another_kind(tmp_path, capfd, fmt, name, content):
    (tmp_path / name).write_bytes(content)
    assert export.main([*TINY_UNET, "--format", fmt, "--output", str(tmp_path / name), "--overwrite"]) == 2
    assert f"{name}: exists and is not" in _error_line(capfd)
    assert _snapshot(tmp_path) == {name: content}


@pytest.mark.parametrize("output", ["/proc/keras-zoo.onnx", "{tmp}/notes.txt/model.onnx"])
def test_unwritable_output_is_one_line_error(tmp_path, capfd, output):
    (tmp_path / "notes.txt").write_text("keep")
    output = output.format(tmp=tmp_path)
    assert export.main([*TINY_UNET, "--format", "onnx", "--output", output]) == 2
    assert f"{output}: cannot write there" in _error_line(capfd)
    assert _snapshot(tmp_path) == {"notes.txt": b"keep"}


@needs_onnx
def test_overwrite_replaces_its_own_onnx_export(tmp_path, capfd):
    output = tmp_path / "unet.onnx"
    assert export.main([*TINY_UNET, "--format", "onnx", "--output", str(output)]) == 0
    first = output.read_bytes()
    argv = [*TINY_UNET, "--set", "filters=2", "--format", "onnx", "--output", str(output)]
    assert export.main(argv) == 2  # kept without --overwrite
    assert "exists; pass --overwrite" in _stderr(capfd) and output.read_bytes() == first
    assert export.main([*argv, "--overwrite"]) == 0
    assert _result(capfd)["verified"]
    assert output.read_bytes() != first and sorted(os.listdir(tmp_path)) == ["unet.onnx"]


def test_overwrite_replaces_its_own_savedmodel_export(tmp_path, capfd):
    pytest.importorskip("tensorflow")
    output = tmp_path / "saved"
    assert export.main([*TINY_UNET, "--format", "savedmodel", "--output", str(output), "--no-verify"]) == 0
    first = _snapshot(output)
    argv = [
        *TINY_UNET,
        "--set",
        "filters=2",
        "--format",
        "savedmodel",
        "--output",
        f"{output}/",
        "--overwrite",
    ]
    assert export.main(argv) == 0
    assert _result(capfd)["verified"]
    assert _snapshot(output) != first and sorted(os.listdir(tmp_path)) == ["saved"]  # no scratch left


@needs_onnx
@pytest.mark.parametrize("backend, name", [("jax", "unet"), ("torch", "cascadenet")])
def test_export_under_another_backend_runs_on_tensorflow(tmp_path, backend, name):
    """Keras' own ONNX exporters need jax2onnx under JAX and fail on CascadeNet's FFTs under torch; the
    command runs itself on TensorFlow, from the same weight file."""
    import subprocess
    import sys

    pytest.importorskip(backend)
    output = tmp_path / f"{name}.onnx"
    argv = ["--model", name, "--preset", "tiny", "--weights", str(_weights(tmp_path, name)),
            "--format", "onnx", "--output", str(output)]  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "keras_zoo.cli.main", "export", *argv]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["verified"] is True and result["model"] == name and output.is_file()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr


def test_export_elsewhere_without_tensorflow_is_one_line_error(monkeypatch, capfd):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a),
    )
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    assert export.main(["--model", "unet", "--format", "onnx", "--output", "never.onnx"]) == 2
    err = _stderr(capfd).splitlines()
    assert len(err) == 1 and "runs on the TensorFlow backend" in err[0] and not os.path.exists("never.onnx")


def test_export_elsewhere_refuses_an_output_before_starting_tensorflow(tmp_path, monkeypatch, capfd):
    """Under JAX or torch a refused --output is one line at once, without the TensorFlow subprocess."""
    import subprocess

    (tmp_path / "unet.onnx").write_bytes(b"an earlier export")
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("TensorFlow subprocess started"))
    assert export.main([*TINY_UNET, "--format", "onnx", "--output", str(tmp_path / "unet.onnx")]) == 2
    assert "unet.onnx: exists and is not an ONNX model file" in _error_line(capfd)
    assert (tmp_path / "unet.onnx").read_bytes() == b"an earlier export"


# --input-size: as many values as the network has spatial axes, each a size the network can take (its factory
# checks), and the exported file really has that input shape (the network is rebuilt at it, weights copied).


def _onnx_input_shapes(path) -> list[list]:
    """The ONNX graph's input shapes, None for a free (named) dimension."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [
        [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
        for i in graph.input
    ]


FREE_UNET_CONFIG = {"input_shape": [None, None, 1], "filters": 2, "depth": 2, "dropout": 0.5}


def _free_unet_run(tmp_path):
    """A training output of a crop-trained (free-size) tiny U-Net: args.yaml, model.json and its checkpoint."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "args.yaml").write_text("model: unet\npreset: tiny\n")
    (run / "model.json").write_text(json.dumps({"name": "unet", "variant": None, "config": FREE_UNET_CONFIG}))
    model = get_model("unet", **FREE_UNET_CONFIG)
    save_h5_weights(model, run / "checkpoints" / "best.h5")
    return model, run / "checkpoints" / "best.h5"


FREE_UNET = ["--model", "unet", "--preset", "tiny", "--set", "input_shape=[null, null, 1]"]
TINY_GENESIS = ["--model", "genesis", "--preset", "tiny"]  # (16, 16, 8, 1), depth 3: multiples of 4


@pytest.mark.parametrize(
    "model, size, needle",
    [
        # Was: a 40-line traceback from Concatenate ((2,3,3,32) vs (2,2,2,32) at depth 4), exit 1.
        (FREE_UNET, ["30", "30"], "--input-size 30 30: unet: input spatial size (30, 30) must be divisible by 4"),
        (FREE_UNET, ["0", "0"], "--input-size must be >= 1, got 0 0"),  # was: a Conv2D traceback
        ([*TINY_UNET, "--set", "depth=3"], ["36", "32"], "must be divisible by 8; got 36"),
        (TINY_GENESIS, ["16", "16", "6"], "genesis: spatial size (16, 16, 6) must be divisible by 2**(depth-1) = 4"),
        (TINY_GENESIS, ["16", "-4", "8"], "--input-size must be >= 1"),
        # one value per spatial axis
        (FREE_UNET, ["64", "64", "64"], "--input-size needs 2 values for unet"),  # was: accepted
        (TINY_UNET, ["64"], "--input-size needs 2 values for unet"),
        (TINY_GENESIS, ["16", "16"], "--input-size needs 3 values for genesis"),  # was: accepted and ignored
        (["--model", "cascadenet", "--preset", "tiny"], ["32", "32", "2"], "needs 2 values for cascadenet"),
    ],
)  # fmt: skip
def test_input_size_the_network_cannot_take_is_one_line(tmp_path, capfd, model, size, needle):
    argv = [*model, "--format", "onnx", "--output", str(tmp_path / "x.onnx"), "--input-size", *size]
    assert export.main(argv) == 2
    assert needle in _error_line(capfd)
    assert list(tmp_path.iterdir()) == []


def test_input_size_the_trained_network_cannot_take_is_one_line(tmp_path, capfd):
    """The audit's command: a checkpoint beside its run's args.yaml, rebuilt from model.json."""
    _, weights = _free_unet_run(tmp_path)
    before = _snapshot(tmp_path)
    argv = ["--weights", str(weights), "--format", "onnx", "--output", str(tmp_path / "x.onnx")]
    assert export.main([*argv, "--input-size", "30", "30"]) == 2
    assert "--input-size 30 30: unet: input spatial size (30, 30) must be divisible by 4" in _error_line(
        capfd
    )
    assert _snapshot(tmp_path) == before


@needs_onnx
@pytest.mark.parametrize(
    "model, size, shapes",
    [
        # Was: CascadeNet's fixed 32x32 inputs exported as they were, exit 0.
        (["--model", "cascadenet", "--preset", "tiny"], [48, 40], [[None, 48, 40, 2]] * 3),
        (FREE_UNET, [24, 16], [[None, 24, 16, 1]]),  # was: free dimensions
        (TINY_GENESIS, [24, 16, 8], [[None, 24, 16, 8, 1]]),  # was: (16, 16, 8)
        (TINY_UNET, [32, 32], [[None, 32, 32, 1]]),  # its own size
    ],
)  # fmt: skip
def test_input_size_is_the_exported_input_shape(tmp_path, capfd, model, size, shapes):
    output = tmp_path / "x.onnx"
    argv = [*model, "--format", "onnx", "--output", str(output), "--input-size", *map(str, size)]
    assert export.main(argv) == 0
    assert _result(capfd)["verified"]
    assert _onnx_input_shapes(output) == shapes


@needs_onnx
def test_input_size_export_of_a_training_checkpoint_keeps_its_weights(tmp_path, capfd):
    """The network rebuilt at --input-size computes what the trained (free-size) network computes."""
    import onnxruntime

    model, weights = _free_unet_run(tmp_path)
    output = tmp_path / "unet.onnx"
    argv = [
        "--weights",
        str(weights),
        "--format",
        "onnx",
        "--output",
        str(output),
        "--input-size",
        "20",
        "12",
    ]
    assert export.main(argv) == 0
    assert _result(capfd)["verified"]
    assert _onnx_input_shapes(output) == [[None, 20, 12, 1]]
    x = np.random.default_rng(1).random((2, 20, 12, 1), dtype=np.float32)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5)

"""The train CLI's common machinery, on a toy task (the per-model CLI tests live beside this file)."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import yaml

from keras_zoo.callbacks import read_checkpoint_state
from keras_zoo.cli import train as train_cli
from keras_zoo.cli.tasks import Data, Task
from keras_zoo.datasets.base import ArrayBatches, SeededBatches
from keras_zoo.errors import DataError
from keras_zoo.layers import implementations


class ToyTask(Task):
    """Linear regression on seeded random batches."""

    name = "toy"
    defaults = {"epochs": 3, "steps_per_epoch": 4, "batch_size": 4, "lr": 0.05}

    def add_arguments(self, parser):
        parser.add_argument_group("toy").add_argument("--noise", type=float, default=0.0)

    def model_config(self, args, data):
        return {"variant": None, "config": {}}

    def load_data(self, args):
        if args.data is not None:
            raise DataError(f"{args.data}: toy data cannot be read")
        w = np.array([[1.0], [-2.0], [0.5]], "float32")

        def batch(rng, index):
            x = rng.normal(size=(args.batch_size, 3)).astype("float32")
            return x, x @ w + args.noise * rng.normal(size=(args.batch_size, 1)).astype("float32")

        x = np.random.default_rng(99).normal(size=(8, 3)).astype("float32")
        return Data(SeededBatches(batch, args.steps_per_epoch, args.seed), ArrayBatches(x, x @ w, 4), "toy")

    def optimizer(self, args, steps_per_epoch):
        # Momentum 0.5 converges in the 12 steps of a default run from any initial weights (simulated: at most
        # 0.46 validation MSE over 200 glorot draws); with 0.9 the run oscillated and only TensorFlow's draw for
        # seed 0 ended below 1 (JAX and torch: 7.2-7.9).
        return keras.optimizers.SGD(args.lr, momentum=0.5)

    def loss(self, args, data):
        return "mse"


def toy_model() -> keras.Model:
    """The toy task's network: one dense layer on 3 inputs."""
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(1, name="dense")(inputs))


def register_toy(setitem=lambda mapping, key, value: mapping.__setitem__(key, value)) -> None:
    """Registers the toy network and its recipe (``setitem``: ``monkeypatch.setitem`` to undo it later)."""
    from keras_zoo import registry
    from keras_zoo.cli import tasks

    registry.list_models()  # registers the real networks first
    setitem(
        registry._REGISTRY, "toy", registry.ModelEntry("toy", toy_model, "toy regression", {"default": {}})
    )
    setitem(tasks._task_classes(), "toy", ToyTask)


@pytest.fixture(autouse=True)
def toy_task(monkeypatch):
    register_toy(monkeypatch.setitem)


def run(tmp_path, *extra, output="out"):
    return train_cli.main(["--model", "toy", "--output", str(tmp_path / output), "--verbose", "0", *extra])


def test_end_to_end_outputs(tmp_path, capsys):
    assert run(tmp_path) == 0
    out = tmp_path / "out"
    for name in (
        "args.yaml",
        "history.csv",
        "summary.json",
        "curves.png",
        "checkpoints/last.h5",
        "checkpoints/best.h5",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "toy" and summary["epochs"] == 3 and summary["parameters"] == 4
    assert summary["metrics"]["val_loss"] < 1.0
    assert summary["timing"]["total_steps"] == 12
    assert summary["runtime"]["layers"] == implementations()
    # what Keras compiled with, "auto" resolved: JAX always compiles its steps with XLA
    assert summary["runtime"]["jit_compile"] in ("True", "False")
    if keras.config.backend() == "jax":
        assert summary["runtime"]["jit_compile"] == "True"
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert "step_time_ms" in rows[0] and "val_loss" in rows[0]
    assert yaml.safe_load((out / "args.yaml").read_text())["lr"] == 0.05
    assert "Final performance FPS : " in capsys.readouterr().out


@pytest.mark.parametrize("bf16_is_faster", [False, True])
def test_precision_defaults_to_bf16_only_where_it_measured_faster(tmp_path, monkeypatch, bf16_is_faster):
    monkeypatch.setattr("keras_zoo.runtime.core.bf16_is_faster_on_cpu", lambda: bf16_is_faster)
    assert run(tmp_path, "--epochs", "1", "--device", "cpu") == 0
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    bf16 = bf16_is_faster and keras.config.backend() in ("tensorflow", "torch")
    assert summary["runtime"]["policy"] == ("mixed_bfloat16" if bf16 else "float32")
    assert yaml.safe_load((tmp_path / "out/args.yaml").read_text())["precision"] == "auto"
    assert run(tmp_path, "--epochs", "1", "--device", "cpu", "--precision", "fp32", output="fp32") == 0
    assert json.loads((tmp_path / "fp32/summary.json").read_text())["runtime"]["policy"] == "float32"


def test_resume_continues_and_matches_uninterrupted_run(tmp_path):
    assert run(tmp_path, "--epochs", "4", "--deterministic", output="straight") == 0
    assert run(tmp_path, "--epochs", "2", "--deterministic", output="split") == 0
    assert read_checkpoint_state(str(tmp_path / "split/checkpoints/last.h5")).epoch == 2
    assert run(tmp_path, "--epochs", "4", "--resume", "--deterministic", output="split") == 0
    with open(tmp_path / "split/history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    a, b = toy_model(), toy_model()
    a.load_weights(str(tmp_path / "straight/checkpoints/last.h5"))
    b.load_weights(str(tmp_path / "split/checkpoints/last.h5"))
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_resume_continues_with_the_runs_own_arguments_under_the_flags_given(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1", "--noise", "0.1", "--lr", "0.02", "--batch-size", "3") == 0
    assert (
        train_cli.main(["--resume", "--output", str(tmp_path / "out"), "--epochs", "2", "--verbose", "0"])
        == 0
    )
    recorded = yaml.safe_load((tmp_path / "out/args.yaml").read_text())
    assert (recorded["noise"], recorded["lr"], recorded["batch_size"], recorded["epochs"]) == (
        0.1,
        0.02,
        3,
        2,
    )
    assert train_cli.main(["--model", "unet", "--resume", "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().endswith("out holds a toy run, not unet")


def test_resume_rebuilds_the_runs_preset_network_without_its_flags(tmp_path):
    """A run of --preset tiny resumed with --resume --output alone: U-Net depth 2, 4 filters, its data."""
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    recorded = {"model": "unet", "preset": "tiny", "preset_network": {"depth": 2}, "filters": 4,
                "input_size": [32, 32], "data": "/somewhere/isbi", "backend": "tensorflow", "output": "elsewhere"}  # fmt: skip
    (run_folder / "args.yaml").write_text(yaml.safe_dump(recorded))
    args, task = train_cli.parse_args(["--resume", "--output", str(run_folder), "--filters", "8"])
    assert (task.name, args.preset_network, args.input_size, args.data) == (
        "unet",
        {"depth": 2},
        [32, 32],
        recorded["data"],
    )
    assert (args.filters, args.output, args.backend) == (8, str(run_folder), None)  # flags given now win


def test_config_file_is_overridden_by_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: toy\nepochs: 1\nbatch_size: 2\nnoise: 0.1\n")
    assert (
        train_cli.main(
            ["-c", str(config), "--batch-size", "3", "--output", str(tmp_path / "o"), "--verbose", "0"]
        )
        == 0
    )
    args = yaml.safe_load((tmp_path / "o/args.yaml").read_text())
    assert (args["epochs"], args["batch_size"], args["noise"]) == (1, 3, 0.1)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resume"], "holds no training run"),
        (["--data", "/nonexistent"], "/nonexistent: toy data cannot be read"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--resume", "--weights", "w.h5"], "conflict"),
        (
            ["--distribute", "data-parallel" if keras.config.backend() != "jax" else "mirrored"],
            "needs the jax backend" if keras.config.backend() != "jax" else "needs the tensorflow backend",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, extra, message):
    assert run(tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error: ") and "Traceback" not in err


def test_a_refused_run_leaves_its_output_folder_as_it_was_and_the_fixed_command_runs(tmp_path, monkeypatch):
    """Bad data or a missing device: no half-made run folder that would refuse the corrected command."""
    assert run(tmp_path, "--data", "/nonexistent") == 2
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine").mkdir()  # made by the user: kept, and still empty
    monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 0)
    assert run(tmp_path, "--device", "gpu", output="mine") == 2
    assert list((tmp_path / "mine").iterdir()) == []
    assert run(tmp_path, "--epochs", "1") == 0 and run(tmp_path, "--epochs", "1", output="mine") == 0
    assert (tmp_path / "out/args.yaml").is_file() and (tmp_path / "mine/checkpoints/last.h5").is_file()


def test_unknown_model_and_option(tmp_path, capsys):
    assert train_cli.main(["--model", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert run(tmp_path, "--no-such-flag") == 2
    config = tmp_path / "bad.yaml"
    config.write_text("model: toy\nlearning_rate: 1\n")
    assert train_cli.main(["-c", str(config)]) == 2
    assert "unknown option(s) learning_rate" in capsys.readouterr().err


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1") == 0
    good = (tmp_path / "out/checkpoints/last.h5").read_bytes()
    assert run(tmp_path, "--epochs", "3", "--noise", "1e30", "--resume") == train_cli.EXIT_DIVERGED
    assert "NaN" in capsys.readouterr().err
    assert (tmp_path / "out/checkpoints/last.h5").read_bytes() == good
    assert os.path.exists(tmp_path / "out/checkpoints/best.h5")


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="tf.distribute.MirroredStrategy")
def test_mirrored_strategy_trains_and_resumes_like_a_single_device(tmp_path):
    assert run(tmp_path, "--epochs", "2", "--deterministic", output="plain") == 0
    assert (
        run(tmp_path, "--epochs", "1", "--deterministic", "--distribute", "mirrored", output="mirrored") == 0
    )
    assert (
        run(
            tmp_path,
            "--epochs",
            "2",
            "--deterministic",
            "--distribute",
            "mirrored",
            "--resume",
            output="mirrored",
        )
        == 0
    )
    summary = json.loads((tmp_path / "mirrored/summary.json").read_text())
    assert summary["replicas"] == 1 and summary["initial_epoch"] == 1
    a, b = toy_model(), toy_model()
    a.load_weights(str(tmp_path / "plain/checkpoints/last.h5"))
    b.load_weights(str(tmp_path / "mirrored/checkpoints/last.h5"))
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_only_the_chief_writes_checkpoints_and_logs(tmp_path, monkeypatch):
    if keras.config.backend() == "jax":  # the second process of a multi-host JAX job
        import jax

        monkeypatch.setattr(jax, "process_index", lambda: 1)
    else:
        monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {"type": "worker", "index": 1}}')
    assert run(tmp_path, "--epochs", "1") == 0
    assert not (tmp_path / "out/checkpoints/last.h5").exists()
    assert not (tmp_path / "out/summary.json").exists()


# Tiny configurations of each registered task, enough to load its synthetic data and build its callbacks.
TINY_TASKS = {
    "toy": [],
    "unet": ["--input-size", "32", "32", "--filters", "2", "--batch-size", "2", "--steps-per-epoch", "2"],
    "genesis": [
        "--input-size",
        "16",
        "16",
        "8",
        "--filters",
        "2",
        "--batch-size",
        "2",
        "--steps-per-epoch",
        "2",
    ],
    "cascadenet": [
        "--input-size",
        "32",
        "32",
        "--samples",
        "6",
        "--batch-size",
        "2",
        "--steps-per-epoch",
        "2",
    ],
    "deeplabv3plus": ["--input-size", "33", "33", "--batch-size", "2", "--steps-per-epoch", "2"],
    "amoebanet": ["--input-size", "32", "--batch-size", "2", "--drop-path-keep-prob", "0.9"],
}


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(TINY_TASKS))
def test_training_callbacks_keep_asynchronous_dispatch(tmp_path, name):
    """Keras runs ``on_train_batch_end`` in a thread pool, without a per-step wait, for the CLI's list."""
    if keras.config.backend() != "jax":
        pytest.skip("asynchronous dispatch is checked under JAX (TensorFlow always dispatches synchronously)")
    args, task = train_cli.parse_args(["--model", name, "--output", str(tmp_path), *TINY_TASKS[name]])
    data = task.load_data(args)
    callbacks, timer = train_cli.training_callbacks(args, task, data)
    assert timer in callbacks and len(callbacks) >= 5  # guard, timer, loss scale, checkpoint, CSV (+ task's)
    assert not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    callback_list = keras.callbacks.CallbackList(  # as model.fit builds it, progress bar included
        callbacks, add_history=True, add_progbar=True, model=model, verbose=1, epochs=args.epochs, steps=2
    )
    assert callback_list._async_train, [type(c).__name__ for c in callbacks]


def test_compilation_cache_is_on_by_default_and_off_with_its_flag(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("keras_zoo.runtime.enable_compilation_cache", lambda backend: calls.append(backend))
    assert run(tmp_path, "--epochs", "1") == 0
    assert calls == [keras.config.backend()]
    assert run(tmp_path, "--epochs", "1", "--no-compile-cache", output="nocache") == 0
    assert calls == [keras.config.backend()]
    assert yaml.safe_load((tmp_path / "nocache/args.yaml").read_text())["compile_cache"] is False


def test_fp16_precision_trains_with_loss_scaling(tmp_path):
    assert run(tmp_path, "--epochs", "1", "--device", "cpu", "--precision", "fp16") == 0
    assert json.loads((tmp_path / "out/summary.json").read_text())["runtime"]["policy"] == "mixed_float16"


# ------------------------------------------------------------------------------------------- --preset
def test_preset_sets_the_defaults_of_the_flags_it_names():
    """unet's tiny preset: filters 4 and 32x32 inputs; its depth 2, which no flag takes, goes to the network."""
    args, _ = train_cli.parse_args(["--model", "unet", "--preset", "tiny"])
    assert (args.filters, args.input_size, args.preset, args.preset_network) == (
        4,
        [32, 32],
        "tiny",
        {"depth": 2},
    )
    reference, _ = train_cli.parse_args(["--model", "unet"])
    assert (reference.filters, reference.input_size, reference.preset_network) == (64, [256, 256], None)


def test_preset_arguments_reach_flags_of_other_names_and_flags_still_win():
    """CascadeNet's n_cascades/n_convs are --cascades/--convs; DeepLab's width is --filters / 32."""
    args, _ = train_cli.parse_args(["--model", "cascadenet", "--preset", "tiny", "--cascades", "4"])
    assert (args.cascades, args.convs, args.preset_network) == (4, 3, {})
    args, _ = train_cli.parse_args(["--model", "deeplabv3plus", "--preset", "tiny"])
    assert (args.filters, args.backbone, args.middle_units, args.preset_network) == (2, "xception41", 1, {})


@pytest.mark.parametrize("model", ["unet", "genesis", "cascadenet", "deeplabv3plus", "amoebanet"])
def test_a_tiny_preset_run_trains_the_registrys_tiny_network(model):
    """What train builds for --preset tiny is what predict/summary --preset tiny build (same weights' shapes)."""
    from keras_zoo.registry import get_model

    args, task = train_cli.parse_args(["--model", model, "--preset", "tiny"])
    trained, _ = train_cli.build_model(task, args, None)
    registry = get_model(model, preset="tiny")
    assert [tuple(w.shape) for w in trained.weights] == [tuple(w.shape) for w in registry.weights]


def test_config_file_and_flags_override_the_preset(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: amoebanet\npreset: tiny\nfilters: 24\n")
    args, _ = train_cli.parse_args(["-c", str(config), "--num-cells", "2"])
    # tiny: input 32x32x3, 10 classes, 3 cells, 16 filters, 8 stem filters (every key has a flag)
    assert (args.input_size, args.classes, args.stem_filters) == ([32, 32], 10, 8)
    assert (args.filters, args.num_cells) == (24, 2)


def test_a_preset_run_records_the_preset_network(tmp_path):
    output = tmp_path / "run"
    argv = ["--model", "genesis", "--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "1"]
    assert train_cli.main([*argv, "--batch-size", "2", "--output", str(output), "--verbose", "0"]) == 0
    spec = json.loads((output / "model.json").read_text())
    assert spec["config"]["filters"] == 2 and spec["config"]["input_shape"] == [16, 16, 8, 1]
    assert yaml.safe_load((output / "args.yaml").read_text())["preset"] == "tiny"


# ------------------------------------------------------------------------------------------ --verbose
class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_verbose_auto_is_a_progress_bar_on_a_terminal_and_epoch_lines_elsewhere(tmp_path):
    args, _ = train_cli.parse_args(["--model", "toy"])
    assert args.verbose == "auto"
    assert train_cli.fit_verbosity("auto", _Stream(True)) == 1
    assert train_cli.fit_verbosity("auto", _Stream(False)) == 2
    assert train_cli.fit_verbosity("auto", object()) == 2  # no isatty: not a terminal
    assert [train_cli.fit_verbosity(v, _Stream(True)) for v in (0, 1, 2)] == [0, 1, 2]
    assert train_cli.parse_args(["--model", "toy", "--verbose", "2"])[0].verbose == 2


def test_verbose_takes_auto_or_a_level_in_flags_and_config_files(tmp_path, capsys):
    assert run(tmp_path, "--verbose", "3") == 2
    assert "expected auto, 0, 1 or 2, got '3'" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("model: toy\nverbose: 2\n")
    assert train_cli.parse_args(["-c", str(config)])[0].verbose == 2
    config.write_text("model: toy\nverbose: loud\n")
    assert train_cli.main(["-c", str(config)]) == 2
    assert "c.yaml: verbose: expected auto, 0, 1 or 2, got 'loud'" in capsys.readouterr().err


def test_config_values_are_read_as_the_command_line_reads_them(tmp_path):
    """YAML reads 1e-4 as a string and 'yes' as true: strings convert as on the command line, booleans
    switch flags, one value fills a several-value option."""
    config = tmp_path / "c.yaml"
    config.write_text("model: unet\nlr: 1e-4\nbatch_norm: yes\ninput_size: 64\nepochs: '3'\n")
    args, _ = train_cli.parse_args(["-c", str(config)])
    assert (args.lr, args.batch_norm, args.input_size, args.epochs) == (1e-4, True, [64], 3)


FAKE_TORCH_NPU = """import os, sys, types
with open(os.environ["FAKE_TORCH_NPU_LOG"], "a") as log:
    log.write(f"keras loaded: {'keras' in sys.modules}\\n")
npu = types.SimpleNamespace(set_device=lambda index: None)
"""


@pytest.mark.parametrize("preset", [[], ["--preset", "tiny"]])
def test_device_npu_on_torch_loads_torch_npu_before_keras_and_refuses_a_cpu_placement(tmp_path, preset):
    """``--device npu``: torch_npu is imported before Keras (whose torch backend picks its device on import);
    this stand-in does not move tensors, so the run stops with one line instead of training on the CPU."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    from tests.conftest import REPO

    package = tmp_path / "site" / "torch_npu"
    (package / "contrib").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TORCH_NPU)
    (package / "contrib" / "__init__.py").write_text("")
    (package / "contrib" / "transfer_to_npu.py").write_text("")
    log = tmp_path / "imports.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO}",
        "FAKE_TORCH_NPU_LOG": str(log),
    }
    env.pop("KERAS_BACKEND", None)
    argv = [sys.executable, str(REPO / "train.py"), "--model", "unet", *preset, "--backend", "torch"]
    argv += ["--device", "npu", "--output", str(tmp_path / "out")]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: Keras' torch backend places its tensors on 'cpu', not the NPU")
    )
    assert log.read_text().splitlines() == ["keras loaded: False"]
    assert not (tmp_path / "out").exists()

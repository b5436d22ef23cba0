"""Runs rebuilt from their folder (``model.json``, or the recipe for runs made before it), and the registry
that builds every network: the three bugs of issue 17 and the rules that keep the layers apart."""

import ast
import json
import os
import pathlib
import shutil

import h5py
import numpy as np
import pytest

from keras_zoo.cli.main import main as zoo_main
from keras_zoo.cli.train import main as train_main

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures" / "old_runs"
PACKAGE = pathlib.Path(__file__).parent.parent.parent / "keras_zoo"
MODEL_NAMES = ("unet", "genesis", "cascadenet", "deeplabv3plus", "amoebanet")

TINY_CASCADENET = [
    "--model", "cascadenet", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1", "--filters", "2",
    "--cascades", "1", "--convs", "2", "--centre-lines", "4", "--input-size", "24", "24", "--samples", "3",
    "--verbose", "0", "--workers", "0",
]  # fmt: skip
TINY_UNET = [
    "--model", "unet", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1", "--filters", "2",
    "--input-size", "32", "32", "--verbose", "0", "--workers", "0",
]  # fmt: skip


def _checkpoint_arrays(path) -> list[np.ndarray]:
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        arrays = []
        for layer in root.attrs["layer_names"]:
            group = root[layer]
            arrays += [np.asarray(group[name]) for name in group.attrs["weight_names"]]
        return arrays


def test_a_cascadenet_run_is_rebuilt_from_model_json_for_summary(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main([*TINY_CASCADENET, "--output", str(run)]) == 0
    spec = json.loads((run / "model.json").read_text())
    assert spec["name"] == "cascadenet" and spec["variant"] is None
    assert spec["config"]["input_shape"] == [24, 24, 2] and "weights" not in spec["config"]
    capsys.readouterr()
    assert zoo_main(["summary", "--weights", str(run / "checkpoints/best.h5")]) == 0
    assert "Total params" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["unet", "cascadenet"])
def test_runs_made_before_model_json_still_load(tmp_path, name, capsys):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    assert not (run / "model.json").exists()
    from keras_zoo.cli.inference_model import build_model, read_run

    train_args, spec = read_run(str(run / "args.yaml"))
    assert spec["name"] == name and train_args.model == name
    ns = type(
        "Args", (), {"weights": str(run / "checkpoints/best.h5"), "preset": None, "set": [], "model": None}
    )
    model, _ = build_model(ns)
    expected = _checkpoint_arrays(run / "checkpoints/best.h5")
    got = [w.numpy() if hasattr(w, "numpy") else np.asarray(w) for w in model.get_weights()]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert zoo_main(["summary", "--weights", str(run / "checkpoints/best.h5")]) == 0


def test_a_fine_tuned_run_still_rebuilds_after_its_initial_weights_moved(tmp_path):
    from keras_zoo.registry import get_model

    initial = tmp_path / "init.weights.h5"
    get_model("unet", input_shape=(None, None, 1), filters=2, depth=4).save_weights(str(initial))
    run = tmp_path / "run"
    assert train_main([*TINY_UNET, "--weights", str(initial), "--output", str(run)]) == 0
    os.rename(initial, tmp_path / "moved.weights.h5")
    assert zoo_main(["summary", "--weights", str(run / "checkpoints/best.h5")]) == 0


@pytest.mark.parametrize(
    "command, flag, needle",
    [
        (
            ["predict", "--input", "{run}", "--output", "{out}"],
            ["--overlap", "0"],
            "--overlap applies to genesis",
        ),
        (["evaluate", "--data", "{run}", "--output", "{out}"], ["--flip"], "--flip applies to deeplabv3plus"),
    ],
)
def test_a_flag_of_another_network_is_refused_before_the_network_is_built(
    tmp_path, capsys, monkeypatch, command, flag, needle
):
    """The network is named by the run's args.yaml (or --model); the flag is checked before the seconds a
    full network takes to build, and nothing is written."""
    import keras_zoo.registry

    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "unet", run)

    def no_build(*args, **kwargs):
        raise AssertionError("built the network before checking the flags")

    monkeypatch.setattr(keras_zoo.registry, "get_model", no_build)
    argv = [a.format(run=run, out=tmp_path / "out") for a in command]
    for source in (["--weights", str(run / "checkpoints/best.h5")], ["--model", "unet"]):
        assert zoo_main([*argv, *source, *flag]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rates", [["0", "1", "2"], ["-6", "12", "18"]])
def test_bad_atrous_rates_are_one_line_and_exit_2(tmp_path, capsys, rates):
    argv = ["--model", "deeplabv3plus", "--input-size", "33", "33", "--filters", "2", "--middle-units", "1"]
    argv += ["--backbone", "xception41", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1"]
    argv += ["--synthetic-samples", "2", "--verbose", "0", "--output", str(tmp_path / "run")]
    assert train_main([*argv, "--atrous-rates", *rates]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "atrous_rates must be >= 1" in err[0]


def test_every_registered_network_has_a_recipe_and_a_tiny_preset_and_back():
    from keras_zoo.cli.tasks import get_task, task_names
    from keras_zoo.registry import get_entry, list_models

    assert task_names() == list_models() == sorted(MODEL_NAMES)
    for name in list_models():
        assert "tiny" in get_entry(name).presets
        assert get_task(name).name == name


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_registry_does_not_import_the_models_and_the_runtime_knows_no_model():
    assert not any(m.startswith("keras_zoo.models") for m in _imports(PACKAGE / "registry.py"))
    for path in (PACKAGE / "runtime").glob("*.py"):
        assert not any(m.startswith(("keras_zoo.models", "keras_zoo.cli")) for m in _imports(path)), path
        code = path.read_text().lower()
        assert not [name for name in MODEL_NAMES if f'"{name}"' in code or f"'{name}'" in code], path

"""``keras-zoo list``: every model, its presets, and with --count the parameters of the built default."""

import pytest

from keras_zoo import registry
from keras_zoo.cli.main import cmd_list, main

pytestmark = pytest.mark.backend_agnostic


def test_list_names_every_model_with_reference_counts_and_presets(capsys):
    assert cmd_list([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == registry.list_models()
    unet = next(line for line in lines if line.startswith("unet"))
    assert "reference params 31,031,685" in unet and "tiny" in unet


def test_count_builds_the_default_and_reports_trainable_weights_too(capsys, monkeypatch):
    monkeypatch.setattr(registry, "list_models", lambda: ["genesis"])
    assert cmd_list(["--count"]) == 0
    # reference_specs.md: 16,320,257 trainable + 4,672 batch-norm statistics
    assert "built 16,324,929 (16,320,257 trainable)" in capsys.readouterr().out


def test_usage_errors_and_help_go_through_the_cli_skeleton(capsys):
    assert cmd_list(["--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert cmd_list(["--help"]) == 0
    assert "--markdown" in capsys.readouterr().out


def test_info_says_what_auto_picks_here(capsys, monkeypatch):
    """The process's policy is float32 before any run; "auto" is what a training run would take."""
    import json

    import keras

    from keras_zoo import runtime

    monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 0)
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    expected = runtime.auto_precision(keras.config.backend(), "cpu")
    assert info["auto"] == {"device": "cpu", "precision": expected}
    assert info["backend"] == keras.config.backend() and "layers" in info

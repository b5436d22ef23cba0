"""``keras-zoo summary``: the layer table and parameter count of a preset, and a clear error for --plot
without pydot/Graphviz."""

import importlib.util
import shutil

import pytest

from keras_zoo.cli import main as cli_main
from keras_zoo.registry import get_model

PLOT_READY = importlib.util.find_spec("pydot") is not None and shutil.which("dot") is not None


def test_prints_layers_and_parameter_count(capsys):
    assert cli_main.main(["summary", "--model", "unet", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    model = get_model("unet", preset="tiny")
    assert f"Total params: {model.count_params():,}" in out
    assert all(layer.name in out for layer in model.layers[1:])


@pytest.mark.skipif(PLOT_READY, reason="pydot and Graphviz are installed here")
def test_plot_without_graphviz_is_a_one_line_error(tmp_path, capsys):
    code = cli_main.main(
        ["summary", "--model", "unet", "--preset", "tiny", "--plot", str(tmp_path / "u.png")]
    )
    captured = capsys.readouterr()
    assert code == 2 and "pydot and Graphviz" in captured.err and "Traceback" not in captured.err
    assert "Total params" not in captured.out  # refused before the model is built and its table printed
    assert not (tmp_path / "u.png").exists()


@pytest.mark.skipif(not PLOT_READY, reason="needs pydot and Graphviz")
def test_plot_writes_the_diagram(tmp_path):
    assert (
        cli_main.main(["summary", "--model", "unet", "--preset", "tiny", "--plot", str(tmp_path / "u.png")])
        == 0
    )
    assert (tmp_path / "u.png").stat().st_size > 1000


def test_an_existing_plot_file_is_kept_without_overwrite(tmp_path, capsys):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    assert cli_main.main(["summary", "--model", "unet", "--preset", "tiny", "--plot", str(mine)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {mine}: exists; pass --overwrite to replace it"
    assert mine.read_bytes() == b"my picture"


def test_unknown_model_is_a_one_line_error(capsys):
    assert cli_main.main(["summary", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_set_overrides_the_preset_and_a_bad_item_is_one_line(capsys):
    assert cli_main.main(["summary", "--model", "unet", "--preset", "tiny", "--set", "filters=2"]) == 0
    expected = get_model("unet", preset="tiny", filters=2).count_params()
    assert f"Total params: {expected:,}" in capsys.readouterr().out
    assert cli_main.main(["summary", "--model", "unet", "--set", "filters"]) == 2
    assert capsys.readouterr().err == "error: --set 'filters': expected KEY=VALUE\n"

"""The quick-start configs (configs/quickstart/*.yaml) run end to end through train.py at a tiny size."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
import yaml

from keras_zoo.cli.train import main

REPO = pathlib.Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart"
# Flags that shrink each quick start to seconds; everything else comes from the config file.
TINY = {
    "unet": ["--filters", "4", "--input-size", "32", "32"],
}


def test_every_quickstart_config_names_its_model_and_has_a_tiny_override():
    configs = sorted(QUICKSTART.glob("*.yaml"))
    assert [c.stem for c in configs] == sorted(TINY)
    for config in configs:
        assert yaml.safe_load(config.read_text())["model"] == config.stem


@pytest.mark.parametrize("model", sorted(TINY))
def test_quickstart_config_trains_and_writes_a_finite_metric_and_a_picture(model, tmp_path, caplog):
    out = tmp_path / "run"
    argv = ["-c", str(QUICKSTART / f"{model}.yaml"), *TINY[model]]
    argv += ["--epochs", "1", "--steps-per-epoch", "2", "--verbose", "0", "--output", str(out)]
    with caplog.at_level("INFO", logger="keras_zoo"):
        assert main(argv) == 0
    assert f"pictures: {out / 'previews.png'}, {out / 'curves.png'}" in caplog.text  # where to look
    assert f"python train.py --model {model}" in caplog.text  # and what to run next
    for name in ("args.yaml", "summary.json", "history.csv", "previews.png", "checkpoints/last.h5"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == model
    assert summary["metrics"] and all(math.isfinite(v) for v in summary["metrics"].values())
    recorded = yaml.safe_load((out / "args.yaml").read_text())
    config = yaml.safe_load((QUICKSTART / f"{model}.yaml").read_text())
    untouched = {k: v for k, v in config.items() if f"--{k.replace('_', '-')}" not in argv}
    assert {k: recorded[k] for k in untouched} == untouched  # the config's values reached the run

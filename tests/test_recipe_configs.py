"""Every recipe in configs/ parses as train.py reads it, and each of its values reaches the arguments."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from keras_zoo.cli.train import parse_args

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_is_a_recipe_for_every_network():
    from keras_zoo.registry import list_models

    names = {yaml.safe_load(c.read_text())["model"] for c in CONFIGS}
    assert names == set(list_models())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_recipe_config_values_reach_the_parsed_arguments(config):
    values = yaml.safe_load(config.read_text())
    args, task = parse_args(["-c", str(config)])
    assert task.name == values["model"]
    for key, value in values.items():
        parsed = getattr(args, key)
        assert (list(parsed) if isinstance(parsed, tuple) else parsed) == value, key

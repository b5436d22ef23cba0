"""get_model names an argument of the wrong type at once, not from deep inside Keras."""

import numpy as np
import pytest

from keras_zoo.errors import ConfigError
from keras_zoo.factory_arguments import check_factory_arguments
from keras_zoo.registry import get_model

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize(
    "name, config, message",
    [
        ("unet", {"filters": "8"}, "unet: filters must be an integer, got '8'"),
        ("unet", {"filters": 3.5}, "unet: filters must be an integer, got 3.5"),
        ("unet", {"batch_norm": "no"}, "unet: batch_norm must be true or false, got 'no'"),
        ("genesis", {"input_shape": "16"}, "genesis: input_shape must be a list, got '16'"),
        (
            "cascadenet",
            {"noise_lambda": "0.5"},
            "cascadenet: noise_lambda must be a number or None, got '0.5'",
        ),
        (
            "deeplabv3plus",
            {"atrous_rates": [6, "12", 18]},
            "atrous_rates must be a list of which each is an integer",
        ),
    ],
)
def test_wrong_types_are_named(name, config, message):
    with pytest.raises(ConfigError) as info:
        get_model(name, preset="tiny", **config)
    assert message in str(info.value)


def test_numpy_scalars_lists_and_none_where_allowed_pass():
    model = get_model("unet", preset="tiny", filters=np.int64(4), input_shape=[None, None, 1], dropout=0)
    assert model.count_params() == get_model("unet", preset="tiny").count_params()


def test_hints_it_cannot_read_or_check_are_left_alone():
    def factory(path: "NotImportable", callback: "typing.Callable"):  # noqa: F821
        return path

    check_factory_arguments("demo", factory, {"path": 3, "callback": "x"})

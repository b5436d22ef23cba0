"""A training run under JAX or torch never loads TensorFlow: not to seed, not to log to TensorBoard, not to
resize a network for prediction.

TensorFlow is installed with keras_zoo; loaded beside another backend it costs start-up time and host memory
and initialises CUDA a second time in the process (docs/benchmarks.md, "Seeding and TensorBoard without
TensorFlow").
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN_TOY = """
import sys
from keras_zoo.cli import train
from tests.cli.test_train_cli import register_toy
register_toy()
code = train.main(sys.argv[1:])
print("tensorflow loaded:", "tensorflow" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_training_run_loads_no_tensorflow_and_logs_to_tensorboard(tmp_path, backend):
    pytest.importorskip(backend)
    pytest.importorskip("tensorboard")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    argv = ["--model", "toy", "--output", str(tmp_path / "run"), "--epochs", "2", "--seed", "5"]
    out = subprocess.run(
        [sys.executable, "-c", TRAIN_TOY, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "tensorflow loaded: False"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split in ("train", "validation"):
        accumulator = EventAccumulator(str(tmp_path / "run" / "tensorboard" / split))
        accumulator.Reload()
        assert [event.step for event in accumulator.Tensors("epoch_loss")] == [0, 1]


RESIZE_GENESIS = """
import sys
import keras_zoo
from keras_zoo.inference.common import with_input_size
resized = with_input_size(keras_zoo.get_model("genesis", preset="tiny"), (32, 32, 16))
print(resized.input_shape, "tensorflow loaded:", "tensorflow" in sys.modules)
"""


def test_resizing_a_network_for_prediction_loads_no_tensorflow():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, "-c", RESIZE_GENESIS], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "(None, 32, 32, 16, 1) tensorflow loaded: False"

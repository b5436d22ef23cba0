"""``train.py --workers``: validated, and handed to every network's training reader."""

import pytest

from keras_zoo.cli.train import main, parse_args

SMALL = {
    "unet": ["--input-size", "32", "32"],
    "genesis": ["--input-size", "16", "16", "8", "--cubes", "8"],
    "cascadenet": ["--input-size", "32", "32", "--samples", "6"],
    "deeplabv3plus": ["--input-size", "33", "33", "--synthetic-samples", "4"],
    "amoebanet": ["--input-size", "32", "--synthetic-samples", "8"],
}


@pytest.mark.parametrize("value", ["-1", "-4"])
def test_negative_workers_are_a_one_line_user_error(tmp_path, capsys, value):
    argv = ["--model", "unet", *SMALL["unet"], "--workers", value, "--output", str(tmp_path / "run")]
    assert main([*argv, "--epochs", "1", "--steps-per-epoch", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"error: --workers must be an integer >= 0, got {value}"]


@pytest.mark.parametrize("model", [*sorted(SMALL), "amoebanet --aux-head"])
def test_every_training_reader_gets_the_workers(model):
    model, *extra = model.split()
    argv = ["--model", model, *SMALL[model], *extra, "--steps-per-epoch", "2", "--workers", "3"]
    args, task = parse_args(argv)
    assert args.workers == 3
    train = task.load_data(args).train
    assert train.workers == 3 and train.max_queue_size == 6
    args, task = parse_args(["--model", model, *SMALL[model], "--steps-per-epoch", "2"])
    assert args.workers is None  # every core but one, chosen by the reader

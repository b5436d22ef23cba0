"""Test-only entry point: ``python tests/run_toy_train.py [train.py flags]`` trains the toy task of
tests/cli/test_train_cli.py in a subprocess (used by the crash-resume test)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_zoo.cli import train  # noqa: E402
from tests.cli.test_train_cli import register_toy  # noqa: E402

if __name__ == "__main__":
    register_toy()
    sys.exit(train.main(["--model", "toy", *sys.argv[1:]]))

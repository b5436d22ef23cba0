"""The README's model table matches the registry, and its Python example runs."""

import pathlib
import re

import pytest

from keras_zoo.cli.main import model_table
from tests.conftest import readme_test_command

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_model_table_is_generated_from_the_registry():
    text = README.read_text()
    table = re.search(r"<!-- model-table:start.*?-->\n(.*?)\n<!-- model-table:end -->", text, re.S).group(1)
    assert table == model_table()


@pytest.mark.backend_agnostic
def test_python_example_runs():
    code = re.search(r"## Python API\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert readme_test_command() in ci.splitlines()

"""The PyTorch ports in benchmarks/torch_ports are checked against the Keras models where torch is installed.

CI does not install torch, so these tests skip there; run them with torch importable (``pip install
torch`` or PYTHONPATH pointing at a private install).
"""

import importlib
import pathlib
import sys

import pytest

PORTS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "torch_ports"


@pytest.fixture
def load_port():
    """``load_port("unet")`` imports benchmarks/torch_ports/unet.py (skips the test without torch)."""
    pytest.importorskip("torch")
    if str(PORTS) not in sys.path:
        sys.path.insert(0, str(PORTS))
    return importlib.import_module

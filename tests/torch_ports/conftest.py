"""The PyTorch ports in benchmarks/torch_ports are checked against the Keras models where torch is installed.

CI does not install torch, so these tests skip there; run them with torch importable (``pip install
torch`` or PYTHONPATH pointing at a private install). Shared non-fixture helpers are in ``helpers.py``.
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


@pytest.fixture
def port(load_port, request):
    """The port named by the test module's ``PORT`` (e.g. ``"unet"``), torch on one thread and seeded 0."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return load_port(request.module.PORT)


@pytest.fixture
def harness(load_port):
    """benchmarks/torch_ports/harness.py (``count_parameters``, ``time_training``)."""
    return load_port("harness")

"""The device a run asks for is the one its backend puts tensors on (keras_zoo.runtime.placement)."""

import importlib.machinery
import os
import sys
import types

import keras
import pytest

from keras_zoo import runtime
from keras_zoo.errors import ConfigError
from keras_zoo.runtime.placement import keep_on_cpu, pin_device_before_keras

pytestmark = pytest.mark.backend_agnostic


@pytest.fixture
def fake_torch_npu(monkeypatch):
    """A stand-in ``torch_npu`` with ``contrib.transfer_to_npu`` in ``sys.modules``; records ``set_device``."""
    calls = []
    for name in ("torch_npu", "torch_npu.contrib", "torch_npu.contrib.transfer_to_npu"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["torch_npu"].npu = types.SimpleNamespace(set_device=calls.append)
    return calls


@pytest.fixture
def keras_not_loaded(monkeypatch):
    """As in a fresh process, before ``import keras``."""
    monkeypatch.delitem(sys.modules, "keras")


def test_nothing_is_pinned_once_keras_is_loaded(monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    pin_device_before_keras("jax", "cpu")
    assert "JAX_PLATFORMS" not in os.environ


@pytest.mark.usefixtures("keras_not_loaded")
@pytest.mark.parametrize(
    "backend, device, variable, value",
    [("jax", "cpu", "JAX_PLATFORMS", "cpu"), ("torch", "cpu", "CUDA_VISIBLE_DEVICES", "")],
)
def test_cpu_is_pinned_in_the_environment_before_keras_loads(monkeypatch, backend, device, variable, value):
    monkeypatch.delenv(variable, raising=False)
    pin_device_before_keras(backend, device)
    assert os.environ[variable] == value


@pytest.mark.usefixtures("keras_not_loaded")
@pytest.mark.parametrize(
    "backend, device", [("jax", "gpu"), ("torch", "auto"), ("tensorflow", "cpu"), (None, "cpu")]
)
def test_other_devices_leave_the_environment_alone(monkeypatch, backend, device):
    for variable in ("JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(variable, raising=False)
    pin_device_before_keras(backend, device)
    assert {"JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES"}.isdisjoint(os.environ)


@pytest.mark.usefixtures("keras_not_loaded")
def test_npu_on_torch_imports_torch_npu_and_transfer_to_npu(monkeypatch, fake_torch_npu):
    imported = []
    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name) or real_import(name))
    pin_device_before_keras("torch", "npu")
    assert imported == ["torch_npu", "torch_npu.contrib.transfer_to_npu"]


def test_open_torch_npu_sets_the_device_when_keras_places_tensors_on_it(fake_torch_npu):
    from keras_zoo.runtime.npu import open_npu

    adapter = open_npu(
        "torch", device_id=1, installed=lambda m: m == "torch_npu", tensor_device=lambda: "npu:1"
    )
    assert adapter == "torch_npu" and fake_torch_npu == [1]


def test_open_torch_npu_refuses_a_keras_that_still_places_tensors_on_the_cpu(fake_torch_npu):
    """Keras' torch backend loaded before torch_npu keeps the CPU: an error, not a silent CPU run."""
    from keras_zoo.runtime.npu import open_npu

    with pytest.raises(ConfigError, match=r"on 'cpu', not the NPU.*KERAS_TORCH_DEVICE=npu:0"):
        open_npu("torch", installed=lambda m: m == "torch_npu", tensor_device=lambda: "cpu")


def test_cpu_on_torch_refuses_a_keras_that_places_tensors_on_a_gpu():
    keep_on_cpu("torch", tensor_device=lambda: "cpu")
    with pytest.raises(ConfigError, match=r"device='cpu' but .* on 'cuda:0'.*CUDA_VISIBLE_DEVICES="):
        keep_on_cpu("torch", tensor_device=lambda: "cuda:0")


def test_cpu_on_jax_makes_the_cpu_the_default_device():
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_default_device
    try:
        keep_on_cpu("jax")
        assert jax.config.jax_default_device == jax.devices("cpu")[0]
        assert jax.numpy.zeros(()).devices() == {jax.devices("cpu")[0]}
    finally:
        jax.config.update("jax_default_device", previous)


def test_configure_cpu_keeps_jax_and_torch_on_the_cpu(monkeypatch):
    """Outside TensorFlow (which hides its GPUs), ``configure(device="cpu")`` goes through keep_on_cpu."""
    calls = []
    monkeypatch.setattr("keras_zoo.runtime.core.keep_on_cpu", calls.append)
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    assert runtime.configure(device="cpu", precision="fp32").device == "cpu"
    assert calls == ["torch"]

"""Data-parallel steps on 2 logical CPU devices equal the single-device step on the same global batch."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_zoo.errors import ConfigError
from keras_zoo.runtime.distribute import distribution_scope, is_chief, virtual_cpu_devices

SCRIPT = pathlib.Path(__file__).with_name("distributed_step.py")
REPO = SCRIPT.parents[2]


def _run(tmp_path, backend, strategy, extra_env=None):
    if backend == "jax":
        pytest.importorskip("jax")
    out = tmp_path / f"{backend}-{strategy}.npz"
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), **(extra_env or {})}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), strategy, str(out)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = np.load(out, allow_pickle=False)
    return int(data["replicas"]), [data[f"arr_{i}"] for i in range(len(data.files) - 1)]


@pytest.mark.parametrize(
    "backend, strategy, env",
    [
        ("tensorflow", "mirrored", {}),
        ("jax", "data-parallel", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}),
    ],
)
def test_two_device_step_equals_single_device(tmp_path, backend, strategy, env):
    replicas, parallel = _run(tmp_path, backend, strategy, env)
    assert replicas == 2
    _, single = _run(tmp_path, backend, "none")
    for a, b in zip(parallel, single):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_strategy_backend_mismatch_and_unknown():
    import keras

    other = "data-parallel" if keras.config.backend() == "tensorflow" else "mirrored"
    with pytest.raises(ConfigError, match="needs the"):
        distribution_scope(other)
    with pytest.raises(ConfigError, match="must be one of"):
        distribution_scope("horovod")


@pytest.mark.skipif(keras.config.backend() == "jax", reason="JAX names its chief by process index")
def test_chief_from_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {"type": "worker", "index": 1}}')
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {"type": "worker", "index": 0}}')
    assert is_chief()


@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX's process index")
def test_chief_is_process_zero_on_jax(monkeypatch):
    import jax

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {"type": "worker", "index": 1}}')  # not read
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert not is_chief()
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    assert is_chief()


DEVICE_COUNT = "--xla_force_host_platform_device_count"


@pytest.mark.backend_agnostic
def test_virtual_cpu_devices_sets_one_device_count_in_xla_flags(monkeypatch):
    """Before JAX is imported, the count replaces an earlier one and keeps the other flags."""
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("XLA_FLAGS", f"--xla_dump_to=/tmp/x {DEVICE_COUNT}=16")
    virtual_cpu_devices(1)
    assert os.environ["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {DEVICE_COUNT}=1"


@pytest.mark.backend_agnostic
def test_virtual_cpu_devices_after_jax_import_needs_the_same_count(monkeypatch):
    """Once JAX is imported only the count it started with passes; "=1" is not taken for "=16"."""
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    monkeypatch.setitem(sys.modules, "jax", sys.modules.get("jax", object()))
    monkeypatch.setenv("XLA_FLAGS", f"{DEVICE_COUNT}=16")
    virtual_cpu_devices(16)
    with pytest.raises(ConfigError, match=f"{DEVICE_COUNT}=1 before JAX"):
        virtual_cpu_devices(1)
    assert os.environ["XLA_FLAGS"] == f"{DEVICE_COUNT}=16"


@pytest.mark.backend_agnostic
def test_validation_batches_that_do_not_split_over_the_devices_are_refused():
    """Keras' DataParallel shards every batch: a validation batch of 1 on 2 devices was a JAX traceback at
    the end of the first epoch (the U-Net validates whole slices one at a time)."""
    from keras_zoo.datasets.base import ArrayBatches
    from keras_zoo.runtime.distribute import check_split_batches

    def batches(samples, batch_size):
        return ArrayBatches(np.zeros((samples, 2)), np.zeros(samples), batch_size)

    assert batches(10, 4).batch_sizes() == {4, 2} and batches(3, 8).batch_sizes() == {3}
    check_split_batches(batches(10, 4), 2)  # 4, 4, 2
    check_split_batches(batches(5, 1), 1)  # one device: anything goes
    check_split_batches(None, 2)  # no validation data
    with pytest.raises(ConfigError, match="validation batches of 1 sample do not split over 2 devices"):
        check_split_batches(batches(5, 1), 2)
    with pytest.raises(ConfigError, match="batches of 3 samples do not split over 2"):
        check_split_batches(batches(7, 4), 2)  # 4, 3

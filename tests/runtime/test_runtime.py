import keras
import pytest

from keras_zoo import runtime
from keras_zoo.errors import ConfigError
from keras_zoo.runtime.npu import PRECISION_MODES, npu_session_config, select_npu_adapter


def test_precision_policies():
    assert runtime.precision_policy("fp32", "cpu") == "float32"
    assert runtime.precision_policy("mixed", "gpu") == "mixed_float16"
    assert runtime.precision_policy("mixed", "npu") == "mixed_float16"
    assert runtime.precision_policy("mixed", "cpu") == "mixed_bfloat16"
    assert runtime.precision_policy("bf16", "gpu") == "mixed_bfloat16"
    with pytest.raises(ConfigError, match="precision"):
        runtime.precision_policy("fp8", "cpu")


@pytest.mark.parametrize(
    "flags, backend, device, expected",
    [
        (["avx512f", "avx512_bf16", "amx_bf16"], "tensorflow", "cpu", "mixed"),
        (["avx512f", "avx512_bf16"], "tensorflow", "cpu", "fp32"),  # bf16 without AMX measured slower
        (["avx2", "fma"], "tensorflow", "cpu", "fp32"),
        (["avx512f", "avx512_bf16", "amx_bf16"], "tensorflow", "gpu", "fp32"),
        (["avx512f", "avx512_bf16", "amx_bf16"], "torch", "cpu", "mixed"),
        (["avx512f", "avx512_bf16", "amx_bf16"], "jax", "cpu", "fp32"),  # XLA's CPU convs do not use AMX
    ],
)
def test_auto_precision_is_bf16_only_where_it_measured_faster(monkeypatch, flags, backend, device, expected):
    monkeypatch.setattr("keras_zoo.runtime.core.cpu_flags", lambda: flags)
    assert runtime.auto_precision(backend, device) == expected


def test_xla_is_kept_off_where_it_fails_to_compile():
    gpu_mixed = runtime.RuntimeConfig("tensorflow", "gpu", "mixed", "mixed_float16", True)
    assert gpu_mixed.xla_fails("deeplabv3plus") and gpu_mixed.jit_for("deeplabv3plus") is False
    assert gpu_mixed.jit_for("unet") is True
    gpu_fp32 = runtime.RuntimeConfig("tensorflow", "gpu", "fp32", "float32", True)
    assert not gpu_fp32.xla_fails("deeplabv3plus") and gpu_fp32.jit_for("deeplabv3plus") is True
    jax_mixed = runtime.RuntimeConfig("jax", "cpu", "mixed", "mixed_bfloat16", "auto")
    assert not jax_mixed.xla_fails("deeplabv3plus")


def test_configure_resolves_auto_precision(monkeypatch):
    monkeypatch.setattr("keras_zoo.runtime.core.cpu_flags", lambda: ["avx2"])
    config = runtime.configure(device="cpu", precision="auto")
    assert (config.precision, config.policy) == ("fp32", "float32")
    monkeypatch.setattr("keras_zoo.runtime.core.cpu_flags", lambda: ["amx_bf16"])
    config = runtime.configure(device="cpu")
    bf16 = keras.config.backend() in ("tensorflow", "torch")
    expected = ("mixed", "mixed_bfloat16") if bf16 else ("fp32", "float32")
    assert (config.precision, config.policy) == expected
    keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ConfigError, match="precision"):
        runtime.configure(device="cpu", precision="fp8")


def test_configure_cpu_sets_policy_and_describe_reports_it():
    config = runtime.configure(device="cpu", precision="mixed", seed=3)
    assert config.device == "cpu" and config.policy == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    info = runtime.describe()
    assert info["backend"] == keras.config.backend() and info["policy"] == "mixed_bfloat16"
    assert info["keras"] == keras.__version__


def test_configure_rejects_unknown_device_and_missing_gpu(monkeypatch):
    with pytest.raises(ConfigError, match="device"):
        runtime.configure(device="tpu")
    monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 0)
    with pytest.raises(ConfigError, match="sees no GPU"):
        runtime.configure(device="gpu")


@pytest.mark.parametrize(
    "backend, installed, expected",
    [
        ("torch", {"torch_npu"}, "torch_npu"),
        ("tensorflow", {"npu_device", "npu_bridge"}, "npu_device"),
        ("tensorflow", {"npu_bridge"}, "npu_bridge"),
    ],
)
def test_npu_adapter_selection(backend, installed, expected):
    assert select_npu_adapter(backend, installed=lambda m: m in installed) == expected


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "jax"])
def test_npu_without_adapter_names_what_to_install(backend):
    with pytest.raises(ConfigError, match="torch_npu.*npu_device.*npu_bridge"):
        select_npu_adapter(backend, installed=lambda m: False)


def test_configure_npu_without_adapter_fails_cleanly():
    with pytest.raises(ConfigError, match="Ascend adapter|not supported"):
        runtime.configure(device="npu")


@pytest.mark.parametrize("mode", PRECISION_MODES)
def test_npu_session_config(mode):
    pytest.importorskip("tensorflow")
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    config = npu_session_config(mode, use_off_line=True, iterations_per_loop=10, mix_compile_mode=False)
    rewrite = config.graph_options.rewrite_options
    (op,) = rewrite.custom_optimizers
    assert op.name == "NpuOptimizer"
    assert op.parameter_map["use_off_line"].b is True
    assert op.parameter_map["precision_mode"].s == mode.encode()
    assert op.parameter_map["iterations_per_loop"].i == 10
    assert op.parameter_map["mix_compile_mode"].b is False
    assert rewrite.remapping == RewriterConfig.OFF
    assert rewrite.memory_optimization == RewriterConfig.NO_MEM_OPT


def test_npu_session_config_rejects_unknown_mode():
    with pytest.raises(ConfigError, match="precision_mode"):
        npu_session_config("fp64")

import sys
import types

import keras
import pytest

from keras_zoo import runtime
from keras_zoo.errors import ConfigError
from keras_zoo.runtime import traits
from keras_zoo.runtime.npu import PRECISION_MODES, npu_session_config, select_npu_adapter


def test_precision_policies():
    assert runtime.precision_policy("fp32", "cpu") == "float32"
    assert runtime.precision_policy("mixed", "cpu") == "mixed_bfloat16"
    assert runtime.precision_policy("mixed", "npu") == "mixed_float16"
    assert runtime.precision_policy("bf16", "gpu") == "mixed_bfloat16"
    assert runtime.precision_policy("fp16", "cpu") == "mixed_float16"
    with pytest.raises(ConfigError, match="precision"):
        runtime.precision_policy("fp8", "cpu")


@pytest.mark.parametrize(
    "capability, expected",
    [
        ((9, 0), "mixed_bfloat16"),  # Hopper
        ((8, 0), "mixed_bfloat16"),  # Ampere A100
        ((8, 6), "mixed_bfloat16"),
        ((7, 5), "mixed_float16"),  # Turing: float16 tensor cores only
        ((7, 0), "mixed_float16"),  # Volta
        (None, "mixed_float16"),  # unidentified GPU: float16 is the safe mixed precision
    ],
)
def test_mixed_on_a_gpu_is_bfloat16_from_compute_capability_8(capability, expected):
    assert runtime.precision_policy("mixed", "gpu", capability) == expected


AMX_XEON = (["avx512f", "avx512_bf16", "amx_bf16"], ("GenuineIntel", 6))
AVX512_BF16_XEON = (["avx512f", "avx512_bf16"], ("GenuineIntel", 6))  # Cooper Lake: no AMX
ZEN5 = (["avx512f", "avx512_bf16"], ("AuthenticAMD", 26))
ZEN4 = (["avx512f", "avx512_bf16"], ("AuthenticAMD", 25))
AVX2_EPYC = (["avx2", "fma"], ("AuthenticAMD", 23))


def fake_cpu(monkeypatch, cpu: tuple[list[str], tuple[str, int] | None]) -> None:
    """Makes the runtime see ``cpu`` (its /proc/cpuinfo flags, vendor and family)."""
    flags, identity = cpu
    monkeypatch.setattr("keras_zoo.runtime.traits.cpu_flags", lambda: flags)
    monkeypatch.setattr("keras_zoo.runtime.traits.cpu_vendor_family", lambda: identity)


@pytest.mark.parametrize(
    "cpu, backend, device, capability, expected",
    [
        (AMX_XEON, "tensorflow", "cpu", None, "mixed"),
        (AVX512_BF16_XEON, "tensorflow", "cpu", None, "fp32"),  # oneDNN held to AVX512_BF16 measured slower
        (ZEN5, "tensorflow", "cpu", None, "mixed"),  # full-width AVX512_BF16 measured faster
        (ZEN5, "torch", "cpu", None, "mixed"),
        (ZEN5, "jax", "cpu", None, "fp32"),
        (ZEN4, "tensorflow", "cpu", None, "fp32"),  # not measured: stays in fp32
        ((["avx512f"], ("AuthenticAMD", 26)), "tensorflow", "cpu", None, "fp32"),  # no bfloat16 instructions
        (AVX2_EPYC, "tensorflow", "cpu", None, "fp32"),
        ((["avx2"], None), "tensorflow", "cpu", None, "fp32"),  # no /proc/cpuinfo identity
        (AMX_XEON, "torch", "cpu", None, "mixed"),
        (AMX_XEON, "jax", "cpu", None, "fp32"),  # XLA's CPU convs skip AMX
        (AVX2_EPYC, "jax", "gpu", (9, 0), "mixed"),  # every backend on a GPU with a known capability
        (AVX2_EPYC, "torch", "gpu", (7, 0), "mixed"),
        (AVX2_EPYC, "tensorflow", "gpu", (8, 6), "mixed"),
        (AMX_XEON, "jax", "gpu", None, "fp32"),  # capability unknown: stay in fp32
        (AMX_XEON, "torch", "npu", None, "fp32"),  # the Ascend adapter applies its own default
    ],
)
def test_auto_precision_per_device(monkeypatch, cpu, backend, device, capability, expected):
    fake_cpu(monkeypatch, cpu)
    assert runtime.auto_precision(backend, device, capability) == expected


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni

processor\t: 1
vendor_id\t: SomethingElse
flags\t\t: fpu
"""


def test_cpu_identity_and_flags_are_read_from_the_first_processor_in_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor="AuthenticAMD", family=26))
    assert traits.cpu_vendor_family(str(path)) == ("AuthenticAMD", 26)
    assert traits.cpu_flags(str(path)) == ["avx2", "avx512_bf16", "avx512f", "fma"]
    path.write_text(CPUINFO.format(vendor="AuthenticAMD", family=""))
    assert traits.cpu_vendor_family(str(path)) is None
    missing = str(tmp_path / "absent")
    assert traits.cpu_vendor_family(missing) is None and traits.cpu_flags(missing) == []


@pytest.mark.parametrize(
    "capability, precision, policy",
    [((9, 0), "mixed", "mixed_bfloat16"), ((7, 5), "mixed", "mixed_float16"), (None, "fp32", "float32")],
)
def test_configure_on_a_mocked_gpu(monkeypatch, capability, precision, policy):
    monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 1)
    monkeypatch.setattr("keras_zoo.runtime.core.gpu_compute_capability", lambda backend: capability)
    try:
        config = runtime.configure(device="auto")
        assert (config.device, config.precision, config.policy) == ("gpu", precision, policy)
        assert config.compute_capability == capability
        assert keras.mixed_precision.global_policy().name == policy
        config = runtime.configure(device="gpu", precision="fp16")
        assert config.policy == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_torch_on_a_gpu_times_cudnn_algorithms_unless_deterministic(monkeypatch):
    cudnn = types.SimpleNamespace(benchmark=False, deterministic=False)
    monkeypatch.setitem(
        sys.modules, "torch", types.SimpleNamespace(backends=types.SimpleNamespace(cudnn=cudnn))
    )
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 1)
    monkeypatch.setattr("keras_zoo.runtime.core.gpu_compute_capability", lambda backend: (9, 0))
    try:
        runtime.configure(device="gpu", precision="fp32")
        assert (cudnn.benchmark, cudnn.deterministic) == (True, False)
        runtime.configure(device="auto", precision="fp32", deterministic=True)
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        cudnn.deterministic = False
        monkeypatch.setattr("keras_zoo.runtime.core._gpu_count", lambda backend: 0)
        assert runtime.configure(device="auto", precision="fp32").device == "cpu"
        assert (cudnn.benchmark, cudnn.deterministic) == (False, False)  # CPU runs leave cuDNN alone
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "reported, expected",
    [("9.0", (9, 0)), ("8.6", (8, 6)), ((7, 5), (7, 5)), ("sm_90", (9, 0)), ("", None), (None, None)],
)
def test_compute_capability_is_read_from_each_backends_format(reported, expected):
    from keras_zoo.runtime.core import _parse_capability

    assert _parse_capability(reported) == expected


def test_auto_on_an_npu_keeps_the_adapters_default_precision_mode():
    from keras_zoo.runtime.npu import ASCEND_PRECISION

    assert ASCEND_PRECISION["auto"] == "allow_fp32_to_fp16"
    assert set(ASCEND_PRECISION) == {"auto", *runtime.core.PRECISIONS}


def test_xla_is_kept_off_where_it_fails_to_compile():
    from keras_zoo.runtime.traits import ModelTraits

    fails, plain = ModelTraits(xla_fails_in_mixed_precision=True), ModelTraits()
    gpu_mixed = runtime.RuntimeConfig("tensorflow", "gpu", "mixed", "mixed_float16", True)
    assert gpu_mixed.xla_fails(fails) and gpu_mixed.jit_for(fails) is False
    assert gpu_mixed.jit_for(plain) is True
    gpu_fp32 = runtime.RuntimeConfig("tensorflow", "gpu", "fp32", "float32", True)
    assert not gpu_fp32.xla_fails(fails) and gpu_fp32.jit_for(fails) is True
    jax_mixed = runtime.RuntimeConfig("jax", "cpu", "mixed", "mixed_bfloat16", "auto")
    assert not jax_mixed.xla_fails(fails)


def test_configure_resolves_auto_precision(monkeypatch):
    fake_cpu(monkeypatch, AVX2_EPYC)
    config = runtime.configure(device="cpu", precision="auto")
    assert (config.precision, config.policy) == ("fp32", "float32")
    fake_cpu(monkeypatch, AMX_XEON)
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
    assert info["cpu_vendor_family"] == traits.cpu_vendor_family()


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


def test_compute_capability_falls_back_to_nvidia_smi(monkeypatch):
    import subprocess

    from keras_zoo.runtime import core

    monkeypatch.setattr(core, "_backend_capability", lambda backend: None)
    answer = subprocess.CompletedProcess([], 0, stdout="8.6\n", stderr="")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: answer)
    assert core.gpu_compute_capability("jax") == (8, 6)

    def missing(*args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", missing)
    assert core.gpu_compute_capability("jax") is None

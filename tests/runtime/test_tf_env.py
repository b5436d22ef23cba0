"""TensorFlow CPU environment defaults (oneDNN) set before TensorFlow's import, never over the user's."""

import os
import subprocess
import sys

import pytest

from keras_zoo.runtime import tf_env, traits
from keras_zoo.runtime.traits import ModelTraits

pytestmark = pytest.mark.backend_agnostic

WIDE_2D = ModelTraits(full_resolution_2d=True, width=64)


def _cpu(monkeypatch, x86: bool = True, avx512: bool = False) -> None:
    monkeypatch.setattr(traits, "is_x86_64", lambda: x86)
    monkeypatch.setattr(traits, "cpu_flags", lambda: ["avx2", *(["avx512f"] if avx512 else [])])


def test_sets_onednn_on_x86_when_unset_and_tensorflow_not_loaded(monkeypatch):
    _cpu(monkeypatch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {}
    assert tf_env.apply_tf_cpu_defaults(environ=environ) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_ZOO_ONEDNN_DEFAULT": "1"}


@pytest.mark.parametrize("value", ["0", "1"])
def test_never_overrides_the_users_setting(monkeypatch, value):
    _cpu(monkeypatch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {"TF_ENABLE_ONEDNN_OPTS": value}
    assert tf_env.apply_tf_cpu_defaults(WIDE_2D, environ) == {}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}


def test_leaves_env_alone_once_tensorflow_is_imported_or_off_x86(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    _cpu(monkeypatch)
    assert tf_env.apply_tf_cpu_defaults(environ={}) == {}
    monkeypatch.delitem(sys.modules, "tensorflow")
    _cpu(monkeypatch, x86=False)
    assert tf_env.apply_tf_cpu_defaults(environ={}) == {}


def test_warns_when_tensorflow_was_imported_first_with_onednn_off(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    _cpu(monkeypatch)
    with caplog.at_level("WARNING", logger=tf_env.__name__):
        assert tf_env.apply_tf_cpu_defaults(environ={}) == {}
    assert "apply_tf_cpu_defaults" in caplog.text and "TF_ENABLE_ONEDNN_OPTS=1" in caplog.text
    caplog.clear()
    # no warning where the user chose, where TensorFlow turns oneDNN on itself, or where Eigen is wanted
    with caplog.at_level("WARNING", logger=tf_env.__name__):
        tf_env.apply_tf_cpu_defaults(environ={"TF_ENABLE_ONEDNN_OPTS": "0"})
        tf_env.apply_tf_cpu_defaults(WIDE_2D, {})
        _cpu(monkeypatch, avx512=True)
        tf_env.apply_tf_cpu_defaults(environ={})
    assert caplog.text == ""


def test_import_keras_zoo_changes_no_environment_and_imports_no_keras_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = (
        "import os, sys, keras_zoo; "
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "None False False"


def test_onednn_is_faster_except_for_wide_full_resolution_2d_networks_without_avx512(monkeypatch):
    _cpu(monkeypatch)
    assert not traits.onednn_is_faster(WIDE_2D)
    assert not traits.onednn_is_faster(ModelTraits(full_resolution_2d=True, width=traits.EIGEN_MIN_FILTERS))
    assert traits.onednn_is_faster(ModelTraits(full_resolution_2d=True, width=32))
    assert traits.onednn_is_faster(ModelTraits(width=64))  # 3D, strided or separable networks
    assert traits.onednn_is_faster(ModelTraits())
    _cpu(monkeypatch, avx512=True)
    assert traits.onednn_is_faster(WIDE_2D)


def test_a_value_set_here_may_be_revised_but_a_users_value_is_kept(monkeypatch):
    _cpu(monkeypatch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {}
    tf_env.apply_tf_cpu_defaults(environ=environ)
    assert tf_env.apply_tf_cpu_defaults(WIDE_2D, environ) == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_ZOO_ONEDNN_DEFAULT": "1"}
    users = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert tf_env.apply_tf_cpu_defaults(WIDE_2D, users) == {}
    assert users == {"TF_ENABLE_ONEDNN_OPTS": "1"}


@pytest.mark.parametrize(
    "argv, config, expected",
    [
        (["--model", "unet"], None, "0"),
        (["--model", "unet", "--filters", "12"], None, "1"),
        (["-c", "CONFIG"], {"model": "unet", "filters": 12}, "1"),
        (["--model", "genesis"], None, "1"),
        (["--model", "cascadenet"], None, "0"),
        (["--model", "cascadenet", "--dynamic"], None, "1"),
        (["-c", "CONFIG"], {"model": "cascadenet", "dynamic": "true"}, "1"),
    ],
)
def test_train_cli_picks_the_kernels_of_the_configured_network_before_tensorflow_loads(
    monkeypatch, tmp_path, argv, config, expected
):
    from keras_zoo.cli import train as train_cli

    if config is not None:
        path = tmp_path / "run.yaml"
        path.write_text("".join(f"{key}: {value}\n" for key, value in config.items()))
        argv = [str(path) if arg == "CONFIG" else arg for arg in argv]
    _cpu(monkeypatch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {"TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_ZOO_ONEDNN_DEFAULT": "1"}
    args, task = train_cli.parse_args(argv)
    tf_env.apply_tf_cpu_defaults(task.traits(args), environ)
    assert environ["TF_ENABLE_ONEDNN_OPTS"] == expected


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, True),  # U-Net, 64 filters, fp32 on TensorFlow CPU: XLA around Eigen kernels
        ({"filters": 12}, False),  # oneDNN kernels: XLA would replace them
        ({"precision": "mixed"}, False),
        ({"deterministic": True}, False),
        ({"distribute": "mirrored"}, False),
        ({"jit": "off"}, False),
        ({"model": "genesis", "filters": 32}, False),
        ({"model": "cascadenet", "dynamic": True}, False),
    ],
)
def test_train_cli_jit_default_follows_the_measured_choice(monkeypatch, overrides, expected):
    from keras_zoo.cli import train as train_cli
    from keras_zoo.runtime import RuntimeConfig

    _cpu(monkeypatch)
    model = overrides.pop("model", "unet")
    argv = ["--model", model, "--filters", str(overrides.pop("filters", 64))]
    argv += ["--dynamic"] if overrides.pop("dynamic", False) else []
    for key, value in {"precision": "fp32", "jit": "auto", "distribute": "none", **overrides}.items():
        argv += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    args, task = train_cli.parse_args(argv)
    policy = "float32" if args.precision == "fp32" else "mixed_bfloat16"
    runtime_config = RuntimeConfig("tensorflow", "cpu", args.precision, policy, jit_compile=False)
    assert train_cli._jit_value(args, runtime_config, task.traits(args)) is expected
    gpu = RuntimeConfig("tensorflow", "gpu", args.precision, policy, jit_compile=True)
    assert train_cli._jit_value(args, gpu, task.traits(args)) is (args.jit != "off")

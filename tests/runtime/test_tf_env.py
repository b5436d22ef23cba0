"""TensorFlow CPU environment defaults (oneDNN) set before TensorFlow's import, never over the user's."""

import os
import subprocess
import sys

import pytest

from keras_zoo.runtime import tf_env

pytestmark = pytest.mark.backend_agnostic


def test_sets_onednn_on_x86_when_unset_and_tensorflow_not_loaded(monkeypatch):
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {}
    assert tf_env.apply_tf_cpu_defaults(environ) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_ZOO_ONEDNN_DEFAULT": "1"}


@pytest.mark.parametrize("value", ["0", "1"])
def test_never_overrides_the_users_setting(monkeypatch, value):
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {"TF_ENABLE_ONEDNN_OPTS": value}
    assert tf_env.apply_tf_cpu_defaults(environ) == {}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}


def test_leaves_env_alone_once_tensorflow_is_imported_or_off_x86(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    assert tf_env.apply_tf_cpu_defaults({}) == {}
    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: False)
    assert tf_env.apply_tf_cpu_defaults({}) == {}


def test_warns_when_tensorflow_was_imported_first_with_onednn_off(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    monkeypatch.setattr(tf_env, "_has_avx512", lambda: False)
    with caplog.at_level("WARNING", logger=tf_env.__name__):
        assert tf_env.apply_tf_cpu_defaults({}) == {}
    assert "imported before keras_zoo" in caplog.text and "TF_ENABLE_ONEDNN_OPTS=1" in caplog.text
    caplog.clear()
    # no warning where the user chose, where TensorFlow turns oneDNN on itself, or where Eigen is wanted
    with caplog.at_level("WARNING", logger=tf_env.__name__):
        tf_env.apply_tf_cpu_defaults({"TF_ENABLE_ONEDNN_OPTS": "0"})
        tf_env.apply_tf_cpu_defaults({}, onednn=False)
        monkeypatch.setattr(tf_env, "_has_avx512", lambda: True)
        tf_env.apply_tf_cpu_defaults({})
    assert caplog.text == ""


def test_import_keras_zoo_turns_onednn_on_without_importing_keras_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = (
        "import os, sys, keras_zoo; "
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    expected = "1" if tf_env._is_x86_64() else "None"
    assert out.stdout.strip().splitlines()[-1] == f"{expected} False False"


def test_onednn_is_faster_except_for_wide_2d_networks_on_cpus_without_avx512(monkeypatch):
    monkeypatch.setattr(tf_env, "_has_avx512", lambda: False)
    for model in ("unet", "cascadenet"):
        assert not tf_env.onednn_is_faster(model)  # 64 filters, the reference
        assert not tf_env.onednn_is_faster(model, 48)
        assert tf_env.onednn_is_faster(model, 32)
    assert tf_env.onednn_is_faster("cascadenet", dynamic=True)  # 3D convolutions: 2.4x faster on oneDNN
    for model in ("genesis", "deeplabv3plus", "amoebanet"):
        assert tf_env.onednn_is_faster(model)
    monkeypatch.setattr(tf_env, "_has_avx512", lambda: True)
    assert tf_env.onednn_is_faster("unet") and tf_env.onednn_is_faster("cascadenet")


def test_a_value_set_here_may_be_revised_but_a_users_value_is_kept(monkeypatch):
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    environ = {}
    tf_env.apply_tf_cpu_defaults(environ)
    assert tf_env.apply_tf_cpu_defaults(environ, onednn=False) == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_ZOO_ONEDNN_DEFAULT": "1"}
    users = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert tf_env.apply_tf_cpu_defaults(users, onednn=False) == {}
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
def test_train_cli_picks_the_kernels_for_the_model_before_tensorflow_loads(
    monkeypatch, tmp_path, argv, config, expected
):
    from keras_zoo.cli import train as train_cli

    if config is not None:
        path = tmp_path / "run.yaml"
        path.write_text("".join(f"{key}: {value}\n" for key, value in config.items()))
        argv = [str(path) if arg == "CONFIG" else arg for arg in argv]
    monkeypatch.setattr(tf_env, "_is_x86_64", lambda: True)
    monkeypatch.setattr(tf_env, "_has_avx512", lambda: False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.setenv("KERAS_ZOO_ONEDNN_DEFAULT", "1")
    train_cli._choose_tf_kernels(argv)
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == expected


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
    from types import SimpleNamespace

    from keras_zoo.cli import train as train_cli
    from keras_zoo.runtime import RuntimeConfig

    monkeypatch.setattr(tf_env, "_has_avx512", lambda: False)
    args = {"model": "unet", "filters": 64, "precision": "fp32", "deterministic": False, "distribute": "none"}
    args = SimpleNamespace(**{**args, "jit": "auto", **overrides})
    policy = "float32" if args.precision == "fp32" else "mixed_bfloat16"
    runtime_config = RuntimeConfig("tensorflow", "cpu", args.precision, policy, jit_compile=False)
    assert train_cli._jit_value(args, runtime_config) is expected
    gpu = RuntimeConfig("tensorflow", "gpu", args.precision, policy, jit_compile=True)
    assert train_cli._jit_value(args, gpu) is (args.jit != "off")

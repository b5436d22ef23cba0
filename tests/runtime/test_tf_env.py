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
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}


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

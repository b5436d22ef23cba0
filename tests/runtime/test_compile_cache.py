import os

import keras
import pytest

from keras_zoo.runtime.compile_cache import default_cache_dir, enable_compilation_cache


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_ZOO_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("KERAS_ZOO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == os.path.join(str(tmp_path / "xdg"), "keras_zoo")


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_have_no_cache_and_nothing_is_written(tmp_path, backend):
    assert enable_compilation_cache(backend, str(tmp_path / "cache")) is None
    assert not (tmp_path / "cache").exists()


def test_a_folder_that_cannot_be_made_leaves_the_cache_off(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert enable_compilation_cache("jax", str(blocker)) is None
    assert "compilation cache off" in caplog.text
    assert blocker.read_text() == "not a folder"


@pytest.mark.backend_agnostic
@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX's persistent cache")
def test_jax_keeps_compiled_steps_in_the_folder(tmp_path):
    import jax
    import jax.numpy as jnp

    previous = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    try:
        # a first folder, used (JAX opens its cache at the first compilation), then the one that must be used
        enable_compilation_cache("jax", str(tmp_path / "earlier"))
        jax.jit(lambda x: x * 2 - 1)(jnp.ones(3)).block_until_ready()
        path = enable_compilation_cache("jax", str(tmp_path))
        assert path == str(tmp_path / "jax") and jax.config.jax_compilation_cache_dir == path
        # kept however fast it compiled: a tiny program, as the eager initialisers of a network build are
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
        jax.jit(lambda x: jnp.sin(x) * 3 + x.sum())(jnp.ones((7, 5))).block_until_ready()
        assert os.listdir(path), "no compiled executable was written to the cache"
    finally:
        jax.config.update("jax_compilation_cache_dir", previous[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", previous[1])

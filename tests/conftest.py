"""Shared fixtures: the real data folder beside the checkout, and small keras settings for fast tests."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("KERAS_ZOO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> pathlib.Path:
    """Path of ../shared/data (real test data); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_compilation_cache(tmp_path_factory):
    """Keeps the CLI's persistent compilation cache (JAX) out of the user's ~/.cache during tests."""
    os.environ["KERAS_ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("keras_zoo_cache"))
    yield


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Resets the global dtype policy, TF op determinism and the session after each test."""
    yield
    import sys

    import keras

    if "tensorflow" in sys.modules:  # `configure(deterministic=True)` is process-wide; no public undo exists
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()

    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session(free_memory=False)  # names and graphs reset; skipping gc saves ~0.3 s a test

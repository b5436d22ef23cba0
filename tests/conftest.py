"""Shared fixtures: the real data folder beside the checkout, and small keras settings for fast tests."""

from __future__ import annotations

import gc
import os
import pathlib
import re

import pytest

MAX_WORKERS = 4

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("KERAS_ZOO_SHARED_DATA", REPO.parent / "shared" / "data"))

# The tests compile hundreds of small XLA programs (JAX; TensorFlow's jit_compile) and run each on tiny inputs
# a few times, so LLVM's optimisation of their CPU code costs far more than it saves. Level 0 compiles the same
# HLO with the backend's optimisation off. It is set here, before any test imports JAX, and is inherited by
# the CLI runs the tests start; an XLA_FLAGS that already sets the level is left as it is.
XLA_OPTIMISATION_FLAG = "--xla_backend_optimization_level"
if XLA_OPTIMISATION_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_OPTIMISATION_FLAG}=0".strip()


def readme_test_command() -> str:
    """The README's "install and run the tests" command, which CI (``.ci/run``) runs exactly."""
    readme = (REPO / "README.md").read_text()
    return re.search(r"Install and run the tests.*?```bash\n(.*?)\n```", readme, re.S).group(1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto`` (pytest-xdist): the cores this process may run on, at most ``MAX_WORKERS``.

    Counts logical cores from the CPU affinity (a 2-vCPU CI machine gets 2 workers even when psutil would
    call it one physical core); the cap bounds memory, as every worker imports TensorFlow or JAX and builds
    models. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it, and ``-n 0`` runs in one process.
    """
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if override:
        return int(override)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Collects garbage once, then exempts what survives from later collections (``gc.freeze``).

    pytest ends a session with several full collections; in a worker that has built many models each one walks
    every object left behind, and a worker still busy with them seconds after its last test is stopped by
    pytest-xdist with SIGINT (a KeyboardInterrupt traceback at the end of the output). The collection here
    runs before the worker reports that it has finished, and still reports exceptions raised in finalisers.
    """
    gc.collect()
    gc.freeze()


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

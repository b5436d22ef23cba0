"""A persistent compilation cache for the JAX backend, so that a second run skips XLA's compilation.

XLA compiles each training step once per process; for the large networks on a GPU that costs tens of seconds
(and its GPU autotuning more). JAX can keep compiled executables, and XLA's per-fusion autotuning results,
in a folder across processes. The CLI turns this on by default (``--no-compile-cache`` turns it off);
library users call :func:`enable_compilation_cache` themselves. Other backends have no such cache here.
"""

from __future__ import annotations

import importlib
import logging
import os

log = logging.getLogger(__name__)

CACHE_VARIABLE = "KERAS_ZOO_CACHE_DIR"


def default_cache_dir() -> str:
    """``$KERAS_ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/keras_zoo``, else ``~/.cache/keras_zoo``."""
    if os.environ.get(CACHE_VARIABLE):
        return os.environ[CACHE_VARIABLE]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras_zoo")


def enable_compilation_cache(backend: str, folder: str | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache (with XLA's autotune cache) under ``folder``.

    Args:
        backend: the Keras backend; nothing is done unless it is ``"jax"``.
        folder: cache root; default :func:`default_cache_dir`. JAX's entries go to ``<folder>/jax``.

    Every compiled program is kept, however quickly it compiled (a few MB per network configuration; the
    folder can be deleted at any time). It takes effect from the next compilation, also in a process whose
    earlier compilations went to another folder.

    Returns:
        The folder used, or None when nothing was enabled (another backend, or a folder that cannot be
        created: the run then compiles as usual and a warning says why).
    """
    if backend != "jax":
        return None
    path = os.path.join(folder or default_cache_dir(), "jax")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        log.warning("compilation cache off: cannot create %s (%s)", path, exc.strerror or exc)
        return None
    jax = importlib.import_module("jax")
    if jax.config.jax_compilation_cache_dir != path:
        # JAX opens its cache once per process, at the first compilation that uses it; without a reset
        # the programs compiled after a change of folder would still go to the first one.
        importlib.import_module("jax.experimental.compilation_cache.compilation_cache").reset_cache()
    jax.config.update("jax_compilation_cache_dir", path)
    # Every executable, not only those that took over JAX's default 1 s to compile: building a network runs
    # Keras' initialisers eagerly, one small program per variable shape, and their compiles make up most of
    # a network's build time on JAX (docs/benchmarks.md, "Persistent cache").
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    # JAX writes XLA's GPU per-fusion autotuning results beside the executables unless told otherwise.
    log.info("JAX compilation cache: %s", path)
    return path

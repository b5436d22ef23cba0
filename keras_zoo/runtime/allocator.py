"""Undo TensorFlow's malloc patch for Python-generator input pipelines (Linux, glibc).

TensorFlow's generator dataset op, which Keras uses for every ``PyDataset`` on the TF backend, calls
``mallopt(M_TRIM_THRESHOLD, 128 KiB)`` once per process (the log says "Memory patch applied"). Setting any
malloc threshold turns glibc's dynamic mmap threshold off, so from then on every buffer over 128 KiB (every
activation of a segmentation network) is mmap'ed and unmapped again at each step, and its pages fault in
anew each time; on the U-Net ISBI recipe that doubled the training step (docs/benchmarks.md, "malloc").

:func:`restore_malloc_thresholds` triggers the patch once itself, then sets the thresholds glibc's dynamic
policy settles on for large buffers on 64-bit systems.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import logging
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (the most its dynamic threshold grows to), and the trim
# threshold its dynamic policy pairs with it (twice the mmap threshold).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES

_restored = False


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _trigger_tensorflow_patch() -> None:
    """Runs a one-element generator dataset so TensorFlow applies its once-per-process malloc patch now."""
    tf = importlib.import_module("tensorflow")
    dataset = tf.data.Dataset.from_generator(lambda: iter((0,)), output_signature=tf.TensorSpec((), tf.int32))
    next(iter(dataset))


def restore_malloc_thresholds(libc: ctypes.CDLL | None = None) -> bool:
    """Restores large-buffer malloc thresholds after TensorFlow's generator-dataset patch.

    Idempotent; a no-op (returning False) off glibc. Only for the TensorFlow backend: it imports TensorFlow.

    Args:
        libc: the C library to configure (tests pass a fake); the process's glibc by default.

    Returns:
        True when the thresholds are set (now or by an earlier call).
    """
    global _restored
    if _restored:
        return True
    libc = libc if libc is not None else _glibc()
    if libc is None:
        return False
    _trigger_tensorflow_patch()
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    if not ok:
        log.warning("mallopt refused the malloc thresholds; large buffers stay mmap'ed at every step")
        return False
    _restored = True
    log.debug("malloc thresholds: mmap %d B, trim %d B", MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)
    return True

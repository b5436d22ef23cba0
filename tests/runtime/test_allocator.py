import platform
import subprocess
import sys

import keras
import pytest

from keras_zoo.runtime import allocator

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.libc_ver()[0] != "glibc"
    or keras.config.backend() != "tensorflow",
    reason="TensorFlow's malloc patch exists only on Linux with glibc",
)

# Counts the minor page faults of 20 allocate-fill-free cycles of an 8 MiB buffer, after TensorFlow's
# generator-dataset patch and again after restore_malloc_thresholds. Transparent huge pages are switched off
# for the process (prctl PR_SET_THP_DISABLE): numpy madvises large buffers for them, and the page size the
# kernel then gives (4 KiB to 2 MiB) changed the count 100-fold between machines.
FAULTS = """
import ctypes
import resource
import numpy as np
from keras_zoo.runtime import allocator

assert ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0) == 0  # PR_SET_THP_DISABLE

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        buffer = np.ones(2 * 2**20, np.float32)
        del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

allocator._trigger_tensorflow_patch()
patched = faults()
assert allocator.restore_malloc_thresholds()
print(patched, faults())
"""


def test_restore_stops_large_buffers_faulting_in_at_every_allocation():
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    patched, restored = (int(v) for v in out.stdout.split())
    # Patched: each 8 MiB buffer is a fresh mmap whose 2,048 pages fault in at every cycle (40,980 faults
    # here); restored: the heap keeps the freed buffer and only the first cycle faults its pages in (2,045).
    assert patched > 20 * 100
    assert restored * 5 < patched


class FakeLibc:
    def __init__(self, answer: int = 1):
        self.calls = []
        self.answer = answer

    def mallopt(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return self.answer


def test_thresholds_set_once_after_the_patch(monkeypatch):
    monkeypatch.setattr(allocator, "_restored", False)
    order = []
    monkeypatch.setattr(allocator, "_trigger_tensorflow_patch", lambda: order.append("patch"))
    libc = FakeLibc()
    assert allocator.restore_malloc_thresholds(libc)
    assert libc.calls == [
        (allocator.M_MMAP_THRESHOLD, 32 * 2**20),
        (allocator.M_TRIM_THRESHOLD, 64 * 2**20),
    ]
    assert order == ["patch"]
    assert allocator.restore_malloc_thresholds(FakeLibc()) and order == ["patch"]


def test_refused_thresholds_are_reported_and_retried(monkeypatch, caplog):
    monkeypatch.setattr(allocator, "_restored", False)
    monkeypatch.setattr(allocator, "_trigger_tensorflow_patch", lambda: None)
    assert not allocator.restore_malloc_thresholds(FakeLibc(answer=0))
    assert "mallopt refused" in caplog.text
    assert allocator.restore_malloc_thresholds(FakeLibc())


def test_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_restored", False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(allocator, "_trigger_tensorflow_patch", lambda: pytest.fail("patch triggered"))
    assert not allocator.restore_malloc_thresholds()

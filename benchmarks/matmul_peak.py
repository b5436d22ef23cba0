"""Attainable fp32 FLOP/s of this machine's CPU: the best of several large SGEMMs through NumPy's BLAS.

The denominator for CPU model-FLOPs utilisation in docs/benchmarks.md. Prints one JSON line:

    python benchmarks/matmul_peak.py [--size 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def sgemm_gflops(size: int, repeats: int) -> float:
    """Best GFLOP/s of ``repeats`` float32 ``size`` x ``size`` matrix products (2 n^3 FLOPs each)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    record = {
        "benchmark": "sgemm",
        "size": args.size,
        "gflops_per_sec": round(sgemm_gflops(args.size, args.repeats), 1),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()

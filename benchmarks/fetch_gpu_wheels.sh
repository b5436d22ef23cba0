#!/usr/bin/env bash
# Fetches, into .whl/ of the repository root, the wheels that benchmarks/gpu_check.sh installs on the GPU
# machine (which has JAX and PyTorch but no Keras, and no network): keras, namex and optree for CPython
# 3.12 on x86-64 Linux, at the versions installed here, so the GPU runs the Keras the tests ran.
#     bash benchmarks/fetch_gpu_wheels.sh            # here, with network; .whl/ is git-ignored
# Then, with the device tool: run(command="bash benchmarks/gpu_check.sh --out $OUT/gpu_check.jsonl",
# carry=[".whl"], timeout_s=540).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
pins=()
for name in keras namex optree; do
    version=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null) || {
        echo "fetch_gpu_wheels: $name is not installed here; install the test extras first" >&2
        exit 2
    }
    pins+=("$name==$version")
done
rm -f .whl/keras-*.whl .whl/namex-*.whl .whl/optree-*.whl  # one version of each: two stop the install there
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
    platforms+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${pins[@]}"
ls .whl/*.whl

#!/usr/bin/env bash
# The GPU check (issue 16): all five networks under Keras/JAX, Keras/torch and the PyTorch ports, one run.
#
# On a lent GPU (device tool: H200 or H100), from the repository root, with keras, namex and optree wheels
# for Python 3.12 in .whl/ (`bash benchmarks/fetch_gpu_wheels.sh` fetches them here) and carry=[".whl"]:
#     bash benchmarks/gpu_check.sh --out "$OUT/gpu_check.jsonl"
# Anywhere, on the CPU with tiny presets (the test suite runs this):
#     bash benchmarks/gpu_check.sh --smoke --out /tmp/gpu_check_smoke.jsonl
# Other flags go to benchmarks/gpu_check.py (--budget SECONDS, --only KIND ...). Where $PYTHON has no Keras
# (the GPU machine, or `.ci/gpu_rehearsal`, which copies its software) it installs the .whl/ wheels, and
# nothing outside /tmp: they go to /tmp/keras_zoo_site, which is put on PYTHONPATH for this run only.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    if ! compgen -G ".whl/keras-*.whl" >/dev/null; then
        echo "gpu_check: $PYTHON has no keras and .whl/ has no keras wheel: run benchmarks/fetch_gpu_wheels.sh" \
            "and carry .whl" >&2
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/keras_zoo_site .whl/*.whl
    export PYTHONPATH="/tmp/keras_zoo_site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [[ " $* " != *" --smoke "* ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"

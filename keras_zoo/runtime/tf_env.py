"""TensorFlow CPU environment defaults that must be set before TensorFlow is imported.

TensorFlow 2.21 turns its oneDNN kernels on by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX; on
other x86 CPUs (e.g. AVX2-only AMD EPYC) convolutions, depthwise convolutions and batch-norm arithmetic run
on Eigen. With ``TF_ENABLE_ONEDNN_OPTS=1`` on a 2-core AVX2 EPYC, forward+backward of DeepLab's layers at its
513x513 shapes ran 1.5-3x faster (dilated depthwise 3x3 on 33x33x2048 at rate 18: 359-385 ms -> 108-145 ms;
1x1 conv 128->128 on 257x257: 330-509 ms -> 173-236 ms) and the whole DeepLabv3+ training step got faster too
(docs/benchmarks.md, "DeepLabv3+ on TensorFlow CPU").

TensorFlow reads the variable once, at import, so :func:`apply_tf_cpu_defaults` runs at ``import keras_zoo``
(the CLI and ``train.py`` import it before Keras). Code that imports TensorFlow or Keras before keras_zoo can
set ``TF_ENABLE_ONEDNN_OPTS=1`` itself. A value the user set (``TF_ENABLE_ONEDNN_OPTS=0`` included) is never
overridden. This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def apply_tf_cpu_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Sets ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64 when the user has not set it and TensorFlow is not loaded.

    Args:
        environ: the environment to change (``os.environ`` when None; tests pass a dict).

    Returns:
        The variables set by this call (empty when nothing changed).
    """
    environ = os.environ if environ is None else environ
    if ONEDNN_VARIABLE in environ or not _is_x86_64():
        return {}
    if "tensorflow" in sys.modules:
        log.debug("TensorFlow already imported; %s left unset (it is read at import)", ONEDNN_VARIABLE)
        return {}
    environ[ONEDNN_VARIABLE] = "1"
    return {ONEDNN_VARIABLE: "1"}

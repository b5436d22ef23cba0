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
overridden: a value set here is marked with ``KERAS_ZOO_ONEDNN_DEFAULT=1`` so that the CLI, which knows the
model before TensorFlow loads, may revise it (:func:`onednn_is_faster`) and child processes may too.
This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
MARKER_VARIABLE = "KERAS_ZOO_ONEDNN_DEFAULT"

# Networks of wide 2D 3x3 convolutions at full resolution train faster on Eigen than on oneDNN on a 2-core
# AVX2 EPYC (keras-zoo benchmark, median step, oneDNN off/on). U-Net at 256x256, batch 2: 24 base filters
# 2.07/1.63 s, 32 filters 3.25/2.32 s, 48 filters 5.61/6.16 s, 64 filters 8.93/10.95 s. CascadeNet D5-C5
# (64 filters) at 256x256: batch 1 4.81/4.38 s, batch 4 12.9/16.2 s, batch 10 (the reference) 29.1/42.1 s.
# Single layers, fwd+bwd, batch 2: 3x3 conv 128->128 at 128x128 413 ms Eigen, 679 ms oneDNN.
EIGEN_MIN_FILTERS = 48
EIGEN_2D_MODELS = ("unet", "cascadenet")


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags() -> list[str]:
    """The CPU features that decide kernel and precision choices (from /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma"})
    except OSError:
        pass
    return []


def _has_avx512() -> bool:
    return "avx512f" in cpu_flags()


def onednn_is_faster(model: str, filters: int | None = None, dynamic: bool = False) -> bool:
    """Whether TensorFlow's oneDNN kernels train ``model`` faster than Eigen on this CPU, as measured.

    On an AVX2 CPU oneDNN won for Genesis, DeepLabv3+, AmoebaNet and the narrow U-Net (1.3-2.3x), and lost
    for the 2D U-Net and the 2D CascadeNet from 48 filters (both 64 by default; CascadeNet gains on Eigen
    from batch 4 on and loses 10 % at batch 1). The dynamic CascadeNet's 3D convolutions are faster on oneDNN
    (D5-C10(S), 30x256x32, batch 1: 40.4 s against 95.9 s on Eigen). CPUs with AVX-512 were not measured and
    keep oneDNN.

    Args:
        model: registry name (``"unet"``, ``"cascadenet"``, ...).
        filters: the model's base filter count; None means the model's default (64 for both).
        dynamic: CascadeNet's dynamic 2D+t variant (3D convolutions).
    """
    width = 64 if filters is None else filters
    wide_2d = model in EIGEN_2D_MODELS and not dynamic and width >= EIGEN_MIN_FILTERS
    return not (wide_2d and not _has_avx512())


def xla_is_faster_on_cpu(model: str, filters: int | None = None, dynamic: bool = False) -> bool:
    """Whether XLA ``jit_compile`` trains ``model`` faster on TensorFlow CPU in fp32, as measured.

    It does exactly where Eigen kernels are chosen (:func:`onednn_is_faster` False), where XLA fuses the
    element-wise work around its own convolutions: U-Net 64 filters, batch 2, 6.97 -> 5.91 s and 7.09 ->
    6.06 s per step; CascadeNet D5-C5, batch 10, 30.0 -> 28.4 s. Where oneDNN is chosen XLA replaces its
    kernels and loses (the 12-filter ISBI U-Net: 292 -> 652 ms).
    """
    return not onednn_is_faster(model, filters, dynamic)


def apply_tf_cpu_defaults(
    environ: MutableMapping[str, str] | None = None, onednn: bool = True
) -> dict[str, str]:
    """Sets ``TF_ENABLE_ONEDNN_OPTS`` on x86-64 when the user has not set it and TensorFlow is not loaded.

    Args:
        environ: the environment to change (``os.environ`` when None; tests pass a dict).
        onednn: the value to set (``"1"`` when True). A value this function set earlier may be revised;
            a value the user set is kept.

    Returns:
        The variables set by this call (empty when nothing changed).
    """
    environ = os.environ if environ is None else environ
    user_set = ONEDNN_VARIABLE in environ and environ.get(MARKER_VARIABLE) != "1"
    if user_set or not _is_x86_64():
        return {}
    value = "1" if onednn else "0"
    if environ.get(ONEDNN_VARIABLE) == value:
        return {}
    if "tensorflow" in sys.modules:
        if onednn and ONEDNN_VARIABLE not in environ and not _has_avx512():
            log.warning(
                "TensorFlow was imported before keras_zoo, so its oneDNN CPU kernels stay off on this CPU "
                "(no AVX-512); most keras_zoo networks train 1.3-2.3x faster with them. Import keras_zoo "
                "first, or set %s=1 (=0 keeps TensorFlow's kernels and silences this) before TensorFlow.",
                ONEDNN_VARIABLE,
            )
        return {}
    environ[ONEDNN_VARIABLE] = value
    environ[MARKER_VARIABLE] = "1"
    return {ONEDNN_VARIABLE: value}

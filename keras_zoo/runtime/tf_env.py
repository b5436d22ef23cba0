"""TensorFlow's CPU kernel switch (oneDNN or Eigen), which must be set before TensorFlow is imported.

TensorFlow 2.21 turns its oneDNN kernels on by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX;
most keras_zoo networks train faster with them on AVX2 CPUs too, except the wide full-resolution 2D ones
(:func:`keras_zoo.runtime.traits.onednn_is_faster`; measurements in docs/benchmarks.md, "oneDNN or Eigen").
TensorFlow reads the variable once, at its import, so the CLI calls :func:`apply_tf_cpu_defaults` with the
configured network's choice before Keras loads; library users who want the same call it before importing
Keras (``import keras_zoo`` itself changes no environment variable). A value the user set
(``TF_ENABLE_ONEDNN_OPTS=0`` included) is never overridden: a value set here is marked with
``KERAS_ZOO_ONEDNN_DEFAULT=1`` so that it may be revised later, also by child processes.
This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

from keras_zoo.runtime import traits as _traits

log = logging.getLogger(__name__)

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
MARKER_VARIABLE = "KERAS_ZOO_ONEDNN_DEFAULT"


def apply_tf_cpu_defaults(
    traits: _traits.ModelTraits | None = None, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Sets ``TF_ENABLE_ONEDNN_OPTS`` on x86-64 when the user has not set it and TensorFlow is not loaded.

    Args:
        traits: the network to be trained (:meth:`keras_zoo.cli.tasks.base.Task.traits`); None: oneDNN on,
            the faster choice for most networks. A value this function set earlier may be revised; a value
            the user set is kept.
        environ: the environment to change (``os.environ`` when None; tests pass a dict).

    Returns:
        The variables set by this call (empty when nothing changed).
    """
    environ = os.environ if environ is None else environ
    user_set = ONEDNN_VARIABLE in environ and environ.get(MARKER_VARIABLE) != "1"
    if user_set or not _traits.is_x86_64():
        return {}
    onednn = traits is None or _traits.onednn_is_faster(traits)
    value = "1" if onednn else "0"
    if environ.get(ONEDNN_VARIABLE) == value:
        return {}
    if "tensorflow" in sys.modules:
        if onednn and ONEDNN_VARIABLE not in environ and "avx512f" not in _traits.cpu_flags():
            log.warning(
                "TensorFlow was imported before keras_zoo.runtime.apply_tf_cpu_defaults(), so its oneDNN "
                "CPU kernels stay off on this CPU (no AVX-512); most keras_zoo networks train 1.3-2.3x faster "
                "with them. Call it first, or set %s=1 (=0 keeps TensorFlow's kernels and silences this) "
                "before TensorFlow.",
                ONEDNN_VARIABLE,
            )
        return {}
    environ[ONEDNN_VARIABLE] = value
    environ[MARKER_VARIABLE] = "1"
    return {ONEDNN_VARIABLE: value}

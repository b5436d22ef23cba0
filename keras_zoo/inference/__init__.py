"""Inference on users' files for the five networks, shared by ``keras-zoo predict``, ``keras-zoo evaluate``,
the training tasks' own evaluation and user code.

One module per network: :mod:`~keras_zoo.inference.segmentation` (U-Net whole slices),
:mod:`~keras_zoo.inference.deeplab` (multi-scale + flip probabilities, palette PNGs),
:mod:`~keras_zoo.inference.genesis` (sliding windows over whole volumes, NIfTI output),
:mod:`~keras_zoo.inference.cascadenet` (k-space or simulated undersampling, complex output) and
:mod:`~keras_zoo.inference.amoebanet` (Inception eval preprocessing, top-k CSV). The generic pieces are
:mod:`~keras_zoo.inference.sliding` (Gaussian-blended sliding windows), :mod:`~keras_zoo.inference.tta`
(dihedral test-time augmentation) and :mod:`~keras_zoo.inference.common` (files, outputs, resizing a model).
"""

from keras_zoo.inference.sliding import gaussian_importance, sliding_window_predict, window_corners
from keras_zoo.inference.tta import dihedral_average, predict_images

__all__ = [
    "dihedral_average",
    "gaussian_importance",
    "predict_images",
    "sliding_window_predict",
    "window_corners",
]

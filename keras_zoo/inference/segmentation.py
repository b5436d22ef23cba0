"""U-Net inference on whole grayscale slices of any size (ISBI 2012 membranes), masks and scores.

A model trained on crops is fully convolutional: a slice is reflect-padded to a multiple of the network's
stride, predicted whole and cropped back. A model with a fixed input size gets the slice resized to that size
and the probabilities resized back (the reference's test script).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_zoo.errors import ConfigError
from keras_zoo.inference.tta import predict_images
from keras_zoo.io import atomic_path

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def unet_stride(model: keras.Model) -> int:
    """Total downsampling of a U-Net: 2 ** (number of max-pooling layers)."""
    return 2 ** sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)


def segment_slice(model: keras.Model, image: np.ndarray, tta: bool = False) -> np.ndarray:
    """Cell-interior probabilities (H, W) float32 of a [0, 1] grayscale slice (H, W).

    Args:
        model: U-Net mapping (batch, h, w, 1) to (batch, h, w, 1) probabilities.
        image: (H, W) in [0, 1]; at least the network's stride on each side for a fully convolutional model.
        tta: average over the 8 flips and quarter turns.

    Raises:
        ConfigError: the slice is smaller than the network's stride.
    """

    def predict(batch: np.ndarray) -> np.ndarray:
        return predict_images(model, batch, tta)

    height, width = image.shape
    fixed = model.inputs[0].shape[1:3]
    if None not in fixed:
        if tuple(fixed) == (height, width):
            return predict(image[None, ..., None])[0, ..., 0].astype(np.float32)
        from skimage import transform

        small = transform.resize(image, fixed, order=1, anti_aliasing=True)
        prob = predict(small[None, ..., None].astype(np.float32))[0, ..., 0]
        return transform.resize(prob, (height, width), order=1).astype(np.float32)
    stride = unet_stride(model)
    if min(height, width) < stride:
        raise ConfigError(f"image {height}x{width} is smaller than the network's stride {stride}")
    padded = np.pad(image, ((0, -height % stride), (0, -width % stride)), mode="reflect")
    return predict(padded[None, ..., None])[0, :height, :width, 0].astype(np.float32)


def mask_paths(image_path: str, output: str, probabilities: bool, suffix: str = "") -> list[str]:
    """``[OUTPUT/<stem><suffix>.png]`` plus ``OUTPUT/<stem><suffix>_prob.tif`` with ``probabilities``
    (``suffix``: e.g. ``_p002`` for the third page of a TIFF stack)."""
    from keras_zoo.inference.common import file_stem

    stem = os.path.join(output, file_stem(image_path) + suffix)
    return [f"{stem}.png"] + ([f"{stem}_prob.tif"] if probabilities else [])


def write_mask(prob: np.ndarray, paths: list[str], threshold: float) -> None:
    """Writes the mask PNG (uint8, 255 = cell interior, as the ISBI labels) and the float32 TIFF if asked."""
    import tifffile
    from PIL import Image

    with atomic_path(paths[0]) as tmp:
        Image.fromarray(np.where(prob > threshold, 255, 0).astype(np.uint8)).save(tmp, format="PNG")
    if len(paths) > 1:
        with atomic_path(paths[1]) as tmp:
            tifffile.imwrite(tmp, prob.astype(np.float32))


def membrane_scores(predicted_cell: np.ndarray, true_cell: np.ndarray) -> dict[str, float]:
    """Pixel accuracy, membrane Dice and membrane IoU (membrane = not cell) of boolean masks of any shape.

    An empty membrane in both masks scores Dice and IoU 1.
    """
    pred_membrane, true_membrane = ~predicted_cell, ~true_cell
    overlap = float(np.sum(pred_membrane & true_membrane))
    union = float(np.sum(pred_membrane | true_membrane))
    total = float(np.sum(pred_membrane) + np.sum(true_membrane))
    return {
        "pixel_accuracy": float(np.mean(predicted_cell == true_cell)),
        "membrane_dice": 2 * overlap / total if total else 1.0,
        "membrane_iou": overlap / union if union else 1.0,
    }


def evaluate_slices(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    tta: bool = False,
    threshold: float = 0.5,
) -> tuple[dict[str, float], list[dict]]:
    """Scores whole slices at their native resolution, as training's validation does.

    Args:
        model: U-Net.
        images: (n, H, W) float32 in [0, 1].
        labels: (n, H, W) in {0, 1}, 1 = cell interior.
        names: one name per slice.
        tta: average over the 8 flips and quarter turns.
        threshold: cell-interior probability threshold.

    Returns:
        (:func:`membrane_scores` over all pixels of all slices plus ``slices``, one row per slice with its
        ``name`` and scores).
    """
    predicted = np.stack([segment_slice(model, image, tta) for image in images]) > threshold
    truth = np.asarray(labels) > 0.5
    rows = [{"name": name, **membrane_scores(p, t)} for name, p, t in zip(names, predicted, truth)]
    return {**membrane_scores(predicted, truth), "slices": len(images)}, rows

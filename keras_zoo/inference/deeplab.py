"""DeepLabv3+ inference: softmax probabilities averaged over scales and left-right flips (the reference's
``predict_labels_multi_scale``), images of any size padded and cropped back, VOC palette PNGs, overlays and
mIoU with the void label ignored.

DeepLabv3+ stores its spatial size in the image-pooling branch, so another input size needs a network built
by the factory: functions that may change the size take ``build((h, w)) -> keras.Model`` (fresh weights,
same architecture); the trained weights are copied into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
from PIL import Image

from keras_zoo.datasets.voc import VOID_LABEL, pad_to, voc_palette
from keras_zoo.errors import DataError
from keras_zoo.io import atomic_path
from keras_zoo.metrics.miou import per_class_iou
from keras_zoo.models.deeplab import preprocess_input

Builder = Callable[[tuple[int, int]], keras.Model]


def pad_for_eval(images, labels, crop: tuple[int, int], names) -> tuple[np.ndarray, np.ndarray]:
    """Stacks whole images padded (bottom/right, mean pixel / void) to ``crop``; DataError if one is larger."""
    out_images, out_labels = [], []
    for name, image, label in zip(names, images, labels):
        if image.shape[0] > crop[0] or image.shape[1] > crop[1]:
            raise DataError(
                f"{name}: image {image.shape[:2]} is larger than the evaluation crop {crop}; raise --input-size"
            )
        image, label = pad_to(image, label, *crop)
        out_images.append(image)
        out_labels.append(label)
    return np.stack(out_images), np.stack(out_labels)


def scale_size(size: int, scale: float) -> int:
    """The reference's ``scale_dimension``: ``int((size - 1) * scale + 1)``."""
    return int((size - 1) * scale + 1)


def predict_probabilities(model: keras.Model, images: np.ndarray, scales, flip: bool, batch_size: int, build):
    """Softmax probabilities at the images' size, averaged over ``scales`` and optional flips.

    Args:
        model: the trained model (its input size is the images' size).
        images: uint8 (n, H, W, 3).
        scales: evaluation scales, e.g. (1.0,) or (0.5, 0.75, ..., 1.75).
        flip: also average the prediction of the left-right flipped image.
        batch_size: inference batch size.
        build: ``build((h, w)) -> keras.Model`` of the same architecture (for scales other than 1).

    Returns:
        float32 (n, H, W, classes).
    """
    height, width = images.shape[1:3]
    total = None
    for scale in scales:
        size = (scale_size(height, scale), scale_size(width, scale))
        net = model
        if size != (height, width):
            net = build(size)
            net.set_weights(model.get_weights())
        inputs = images if net is model else keras.ops.image.resize(images.astype("float32"), size)
        inputs = preprocess_input(keras.ops.convert_to_numpy(inputs))
        variants = [inputs, inputs[:, :, ::-1]] if flip else [inputs]
        for k, batch in enumerate(variants):
            logits = net.predict(batch, batch_size=batch_size, verbose=0)
            if k == 1:
                logits = logits[:, :, ::-1]
            if size != (height, width):
                logits = keras.ops.convert_to_numpy(keras.ops.image.resize(logits, (height, width)))
            probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
            total = probs if total is None else total + probs
    return total / (len(scales) * (2 if flip else 1))


def eval_size(
    image_size: Sequence[int], model_size: Sequence[int], output_stride: int = 16
) -> tuple[int, int]:
    """The padded size an image (h, w) is predicted at: the model's own (h, w) when the image fits, else
    each side raised to the next ``k * output_stride + 1`` (the reference's crop sizes, e.g. 513)."""

    def grow(size: int, model: int) -> int:
        if size <= model:
            return int(model)
        return -(-(size - 1) // output_stride) * output_stride + 1

    return grow(int(image_size[0]), int(model_size[0])), grow(int(image_size[1]), int(model_size[1]))


def at_size(model: keras.Model, size: tuple[int, int], build: Builder) -> keras.Model:
    """``model`` when it takes ``size`` already, else ``build(size)`` with ``model``'s weights."""
    if tuple(model.inputs[0].shape[1:3]) == tuple(size):
        return model
    net = build(size)
    net.set_weights(model.get_weights())
    return net


def segment_image(
    model: keras.Model,
    image: np.ndarray,
    build: Builder,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> np.ndarray:
    """Class probabilities (H, W, classes) float32 of one RGB image of any size.

    The image is padded at the bottom/right with the mean pixel to :func:`eval_size` (as evaluation pads to
    the crop), predicted with :func:`predict_probabilities` and the padding cropped off.

    Args:
        model: trained DeepLabv3+ (logits (batch, h, w, classes)).
        image: uint8 (H, W, 3).
        build: factory of the same architecture at another size.
        scales: evaluation scales.
        flip: average with the left-right flipped prediction.
    """
    height, width = image.shape[:2]
    size = eval_size((height, width), model.inputs[0].shape[1:3])
    net = at_size(model, size, build)
    padded, _ = pad_to(image, None, *size)
    probs = predict_probabilities(net, padded[None], tuple(scales), flip, 1, build)
    return probs[0, :height, :width].astype(np.float32)


def write_palette_png(labels: np.ndarray, path: str) -> None:
    """Writes class ids (H, W) as a mode "P" PNG with the VOC colours (ids read back intact)."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(voc_palette().ravel().tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 (H, W, 3): ``(1 - alpha) * image + alpha * VOC colour`` of each pixel's class."""
    colours = voc_palette()[np.asarray(labels, dtype=np.uint8)].astype(np.float32)
    return np.round((1 - alpha) * image.astype(np.float32) + alpha * colours).astype(np.uint8)


def overlay_rows(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    predicted: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
) -> np.ndarray:
    """One uint8 RGB picture, a row per image: image | label overlay | prediction overlay (:func:`overlay`).

    Args:
        images: uint8 (H, W, 3) each, padded; ``sizes`` gives the part shown.
        labels: class ids (H, W) each, void 255.
        predicted: class ids (H, W) each.
        sizes: (h, w) of each image before padding.

    Returns:
        uint8 (rows' total height, widest row, 3), rows separated and right-padded in white.
    """
    rows = []
    for image, label, pred, (h, w) in zip(images, labels, predicted, sizes):
        image = image[:h, :w]
        rows.append(np.concatenate([image, overlay(image, label[:h, :w]), overlay(image, pred[:h, :w])], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts, rows = true class, over pixels whose label is not void (255)."""
    valid = labels != VOID_LABEL
    index = labels[valid].astype(np.int64) * classes + predicted[valid].astype(np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def iou_report(confusion: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """``mean_iou`` (classes with an empty union left out), ``pixel_accuracy`` and ``iou_<name>`` per class."""
    ious = per_class_iou(confusion)
    valid = ious[~np.isnan(ious)]
    report = {
        "mean_iou": float(valid.mean()) if valid.size else float("nan"),
        "pixel_accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
    }
    for name, iou in zip(names, ious):
        if not np.isnan(iou):
            report[f"iou_{name}"] = float(iou)
    return report


def evaluate_images(
    model: keras.Model,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    build: Builder,
    class_names: Sequence[str],
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> tuple[dict[str, float], list[dict]]:
    """mIoU with the void label ignored over a labelled set, each image predicted by :func:`segment_image`
    (padded to the model's size, as training's evaluation pads to the crop).

    Args:
        model: trained DeepLabv3+.
        images: uint8 (H, W, 3) each; labels: uint8 (H, W) class ids or 255 each; names: one per image.
        build: factory of the same architecture at another size.
        class_names: one name per class (``len`` = the number of classes).
        scales, flip: as :func:`predict_probabilities`.

    Returns:
        (:func:`iou_report` of the summed confusion matrix plus ``images``, one row per image with its
        ``name``, ``pixel_accuracy`` and ``mean_iou``).
    """
    classes = len(class_names)
    total = np.zeros((classes, classes), np.int64)
    rows = []
    for name, image, label in zip(names, images, labels):
        predicted = segment_image(model, image, build, scales, flip).argmax(-1)
        confusion = confusion_matrix(label, predicted, classes)
        total += confusion
        report = iou_report(confusion, class_names)
        rows.append(
            {"name": name, "pixel_accuracy": report["pixel_accuracy"], "mean_iou": report["mean_iou"]}
        )
    return {**iou_report(total, class_names), "images": len(rows)}, rows

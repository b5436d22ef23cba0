"""AmoebaNet-D inference: Inception evaluation preprocessing, softmax top-k with ImageNet class ids, WordNet
ids and names, written as ``predictions.csv``; top-1/top-5 accuracy of labelled images.

Class ids are the model's outputs: with 1001 classes id 0 is the background and id i the ILSVRC-2012 class
i - 1; with 1000 classes id i is class i; other class counts have no ImageNet names (``class<i>``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np

from keras_zoo.datasets.imagenet import open_rgb_image, preprocess_eval, synsets

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def preprocess_files(paths: Sequence[str], size: int) -> np.ndarray:
    """float32 (n, size, size, 3) in [-1, 1]: central 87.5% crop and bilinear resize of each image file."""
    return np.stack([preprocess_eval(open_rgb_image(path), size) for path in paths])


def class_probabilities(
    model: keras.Model, images: np.ndarray, flip: bool = False, batch_size: int = 8
) -> np.ndarray:
    """Softmax probabilities (n, classes) float32 of preprocessed images (n, H, W, 3); with ``flip`` the mean
    with the left-right mirrored images' probabilities."""
    views = [images, images[:, :, ::-1]] if flip else [images]
    total = 0.0
    for view in views:
        logits = model.predict(view, batch_size=batch_size, verbose=0)
        total = total + keras.ops.convert_to_numpy(keras.ops.softmax(logits.astype(np.float32), axis=-1))
    return (total / len(views)).astype(np.float32)


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (n, k) int64, probabilities (n, k)) of the k most probable classes, most probable first."""
    k = min(k, probabilities.shape[1])
    ids = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(probabilities, ids, axis=1)


def class_label(class_id: int, classes: int) -> tuple[str, str]:
    """(WordNet id, short name) of a model output id; ("", "background") for id 0 of 1001; ("", "class<i>")
    when the model has neither 1000 nor 1001 classes."""
    if classes not in (1000, 1001):
        return "", f"class{class_id}"
    index = class_id - (classes - 1000)
    return ("", "background") if index < 0 else synsets()[index]


def csv_header(k: int) -> list[str]:
    """``file``, then ``class_i``, ``wnid_i``, ``name_i``, ``probability_i`` for ranks i = 1..k."""
    return ["file"] + [
        f"{field}_{i}" for i in range(1, k + 1) for field in ("class", "wnid", "name", "probability")
    ]


def csv_rows(files: Sequence[str], ids: np.ndarray, probs: np.ndarray, classes: int) -> list[list]:
    """Rows of :func:`csv_header` for each file."""
    rows = []
    for path, row_ids, row_probs in zip(files, ids, probs):
        row = [path]
        for class_id, prob in zip(row_ids, row_probs):
            row += [int(class_id), *class_label(int(class_id), classes), f"{float(prob):.6f}"]
        rows.append(row)
    return rows


def topk_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per image, whether ``labels`` (n,) is among the k most probable classes: bool (n,)."""
    ids, _ = top_k(probabilities, k)
    return (ids == np.asarray(labels)[:, None]).any(axis=1)


def model_image_size(model: keras.Model) -> int:
    """The square input size of a classifier (224 for AmoebaNet-D's default)."""
    height, width = model.inputs[0].shape[1:3]
    if height is None or height != width:
        raise ValueError(f"model {model.name!r} input {height}x{width} is not a fixed square size")
    return int(height)


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` (a folder input), else its base name."""
    if os.path.isdir(root):
        return os.path.relpath(path, root)
    return os.path.basename(path)


def evaluate_files(
    model: keras.Model, paths: Sequence[str], labels: np.ndarray, flip: bool = False, batch_size: int = 8
) -> tuple[dict[str, float], list[dict]]:
    """Top-1 / top-5 accuracy of labelled image files (labels in the model's class ids).

    Returns:
        (``top1``, ``top5`` and ``images``; one row per file with its ``label``, ``top1_class``, ``top1`` and
        ``top5`` (0/1)).
    """
    size = model_image_size(model)
    probs = np.concatenate(
        [
            class_probabilities(model, preprocess_files(paths[i : i + batch_size], size), flip, batch_size)
            for i in range(0, len(paths), batch_size)
        ]
    )
    top1, top5 = topk_accuracy(probs, labels, 1), topk_accuracy(probs, labels, 5)
    rows = [
        {"file": path, "label": int(label), "top1_class": int(p.argmax()), "top1": int(a), "top5": int(b)}
        for path, label, p, a, b in zip(paths, labels, probs, top1, top5)
    ]
    return {"top1": float(top1.mean()), "top5": float(top5.mean()), "images": len(rows)}, rows

"""``keras-zoo predict``: run a trained network on a file or a folder of files and write the results.

U-Net (``--model unet`` or a U-Net training checkpoint): every grayscale image (``.png``, ``.tif``, ...) is
segmented at its native resolution and written as ``OUTPUT/<name>.png`` (white = cell interior, as in the
ISBI labels), plus ``<name>_prob.tif`` (float32 probabilities) with ``--probabilities``. The other
networks are not supported yet and fail with a one-line message.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

from keras_zoo.cli.inference_model import add_model_arguments, build_model, cli_argv, run_cli

log = logging.getLogger(__name__)

SUPPORTED = ("unet",)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-zoo predict", description="Predict masks for images.")
    add_model_arguments(parser)
    g = parser.add_argument_group("predict")
    g.add_argument("--input", required=True, help="image file or folder of images")
    g.add_argument("--output", required=True, help="folder for the predicted masks")
    g.add_argument("--threshold", type=float, default=0.5, help="cell-interior probability threshold")
    g.add_argument("--probabilities", action="store_true", help="also write float32 probability TIFFs")
    g.add_argument("--tta", action="store_true", help="average over the 8 flips and quarter turns")
    return parser


def list_inputs(path: str) -> list[str]:
    """The image files named by ``path`` (a file, or the images in a folder, sorted)."""
    from keras_zoo.errors import data_error, require_dir, require_file

    if os.path.isdir(path):
        folder = require_dir(path, "input folder")
        files = [
            os.path.join(folder, name)
            for name in sorted(os.listdir(folder))
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
        ]
        if not files:
            raise data_error(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in the input folder")
        return files
    return [require_file(path, "input image")]


def segment(model, image: np.ndarray, stride: int, tta: bool = False) -> np.ndarray:
    """Cell-interior probabilities (H, W) of a [0, 1] grayscale image (H, W) of any size >= ``stride``.

    The image is reflect-padded up to a multiple of ``stride`` (the network's total downsampling) and the
    padding is cropped from the prediction. ``tta`` averages over the 8 flips and quarter turns.
    """
    from keras_zoo.errors import ConfigError
    from keras_zoo.inference import predict_images

    def predict(batch: np.ndarray) -> np.ndarray:
        return predict_images(model, batch, tta)

    height, width = image.shape
    fixed = model.inputs[0].shape[1:3]
    if None not in fixed:
        if tuple(fixed) != (height, width):
            from skimage import transform

            small = transform.resize(image, fixed, order=1, anti_aliasing=True)
            prob = predict(small[None, ..., None])[0, ..., 0]
            return transform.resize(prob, (height, width), order=1)
        return predict(image[None, ..., None])[0, ..., 0]
    if min(height, width) < stride:
        raise ConfigError(f"image {height}x{width} is smaller than the network's stride {stride}")
    pad_h, pad_w = -height % stride, -width % stride
    padded = np.pad(image, ((0, pad_h), (0, pad_w)), mode="reflect")
    return predict(padded[None, ..., None])[0, :height, :width, 0]


def _stride(model) -> int:
    """Total downsampling of a U-Net: 2 ** (number of max-pooling layers)."""
    import keras

    return 2 ** sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)


def predict_unet(
    model, files: list[str], output: str, threshold: float, probabilities: bool, tta: bool = False
) -> list[str]:
    """Writes ``<name>.png`` masks (uint8 0/255) for every file; returns the written mask paths."""
    import tifffile
    from PIL import Image

    from keras_zoo.datasets.isbi import read_image
    from keras_zoo.io import atomic_path

    os.makedirs(output, exist_ok=True)
    stride, written = _stride(model), []
    for path in files:
        prob = segment(model, read_image(path), stride, tta).astype(np.float32)
        stem = os.path.splitext(os.path.basename(path))[0]
        mask_path = os.path.join(output, f"{stem}.png")
        with atomic_path(mask_path) as tmp:
            Image.fromarray(np.where(prob > threshold, 255, 0).astype(np.uint8)).save(tmp, format="PNG")
        if probabilities:
            with atomic_path(os.path.join(output, f"{stem}_prob.tif")) as tmp:
                tifffile.imwrite(tmp, prob)
        written.append(mask_path)
        log.info("%s -> %s (%.1f%% cell interior)", path, mask_path, 100 * float(np.mean(prob > threshold)))
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo predict``; returns 0 or 2 (user error)."""
    argv = cli_argv(argv)

    def body() -> int:
        from keras_zoo.errors import ConfigError

        args = build_parser().parse_args(argv)
        if not 0.0 < args.threshold < 1.0:
            raise ConfigError(f"--threshold must be in (0, 1), got {args.threshold}")
        files = list_inputs(args.input)
        model, train_args = build_model(args)
        name = train_args.model if train_args is not None else args.model
        if name not in SUPPORTED:
            raise ConfigError(f"predict supports {', '.join(SUPPORTED)} so far, not {name!r}")
        written = predict_unet(model, files, args.output, args.threshold, args.probabilities, args.tta)
        print(f"{len(written)} masks written to {args.output}")
        return 0

    return run_cli(body, argv, "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())

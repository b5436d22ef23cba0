"""Downscales the 14 real VOC samples to N x N for the DeepLabv3+ overfitting check (docs/deeplab_overfit.md).

Usage: python benchmarks/deeplab_overfit_data.py 129 [--source DIR] [--output DIR]

Reads ``$KERAS_ZOO_SHARED_DATA/voc2012_samples`` (default ``../shared/data`` beside the checkout) and writes
``OUTPUT/VOC2012`` (default ``/tmp/voc<N>``): JPEG images resized bilinearly, label PNGs by nearest
neighbour, and ``ImageSets/Segmentation/val.txt``. An output folder that already holds files is refused.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np
from PIL import Image

from keras_zoo.datasets.voc import load_voc_split, save_label_png

SHARED = pathlib.Path(
    os.environ.get("KERAS_ZOO_SHARED_DATA", pathlib.Path(__file__).parents[2] / "shared" / "data")
)


def downscale(source: str, output: str, size: int) -> int:
    """Writes the ``val`` split of the VOC folder ``source`` at ``size`` x ``size`` under ``output/VOC2012``;
    returns the number of images."""
    ids, images, labels = load_voc_split(source, "val")
    root = pathlib.Path(output) / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, image, label in zip(ids, images, labels):
        Image.fromarray(image).resize((size, size), Image.BILINEAR).save(
            root / "JPEGImages" / f"{name}.jpg", quality=95
        )
        small = np.asarray(Image.fromarray(label).resize((size, size), Image.NEAREST))
        save_label_png(small, str(root / "SegmentationClass" / f"{name}.png"))
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=int, nargs="?", default=129)
    parser.add_argument("--source", default=str(SHARED / "voc2012_samples"))
    parser.add_argument("--output", help="default: /tmp/voc<size>")
    args = parser.parse_args(argv)
    output = args.output or f"/tmp/voc{args.size}"
    if args.size < 1:
        parser.error(f"size must be >= 1, got {args.size}")
    if os.path.isdir(output) and os.listdir(output):
        print(f"error: {output}: not empty; give another --output", file=sys.stderr)
        return 2
    print("ok", downscale(args.source, output, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())

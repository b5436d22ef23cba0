"""Downscales the 14 real VOC samples (../shared/data/voc2012_samples) to N x N for the overfitting check.

Usage: python benchmarks/deeplab_overfit_data.py 129   (writes /tmp/voc129/VOC2012; images bilinear, labels nearest)
"""

import os
import sys

import numpy as np
from PIL import Image

from keras_zoo.datasets.voc import load_voc_split, save_label_png

src = "/work/shared/data/voc2012_samples"
dst = "/tmp/voc129/VOC2012"
n = int(sys.argv[1]) if len(sys.argv) > 1 else 129
ids, images, labels = load_voc_split(src, "val")
for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
    os.makedirs(f"{dst}/{d}", exist_ok=True)
for i, im, lb in zip(ids, images, labels):
    Image.fromarray(im).resize((n, n), Image.BILINEAR).save(f"{dst}/JPEGImages/{i}.jpg", quality=95)
    save_label_png(
        np.asarray(Image.fromarray(lb).resize((n, n), Image.NEAREST)), f"{dst}/SegmentationClass/{i}.png"
    )
open(f"{dst}/ImageSets/Segmentation/val.txt", "w").write("\n".join(ids) + "\n")
print("ok", len(ids))

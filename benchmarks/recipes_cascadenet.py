"""CascadeNet from scratch on MR: train on the prostate volume, evaluate on the held-out BART brain slice.

The train CLI splits one set of slices into training and validation; this script keeps the brain slice out of
training altogether and evaluates on it, both as its complex image (magnitude and phase) and as its magnitude.
It trains through the library exactly as ``train.py --model cascadenet`` does (same data stream, same model)
with the learning-rate schedule and loss as options, or evaluates a checkpoint written by the CLI.

Usage (one JSON line on stdout):
    python benchmarks/recipes_cascadenet.py --steps 300 --batch-size 2 --size 128            # CLI recipe
    python benchmarks/recipes_cascadenet.py --steps 300 --lr-schedule cosine --loss mse      # a variant
    python benchmarks/recipes_cascadenet.py --weights output/checkpoints/last.h5             # evaluate only
"""

# ruff: noqa: I001  (keras_zoo is imported before Keras on purpose)
# ruff: noqa: E402 - TensorFlow's CPU defaults are set before Keras loads it
from __future__ import annotations

import argparse
import json
import os
import time

from keras_zoo.runtime.tf_env import apply_tf_cpu_defaults

apply_tf_cpu_defaults()  # before Keras loads TensorFlow

import keras
import numpy as np

from keras_zoo.datasets.base import split_indices
from keras_zoo.datasets.mri import (
    cascadenet_example,
    channels_to_complex,
    scale_to_unit_max,
    undersampled_examples,
)
from keras_zoo.datasets.mr_slices import FITS
from keras_zoo.datasets.mri_readers import load_mr_images
from keras_zoo.metrics.reconstruction import complex_psnr, ssim
from keras_zoo.models.cascadenet import cascadenet

DATA = os.environ.get("KERAS_ZOO_SHARED_DATA", "/work/shared/data")
PROSTATE = os.path.join(DATA, "mr_prostatex", "ProstateX-0000_t2_tse_tra_4.nii.gz")
BRAIN = os.path.join(DATA, "mr_kspace_bart_brain", "reference_image.npy")
EVAL_SEED = 1_000_003  # the CLI's validation-mask seed (VALIDATION_SEED + seed 0)


def prostate_slices(size: int, val_fraction: float, seed: int, fit: str = "crop") -> np.ndarray:
    """The prostate training slices as the CLI reads them: (n, size, size) complex64, max magnitude 1.

    ``fit`` is the CLI's ``--fit``: "crop" (centre crop) or "resample" (k-space crop, whole field of view).
    """
    images = scale_to_unit_max(FITS[fit](load_mr_images(PROSTATE), (size, size)))
    train_idx, _ = split_indices(len(images), val_fraction, seed)
    return images[train_idx]


def brain_images(pad: int = 0) -> dict[str, np.ndarray]:
    """The held-out brain slice, (1, 180, 230) complex64 with max magnitude 1: complex and magnitude.

    ``pad`` > 0 zero-pads it to (pad, pad), as the CLI does when the slice joins 384x384 prostate slices.
    """
    reference = scale_to_unit_max(np.load(BRAIN)[None])
    if pad:
        h, w = reference.shape[-2:]
        reference = np.pad(
            reference,
            ((0, 0), ((pad - h) // 2, pad - h - (pad - h) // 2), ((pad - w) // 2, pad - w - (pad - w) // 2)),
        )
    return {"complex": reference, "magnitude": np.abs(reference).astype(np.complex64)}


def evaluate(
    model: keras.Model,
    image: np.ndarray,
    masks: int,
    acceleration: float,
    lines: int,
    normalise: str = "none",
    mask_kind: str = "cartesian",
) -> dict:
    """Mean complex PSNR / SSIM of zero-filled and reconstructed ``image`` (1, H, W) over ``masks`` masks.

    Mask ``i`` is drawn with seed ``EVAL_SEED + i`` (4x Cartesian, ``lines`` centre lines, lines along axis
    -2); ``normalise`` is applied as in training (PSNR and SSIM take the peak from the reference, so the
    scale does not change them, only what the network sees).
    """
    psnr = {"zero_filled": [], "reconstruction": []}
    ssims = {"zero_filled": [], "reconstruction": []}
    for i in range(masks):
        inputs, target = cascadenet_example(image, EVAL_SEED + i, acceleration, lines, mask_kind, normalise)
        output = keras.ops.convert_to_numpy(model(inputs, training=False))
        ref = channels_to_complex(target)[0]
        for label, x in (("zero_filled", inputs[0]), ("reconstruction", output)):
            rec = channels_to_complex(x)[0]
            psnr[label].append(complex_psnr(ref, rec))
            ssims[label].append(ssim(np.abs(ref), np.abs(rec)))
    out = {f"psnr_{k}": float(np.mean(v)) for k, v in psnr.items()}
    out.update({f"ssim_{k}": float(np.mean(v)) for k, v in ssims.items()})
    out["gain_db"] = out["psnr_reconstruction"] - out["psnr_zero_filled"]
    return out


def learning_rate(kind: str, lr: float, steps: int):
    """Adam's learning rate: ``constant`` (the CLI), or ``cosine`` decay to 5 % over ``steps``."""
    if kind == "constant":
        return lr
    return keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.05)


def build(args: argparse.Namespace) -> keras.Model:
    """The reference D5-C5 (fully convolutional) compiled as the options say."""
    authors = bool(args.weights) and args.weights.endswith(".npz")  # the authors' Lasagne d5_c5.npz
    model = cascadenet((None, None, 2), filters=args.filters, weights=args.weights if authors else None)
    if args.weights and not authors:
        from keras_zoo.weights import load_weights

        load_weights(model, args.weights)
    optimizer = keras.optimizers.Adam(learning_rate(args.lr_schedule, args.lr, args.steps))
    model.compile(optimizer=optimizer, loss=args.loss)
    return model


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="training steps (0 with --weights: evaluate only)")
    p.add_argument("--epochs", type=int, default=3, help="the steps are split into this many epochs")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--size", type=int, default=128, help="size of the prostate slices (see --fit)")
    p.add_argument("--fit", choices=tuple(FITS), default="crop", help="the CLI's --fit")
    p.add_argument(
        "--normalise", choices=("none", "zero_filled"), default="none", help="the CLI's --normalise"
    )
    p.add_argument("--phase-radians", type=float, default=np.pi, help="the CLI's --phase-radians")
    p.add_argument("--phase-probability", type=float, default=1.0, help="the CLI's --phase-probability")
    p.add_argument("--mask", choices=("cartesian", "uniform"), default="cartesian", help="the CLI's --mask")
    p.add_argument("--val-fraction", type=float, default=0.2, help="prostate slices the CLI holds out")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    p.add_argument("--loss", choices=("mse", "mae"), default="mse")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument(
        "--no-augment", action="store_true", help="train on the slices as given (no flips, no phase)"
    )
    p.add_argument("--acceleration", type=float, default=4.0)
    p.add_argument("--centre-lines", type=int, default=8)
    p.add_argument("--masks", type=int, default=8, help="evaluation masks per brain image")
    p.add_argument("--pad", type=int, default=0, help="zero-pad the brain slice to PAD x PAD for evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", help="start from (or, with --steps 0, evaluate) this checkpoint")
    p.add_argument("--label", default="", help="free text copied to the JSON line")
    args = p.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    started = time.time()
    model = build(args)
    if args.steps:
        images = prostate_slices(args.size, args.val_fraction, args.seed, args.fit)
        per_epoch = args.steps // args.epochs
        train = undersampled_examples(
            images,
            args.batch_size,
            per_epoch,
            args.seed,
            args.acceleration,
            args.centre_lines,
            args.mask,
            workers=0,
            augment=not args.no_augment,
            normalise=args.normalise,
            phase_radians=args.phase_radians,
            phase_probability=args.phase_probability,
        )
        model.fit(train, epochs=args.epochs, verbose=2, shuffle=False)
    trained = time.time() - started
    result = {
        name: evaluate(
            model, image, args.masks, args.acceleration, args.centre_lines, args.normalise, args.mask
        )
        for name, image in brain_images(args.pad).items()
    }
    record = {
        "label": args.label,
        "args": vars(args),
        "brain": result,
        "train_s": round(trained, 1),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()

"""``keras-zoo evaluate``: score a checkpoint on a labelled set with its task's metrics.

``--data`` is the format training reads; the scores are those of :mod:`keras_zoo.inference`:

- unet: ISBI 2012 PNG folders or TIFF stacks; pixel accuracy, membrane Dice and IoU on whole slices.
- deeplabv3plus: a VOCdevkit folder (``--split``, default val); mIoU with void (255) ignored, pixel
  accuracy, per-class IoU; ``--scales`` / ``--flip`` for multi-scale inference.
- cascadenet: MR images (any format ``--data`` takes for training), undersampled with seeded masks
  (``--acceleration``, ``--centre-lines``, ``--seed``); PSNR, SSIM, NMSE per slice, reconstruction and
  zero-filled.
- genesis: a folder of cube files ``bat_*.npy`` (``--folds``, default all); restoration MSE.
- amoebanet: ImageNet class folders ``<wnid>/*.JPEG``; top-1 and top-5 accuracy.

Writes ``OUTPUT/evaluation.json`` (the scores, the model and the options) and ``OUTPUT/evaluation.csv``
(one row per slice, image or cube); never replaces them without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from keras_zoo.cli.command import run_command
from keras_zoo.cli.inference_model import (
    build_model,
    check_network_flags,
    model_command_parser,
    network_name,
)

log = logging.getLogger(__name__)

# The networks evaluate scores, each with the flags that only it reads (given for another one: an error).
NETWORK_FLAGS = {
    "unet": ("threshold",),
    "deeplabv3plus": ("split", "scales", "flip"),
    "cascadenet": ("acceleration", "centre_lines", "data_key"),
    "genesis": ("folds",),
    "amoebanet": (),
}
SUPPORTED = tuple(NETWORK_FLAGS)
TTA_NETWORKS = ("unet", "amoebanet")


def build_parser() -> argparse.ArgumentParser:
    parser, g = model_command_parser(
        "evaluate", "Score a checkpoint on a labelled set (see the module docs)."
    )
    g.add_argument("--data", required=True, help="labelled data in the format training reads")
    g.add_argument("--output", default="evaluation", help="folder for evaluation.json and evaluation.csv")
    g.add_argument("--overwrite", action="store_true", help="replace existing evaluation files")
    g.add_argument("--batch-size", type=int, default=4, help="samples per forward pass")
    g.add_argument("--seed", type=int, default=0, help="seed of undersampling masks / restoration transforms")
    g.add_argument("--tta", action="store_true", help="unet: 8 dihedral views; amoebanet: left-right flip")
    g = parser.add_argument_group("unet")
    g.add_argument("--threshold", type=float, help="cell-interior probability threshold (default 0.5)")
    g = parser.add_argument_group("deeplabv3plus")
    g.add_argument("--split", help="image list in ImageSets/Segmentation (default val)")
    g.add_argument(
        "--scales", type=float, nargs="+", help="multi-scale inference, e.g. 0.5 0.75 1 1.25 1.5 1.75"
    )
    g.add_argument("--flip", action="store_true", help="average with the left-right flipped prediction")
    g = parser.add_argument_group("cascadenet")
    g.add_argument("--acceleration", type=float, help="undersampling factor (default 4)")
    g.add_argument("--centre-lines", type=int, help="fully sampled central lines (default 8)")
    g.add_argument("--data-key", help="variable of a .mat file")
    g = parser.add_argument_group("genesis")
    g.add_argument("--folds", type=int, nargs="+", help="cube-file folds to score (default: all found)")
    return parser


def check_flags(args: argparse.Namespace, name: str) -> None:
    """ConfigError for a network-specific flag given to another network, or a bad common value."""
    check_network_flags(args, name, NETWORK_FLAGS, TTA_NETWORKS)


# ------------------------------------------------------------------------------------------- networks
def evaluate_unet(model, args):
    from keras_zoo.datasets.isbi import read_isbi
    from keras_zoo.inference.segmentation import evaluate_slices

    slices = read_isbi(args.data)
    threshold = 0.5 if args.threshold is None else args.threshold
    return evaluate_slices(model, slices.images, slices.labels, slices.names, args.tta, threshold)


def evaluate_deeplab(model, args, train_args):
    from keras_zoo.cli.inference_model import rgb_builder
    from keras_zoo.datasets.voc import check_label_classes, class_names, load_voc_split
    from keras_zoo.inference.deeplab import evaluate_images

    names, images, labels = load_voc_split(args.data, args.split or "val")
    classes = int(model.outputs[0].shape[-1])
    check_label_classes(names, labels, classes, f"the model's {classes} classes")
    build = rgb_builder(args, train_args)
    return evaluate_images(
        model, images, labels, names, build, class_names(classes), args.scales or (1.0,), args.flip
    )


def evaluate_cascadenet(model, args, train_args):
    import numpy as np

    from keras_zoo.cli.inference_model import trained_simulation
    from keras_zoo.datasets.mr_slices import data_files
    from keras_zoo.datasets.mri_readers import load_mr_images
    from keras_zoo.errors import ConfigError, KerasZooError, data_error
    from keras_zoo.inference.cascadenet import evaluate_images

    acceleration = 4.0 if args.acceleration is None else args.acceleration
    if not acceleration >= 1:  # before the masks divide by it (NaN included)
        raise ConfigError(f"--acceleration must be >= 1, got {acceleration:g}")
    stacks = [load_mr_images(path, key=args.data_key) for path in data_files(args.data)]  # as training reads
    if len({stack.shape[1:] for stack in stacks}) > 1:
        sizes = sorted({stack.shape[1:] for stack in stacks})
        raise data_error(args.data, f"holds slices of several sizes {sizes}; evaluate each size on its own")
    images = np.concatenate(stacks)
    centre_lines = 8 if args.centre_lines is None else args.centre_lines
    try:
        return evaluate_images(
            model,
            images,
            acceleration,
            centre_lines,
            args.seed,
            args.batch_size,
            **trained_simulation(train_args),
        )
    except ValueError as exc:
        if isinstance(exc, KerasZooError):
            raise
        raise ConfigError(f"--acceleration/--centre-lines: {exc}") from None


def evaluate_genesis(model, args):
    from keras_zoo.datasets.volumes import find_cube_files, read_named_cube_folds
    from keras_zoo.errors import ConfigError, data_error
    from keras_zoo.inference.genesis import evaluate_cubes, genesis_kind

    if genesis_kind(model) != "restore":
        raise ConfigError(
            "evaluate scores genesis pretraining (restoration) checkpoints; fine-tuned ones: train.py --eval-only"
        )
    found = find_cube_files(args.data)
    if not found:
        raise data_error(args.data, "no cube files bat_<N>_s_<rows>x<cols>x<depth>_<fold>.npy")
    cubes, names = read_named_cube_folds(args.data, args.folds or sorted(found))
    return evaluate_cubes(model, cubes, args.seed, args.batch_size, names)


def evaluate_amoebanet(model, args):
    from keras_zoo.datasets.imagenet import list_image_folder
    from keras_zoo.inference.amoebanet import evaluate_files

    paths, labels = list_image_folder(args.data, classes=int(model.outputs[0].shape[-1]))
    summary, rows = evaluate_files(model, paths, labels, args.tta, args.batch_size)
    for row in rows:
        row["file"] = os.path.relpath(row["file"], args.data)
    return summary, rows


def run(model, name: str, args, train_args):
    """The network's ``(summary, rows)``."""
    if name == "unet":
        return evaluate_unet(model, args)
    if name == "deeplabv3plus":
        return evaluate_deeplab(model, args, train_args)
    if name == "cascadenet":
        return evaluate_cascadenet(model, args, train_args)
    if name == "genesis":
        return evaluate_genesis(model, args)
    return evaluate_amoebanet(model, args)


def options(args: argparse.Namespace) -> dict:
    """The options that shaped the scores, for evaluation.json."""
    flags = [flag for network_flags in NETWORK_FLAGS.values() for flag in network_flags]
    keys = ("weights", "model", "preset", "set", "data", "seed", "tta", *flags)
    values = {key: getattr(args, key) for key in keys}
    return {
        key: value
        for key, value in values.items()
        if value is not None and value is not False and value != []
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo evaluate``; returns 0, 2 (user error) or 130 (Ctrl-C)."""

    def body(args: argparse.Namespace) -> int:
        from keras_zoo.errors import ConfigError, require_file
        from keras_zoo.inference.common import OutputClaims, output_folder, write_csv, write_json

        if not os.path.exists(args.data):
            require_file(args.data, "--data")
        if os.path.isfile(args.output):
            raise ConfigError(f"--output {args.output}: is a file; give a folder for the results")
        json_path, csv_path = OutputClaims(args.overwrite).claim_all(
            [os.path.join(args.output, "evaluation.json"), os.path.join(args.output, "evaluation.csv")]
        )
        name, _ = network_name(args)  # the flags are checked before the network is built (seconds)
        if name not in SUPPORTED:
            raise ConfigError(f"evaluate supports {', '.join(SUPPORTED)}, not {name!r}")
        check_flags(args, name)
        model, train_args = build_model(args)
        summary, rows = run(model, name, args, train_args)
        with output_folder(args.output):
            write_csv(csv_path, list(rows[0]), [list(row.values()) for row in rows])
            write_json(json_path, {"model": name, **summary, "options": options(args)})
        print(
            f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if isinstance(v, float))[:400]
        )
        print(f"wrote {json_path} and {csv_path}")
        return 0

    return run_command(build_parser().parse_args, body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""``keras-zoo prepare {genesis,voc,imagenet}``: write the reference on-disk formats from raw data.

- ``genesis``: volumes (NIfTI, MetaImage, DICOM folders) -> ``bat_<N>_s_64x64x32_<fold>.npy`` cube files;
  a bad volume (NaN/Inf voxels, constant, unreadable) is a one-line error and no file is written.
- ``voc``: a VOCdevkit folder -> DeepLab tfrecord shards ``{split}-{shard:05d}-of-{n:05d}.tfrecord``.
- ``imagenet``: a class-folder tree -> slim/TPU ``train-*`` / ``validation-*`` tfrecord shards.

Existing output is kept: a cube file of a name this run writes, or shards of a split it writes, are refused
(naming one) unless ``--overwrite``, which replaces exactly those (and removes the split's old shards that the
new set does not replace, so no stale shard is read with it). A failed run removes what it wrote itself.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys

from keras_zoo.cli.command import run_command

log = logging.getLogger("keras_zoo.prepare")

VOLUME_PATTERNS = ("*.nii", "*.nii.gz", "*.mhd", "*.mha")


def _volumes(inputs: list[str]) -> list[str]:
    """Expands folders into the volume files (and DICOM series folders) inside them, sorted."""
    from keras_zoo.errors import data_error

    found = []
    for path in inputs:
        if os.path.isdir(path):
            files = sorted(f for pattern in VOLUME_PATTERNS for f in glob.glob(os.path.join(path, pattern)))
            found.extend(files or [path])  # a folder without volume files is taken as a DICOM series
        elif os.path.exists(path):
            found.append(path)
        else:
            raise data_error(path, "volume not found")
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-zoo prepare", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    g = sub.add_parser("genesis", help="cut 64x64x32 cubes from CT/MR volumes into the reference fold files")
    g.add_argument("inputs", nargs="+", help="volume files or folders")
    g.add_argument("--output", required=True)
    g.add_argument("--modality", choices=("ct", "mr"), default="ct")
    g.add_argument("--scale", type=int, default=32, help="cubes per volume")
    g.add_argument("--folds", type=int, nargs="+", default=list(range(10)))
    g.add_argument("--border", type=int, nargs=3, default=(0, 0, 0), help="reference on LUNA16: 100 100 30")
    g.add_argument("--lung-max", type=float, help="reference on LUNA16: 0.15")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace cube files of the same names in --output (without it they are refused)",
    )
    v = sub.add_parser("voc", help="VOCdevkit -> DeepLab tfrecords")
    v.add_argument("voc_root")
    v.add_argument("--output", required=True)
    v.add_argument("--splits", nargs="+", default=["train", "val"])
    v.add_argument("--num-shards", type=int, default=4)
    v.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards of --splits in --output and remove their stale ones (without it they are refused)",
    )
    i = sub.add_parser("imagenet", help="class folders -> slim/TPU tfrecords")
    i.add_argument("folder")
    i.add_argument("--output", required=True)
    i.add_argument("--num-shards", type=int, default=8)
    i.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the train/validation shards in --output and remove their stale ones "
        "(without it they are refused)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo prepare``; returns 0 or 2 (user error)."""
    return run_command(build_parser().parse_args, _prepare, argv)


def _prepare(args: argparse.Namespace) -> int:
    if args.dataset == "genesis":
        from keras_zoo.datasets.volumes import prepare_genesis

        written = prepare_genesis(
            _volumes(args.inputs),
            args.output,
            scale=args.scale,
            folds=args.folds,
            modality=args.modality,
            border=args.border,
            lung_max=args.lung_max,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    elif args.dataset == "voc":
        from keras_zoo.datasets.voc_tfrecord import prepare_voc

        written = [
            f
            for files in prepare_voc(
                args.voc_root, args.output, args.splits, args.num_shards, overwrite=args.overwrite
            ).values()
            for f in files
        ]
    else:
        from keras_zoo.datasets.imagenet_tfrecord import prepare_imagenet

        written = [
            f
            for files in prepare_imagenet(
                args.folder, args.output, args.num_shards, overwrite=args.overwrite
            ).values()
            for f in files
        ]
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

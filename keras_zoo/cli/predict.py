"""``keras-zoo predict``: run a trained network on a file or a folder of files and write the results.

The model comes from a training checkpoint (rebuilt from its run folder) or ``--model NAME [--preset/--set]``;
what is read and written depends on the network (the work itself is done by :mod:`keras_zoo.inference`):

- unet: grayscale images -> ``<name>.png`` masks (255 = cell interior), ``<name>_prob.tif`` with
  ``--probabilities``; ``--tta`` averages the 8 flips and quarter turns.
- deeplabv3plus: RGB images of any size -> ``<name>.png`` palette masks (VOC colours, class ids in mode "P"),
  ``<name>_overlay.png`` with ``--overlay``; ``--scales`` and ``--flip`` (or ``--tta``) as evaluation.
- genesis: NIfTI / MetaImage volumes or a DICOM folder -> ``<name>_restored.nii.gz`` (pretraining) or
  ``<name>_labels.nii.gz`` (segmenter) on the input's grid and affine, or ``probabilities.csv``
  (classifier); overlapping windows (``--overlap``, ``--batch-size``) with Gaussian blending.
- cascadenet: single-coil k-space ``.npy``/``.cfl`` (+ ``--mask``, ``--centred``), or images undersampled
  here with ``--acceleration``/``--centre-lines`` (an Ascend-port ``.h5`` uses its own mask) ->
  ``<name>.npy`` complex64 (n, Nx, Ny), ``<name>.cfl`` for ``.cfl`` input, magnitude PNGs, and
  ``metrics.csv`` (PSNR/SSIM/NMSE) when a reference is known (``--reference``, or the images).
- amoebanet: images -> ``predictions.csv`` (file, then class id, WordNet id, name, probability per rank).

An existing output file is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

from keras_zoo.cli.command import run_command
from keras_zoo.cli.inference_model import (
    build_model,
    check_network_flags,
    model_command_parser,
    network_name,
    rgb_builder,
)

log = logging.getLogger(__name__)

# The networks predict runs, each with the flags that only it reads (given for another one: an error).
NETWORK_FLAGS = {
    "unet": ("threshold", "probabilities"),
    "deeplabv3plus": ("scales", "flip", "overlay"),
    "genesis": ("overlap", "modality"),
    "cascadenet": ("acceleration", "centre_lines", "mask", "centred", "reference"),
    "amoebanet": ("top_k",),
}
SUPPORTED = tuple(NETWORK_FLAGS)
TTA_NETWORKS = ("unet", "deeplabv3plus", "amoebanet")


def build_parser() -> argparse.ArgumentParser:
    parser, g = model_command_parser("predict", "Run a trained network on files (see the module docs).")
    g.add_argument("--input", required=True, help="input file or folder")
    g.add_argument("--output", required=True, help="folder for the results")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation (unet: 8 dihedral views; deeplab, amoebanet: flip)",
    )
    g.add_argument("--batch-size", type=int, default=4, help="windows or images per forward pass")
    g.add_argument("--seed", type=int, default=0, help="seed of simulated undersampling masks")
    g = parser.add_argument_group("unet")
    g.add_argument("--threshold", type=float, help="cell-interior probability threshold (default 0.5)")
    g.add_argument("--probabilities", action="store_true", help="also write float32 probability TIFFs")
    g = parser.add_argument_group("deeplabv3plus")
    g.add_argument(
        "--scales", type=float, nargs="+", help="multi-scale inference, e.g. 0.5 0.75 1 1.25 1.5 1.75"
    )
    g.add_argument("--flip", action="store_true", help="average with the left-right flipped prediction")
    g.add_argument("--overlay", action="store_true", help="also write image + mask overlays")
    g = parser.add_argument_group("genesis")
    g.add_argument("--overlap", type=float, help="fraction shared by neighbouring windows (default 0.5)")
    g.add_argument("--modality", choices=("ct", "mr"), help="intensity window (default ct: HU -1000..1000)")
    g = parser.add_argument_group("cascadenet")
    g.add_argument("--acceleration", type=float, help="undersample fully sampled images by this factor")
    g.add_argument(
        "--centre-lines", type=int, help="fully sampled central lines of simulated masks (default 8)"
    )
    g.add_argument("--mask", help="sampling mask .npy/.cfl of k-space input (default: its non-zero samples)")
    g.add_argument("--centred", action="store_true", help="k-space input has its centre in the middle (BART)")
    g.add_argument("--reference", help="fully sampled complex image .npy/.cfl for PSNR/SSIM of k-space input")
    g = parser.add_argument_group("amoebanet")
    g.add_argument("--top-k", type=int, help="classes per image in predictions.csv (default 5)")
    return parser


def check_flags(args: argparse.Namespace, name: str) -> None:
    """ConfigError for a network-specific flag given to another network, or a bad common value."""
    from keras_zoo.errors import ConfigError

    check_network_flags(args, name, NETWORK_FLAGS, TTA_NETWORKS)
    if args.overlap is not None and not 0.0 <= args.overlap < 1.0:
        raise ConfigError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.top_k is not None and args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")


class Progress:
    """A progress bar over the input files when there are several and stdout is a terminal."""

    def __init__(self, count: int):
        import keras

        self.bar = keras.utils.Progbar(count) if count > 1 and sys.stdout.isatty() else None
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.done)


# ------------------------------------------------------------------------------------------- networks
def predict_unet(model, args, output: str) -> int:
    """U-Net masks of every image, one per page of a multi-page TIFF; returns the number of images."""
    from keras_zoo.datasets.isbi import read_pages
    from keras_zoo.inference.common import OutputClaims, list_inputs, require_distinct_stems
    from keras_zoo.inference.segmentation import IMAGE_SUFFIXES, mask_paths, segment_slice, write_mask

    files = list_inputs(args.input, IMAGE_SUFFIXES, "images")
    require_distinct_stems(files)
    outputs = OutputClaims(args.overwrite, files)
    progress = Progress(len(files))
    for path in files:
        pages = read_pages(path)
        for page, image in enumerate(pages):
            suffix = f"_p{page:03d}" if len(pages) > 1 else ""
            paths = outputs.claim_all(mask_paths(path, output, args.probabilities, suffix))
            prob = segment_slice(model, image, args.tta)
            write_mask(prob, paths, 0.5 if args.threshold is None else args.threshold)
        progress.step()
    return len(files)


def predict_deeplab(model, args, output: str, build) -> int:
    """Palette masks (and overlays) of every image; returns the number of images."""
    from keras_zoo.datasets.voc import read_rgb
    from keras_zoo.inference.common import OutputClaims, file_stem, list_inputs, require_distinct_stems
    from keras_zoo.inference.deeplab import overlay, segment_image, write_palette_png
    from keras_zoo.io import atomic_path

    files = list_inputs(args.input, (".jpg", ".jpeg", ".png", ".bmp"), "images")
    require_distinct_stems(files)
    outputs = OutputClaims(args.overwrite, files)
    progress = Progress(len(files))
    for path in files:
        stem = os.path.join(output, file_stem(path))
        paths = outputs.claim_all([f"{stem}.png"] + ([f"{stem}_overlay.png"] if args.overlay else []))
        image = read_rgb(path)
        probs = segment_image(model, image, build, args.scales or (1.0,), args.flip or args.tta)
        labels = probs.argmax(-1).astype(np.uint8)
        write_palette_png(labels, paths[0])
        if args.overlay:
            from PIL import Image

            with atomic_path(paths[1]) as tmp:
                Image.fromarray(overlay(image, labels)).save(tmp, format="PNG")
        progress.step()
    return len(files)


def genesis_inputs(path: str) -> list[str]:
    """Volume files of ``path``, or ``path`` itself when it is a folder of DICOM slices."""
    from keras_zoo.inference.common import list_inputs
    from keras_zoo.inference.genesis import VOLUME_SUFFIXES

    if os.path.isdir(path) and not any(n.lower().endswith(VOLUME_SUFFIXES) for n in os.listdir(path)):
        return [path]  # a DICOM series
    return list_inputs(path, VOLUME_SUFFIXES, "volumes")


def predict_genesis(model, args, output: str) -> int:
    """Restored or labelled NIfTI volumes, or per-volume probabilities; returns the number of volumes."""
    from keras_zoo.inference import genesis
    from keras_zoo.inference.common import OutputClaims, file_stem, require_distinct_stems, write_csv

    files = genesis_inputs(args.input)
    require_distinct_stems(files)
    outputs = OutputClaims(args.overwrite, files)
    kind = genesis.genesis_kind(model)
    overlap = 0.5 if args.overlap is None else args.overlap
    modality = args.modality or "ct"
    progress = Progress(len(files))
    rows = []
    csv_path = outputs.claim(os.path.join(output, "probabilities.csv")) if kind == "classify" else None
    for path in files:
        if kind == "classify":
            volume, _, _ = genesis.window_volume(path, modality)
            probs = genesis.classify_volume(model, volume, overlap, args.batch_size)
            rows.append([os.path.basename(path), *[f"{p:.6f}" for p in probs]])
        else:
            suffix = "restored" if kind == "restore" else "labels"
            target = outputs.claim(os.path.join(output, f"{file_stem(path)}_{suffix}.nii.gz"))
            volume, affine, back = genesis.window_volume(path, modality)
            prediction = genesis.predict_volume(model, volume, overlap, args.batch_size)
            result = prediction[..., 0] if kind == "restore" else genesis.to_labels(prediction)
            genesis.write_nifti(genesis.to_file_axes(result, back), affine, target)
        progress.step()
    if csv_path:
        classes = model.outputs[0].shape[-1]
        write_csv(csv_path, ["file"] + [f"probability_{c}" for c in range(classes)], rows)
    return len(files)


def cascadenet_slices(args, simulation: dict | None = None) -> tuple[tuple, np.ndarray, np.ndarray | None]:
    """(network inputs, output scale (n,), reference (n, Nx, Ny) or None) of the one input file; images are
    undersampled and scaled as the model was trained (``simulation``: :func:`trained_simulation`), k-space
    always scaled to zero-filled max 1."""
    from keras_zoo.datasets.mri_readers import load_mr_images, read_port_h5
    from keras_zoo.errors import ConfigError, data_error
    from keras_zoo.inference import cascadenet as cn

    path = args.input
    is_h5 = path.lower().endswith((".h5", ".hdf5"))
    if args.acceleration is not None or is_h5:
        if args.reference is not None:
            raise ConfigError("--reference is for k-space input; undersampled images are their own reference")
        images = load_mr_images(path)
        mask = read_port_h5(path)[1] if is_h5 and args.acceleration is None else None
        if is_h5 and args.acceleration is None and mask is None:
            raise data_error(path, "holds no 'mask'; give --acceleration to undersample its images")
        try:
            inputs, scale = cn.image_inputs(
                images, mask, 4.0 if args.acceleration is None else args.acceleration,
                8 if args.centre_lines is None else args.centre_lines, args.seed, **(simulation or {}),
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"--acceleration/--centre-lines: {exc}") from None
        return inputs, scale, images
    if args.centre_lines is not None:
        raise ConfigError("--centre-lines needs --acceleration (it shapes simulated masks)")
    if not path.lower().endswith(cn.KSPACE_SUFFIXES):
        raise data_error(path, "unsupported input: give k-space .npy/.cfl, or images with --acceleration")
    kspace, mask = cn.read_kspace(path, args.mask, args.centred)
    inputs, scale = cn.kspace_inputs(kspace, mask)
    reference = None if args.reference is None else cn.read_reference(args.reference, kspace.shape)
    return inputs, scale, reference


def predict_cascadenet(model, args, output: str, simulation: dict | None = None) -> int:
    """Reconstructions of the input file's slices (+ metrics.csv with a reference); returns the slice count."""
    from keras_zoo.datasets.mri import channels_to_complex
    from keras_zoo.errors import ConfigError, require_file
    from keras_zoo.inference import cascadenet as cn
    from keras_zoo.inference.common import OutputClaims, file_stem, write_csv

    if os.path.isdir(args.input):
        raise ConfigError(
            f"--input {args.input}: cascadenet reads one file (k-space or images), not a folder"
        )
    require_file(args.input, "input file")
    inputs, scale, reference = cascadenet_slices(args, simulation)
    stem = os.path.join(output, file_stem(args.input))
    is_cfl = args.input.lower().endswith((".cfl", ".hdr"))
    sources = [path for path in (args.input, args.mask, args.reference) if path]
    if is_cfl:  # a BART array is its .cfl and its .hdr
        sources += [os.path.splitext(args.input)[0] + suffix for suffix in (".cfl", ".hdr")]
    outputs = OutputClaims(args.overwrite, sources)
    paths = outputs.claim_all(cn.output_paths(stem, len(scale), is_cfl))
    metrics_path = outputs.claim(os.path.join(output, "metrics.csv")) if reference is not None else None
    reconstruction = cn.reconstruct(model, inputs, args.batch_size) * scale[:, None, None]
    cn.write_reconstruction(reconstruction, stem, is_cfl)
    if metrics_path:
        zero_filled = channels_to_complex(inputs[0]) * scale[:, None, None]
        rows = cn.slice_metrics(reference, reconstruction, zero_filled)
        write_csv(metrics_path, ["slice", *rows[0]], [[i, *row.values()] for i, row in enumerate(rows)])
        psnr = np.mean([r["psnr"] for r in rows])
        print(f"PSNR {np.mean([r['psnr_zero_filled'] for r in rows]):.2f} dB zero-filled -> {psnr:.2f} dB, "
              f"SSIM {np.mean([r['ssim'] for r in rows]):.4f}")  # fmt: skip
    log.info("wrote %s", ", ".join(paths))
    return len(scale)


def predict_amoebanet(model, args, output: str) -> int:
    """``predictions.csv`` of every image; returns the number of images."""
    from keras_zoo.inference import amoebanet as an
    from keras_zoo.inference.common import OutputClaims, list_inputs, write_csv

    files = list_inputs(args.input, an.IMAGE_SUFFIXES, "images", recursive=True)
    csv_path = OutputClaims(args.overwrite, files).claim(os.path.join(output, "predictions.csv"))
    size, k = an.model_image_size(model), args.top_k or 5
    classes = int(model.outputs[0].shape[-1])
    progress, rows = Progress(len(files)), []
    for first in range(0, len(files), args.batch_size):
        batch = files[first : first + args.batch_size]
        probs = an.class_probabilities(model, an.preprocess_files(batch, size), args.tta, args.batch_size)
        ids, top = an.top_k(probs, k)
        rows += an.csv_rows([an.relative(p, args.input) for p in batch], ids, top, classes)
        for _ in batch:
            progress.step()
    write_csv(csv_path, an.csv_header(min(k, classes)), rows)
    return len(files)


def run(model, name: str, args, build, train_args: argparse.Namespace | None = None) -> int:
    """Dispatches to the network's predict function; returns the number of inputs handled."""
    from keras_zoo.cli.inference_model import trained_simulation
    from keras_zoo.inference.common import output_folder

    with output_folder(args.output) as output:
        if name == "unet":
            return predict_unet(model, args, output)
        if name == "deeplabv3plus":
            return predict_deeplab(model, args, output, build)
        if name == "genesis":
            return predict_genesis(model, args, output)
        if name == "cascadenet":
            return predict_cascadenet(model, args, output, trained_simulation(train_args))
        return predict_amoebanet(model, args, output)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo predict``; returns 0, 2 (user error) or 130 (Ctrl-C)."""

    def body(args: argparse.Namespace) -> int:
        from keras_zoo.errors import ConfigError

        if os.path.isfile(args.output):
            raise ConfigError(f"--output {args.output}: is a file; give a folder for the results")
        if not os.path.exists(args.input):
            from keras_zoo.errors import require_file

            require_file(args.input, "input")
        name, _ = network_name(args)  # the flags are checked before the network is built (seconds)
        if name not in SUPPORTED:
            raise ConfigError(f"predict supports {', '.join(SUPPORTED)}, not {name!r}")
        check_flags(args, name)
        model, train_args = build_model(args)
        build = rgb_builder(args, train_args) if name == "deeplabv3plus" else None
        count = run(model, name, args, build, train_args)
        unit = "slice" if name == "cascadenet" else "input"  # CascadeNet counts the slices of its one file
        print(f"{name}: {count} {unit}{'s' if count != 1 else ''} -> {args.output}")
        return 0

    return run_command(build_parser().parse_args, body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""CascadeNet recipe: MR reconstruction from retrospectively undersampled Cartesian k-space.

Paper defaults (``main_2d.py`` / ``main_3d.py``): Adam lr 1e-3, MSE on the 2-channel image, batch 10 for
2D (D5-C5) and 1 for dynamic (D5-C10(S)), 4x acceleration with 8 fully sampled centre lines, masks drawn
fresh for every batch (so every epoch sees new ones) and fixed, seeded masks for validation.
``--variant ascend`` builds the Ascend port's network (BN, shared weights, learned lambda, D11-C5) and uses
its optimizer (SGD lr 1e-3, x0.98 every 1000 steps); the port's data used 3x masks (``--acceleration 3``).
The paper's 1e-6 L2 weight penalty is not applied.

Data: ``--data`` takes one or more comma-separated paths (files or folders) that
:func:`keras_zoo.datasets.mri_readers.load_mr_images` reads (port HDF5, .mat, .npy, NIfTI, DICOM, BART
.cfl); images are centre-cropped or zero-padded to ``--input-size`` and scaled to max magnitude 1.
Without ``--data``: seeded phantoms (moving phantoms for ``--dynamic``). Validation reports PSNR/SSIM/NMSE
of the zero-filled input and of the reconstruction; PNG panels are written every epoch.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from keras_zoo.cli.tasks.base import Data, Task, input_workers
from keras_zoo.errors import ConfigError, KerasZooError
from keras_zoo.runtime.traits import ModelTraits

if TYPE_CHECKING:
    import keras
    import numpy as np

log = logging.getLogger(__name__)

MASKS = ("cartesian", "uniform")  # keras_zoo.datasets.mri.MASKS
NORMALISATIONS = ("none", "zero_filled")  # keras_zoo.datasets.mri.NORMALISATIONS
FITS = ("crop", "resample")  # keras_zoo.datasets.mr_slices.FITS
LOSSES = ("mse", "mae")
VALIDATION_SEED = 1_000_003  # masks of the validation set: fixed, independent of the training stream


class CascadeNetTask(Task):
    """CascadeNet (paper D5-C5 / D5-C10(S), or the Ascend port's variant) on undersampled MR images."""

    name = "cascadenet"
    defaults = {"epochs": 10, "batch_size": None, "lr": 1e-3, "input_size": None, "filters": 64}

    preset_flags = {
        "n_cascades": lambda cascades: {"cascades": cascades},
        "n_convs": lambda convs: {"convs": convs},
        "data_sharing": lambda sharing: {"no_data_sharing": not sharing},
        # (H, W, 2), or (frames, H, W, 2) for dynamic sequences
        "input_shape": lambda shape: {
            "input_size": list(shape[-3:-1]),
            **({"frames": shape[0]} if len(shape) == 4 else {}),
        },
    }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("cascadenet")
        g.add_argument("--dynamic", action="store_true", help="dynamic sequences, 3D convs, data sharing")
        g.add_argument("--acceleration", type=float, default=4.0, help="undersampling factor (paper 4)")
        g.add_argument("--centre-lines", type=int, default=8, help="fully sampled central k-space lines")
        g.add_argument("--mask", choices=MASKS, default="cartesian", help="line sampling density")
        g.add_argument("--variant", choices=("paper", "ascend"), default="paper")
        g.add_argument("--loss", choices=LOSSES, default="mse", help="image loss (paper: mse)")
        g.add_argument(
            "--normalise",
            choices=NORMALISATIONS,
            default="none",
            help="zero_filled: scale each example by its zero-filled image's max magnitude (train and val)",
        )
        g.add_argument(
            "--phase-radians",
            type=float,
            default=3.141592653589793,
            help="bound of each coefficient of the smooth random phase given to magnitude training images",
        )
        g.add_argument(
            "--phase-probability",
            type=float,
            default=1.0,
            help="chance that a magnitude training image gets the random phase (the others stay real)",
        )
        g.add_argument(
            "--fit",
            choices=FITS,
            default="crop",
            help="bring slices to --input-size: centre crop/pad, or resample (k-space crop: whole field of view)",
        )
        g.add_argument("--cascades", type=int, help="cascades (default 5; 10 with --dynamic)")
        g.add_argument("--convs", type=int, help="convs per cascade (default 5; 11 for --variant ascend)")
        g.add_argument("--frames", type=int, default=10, help="frames of synthetic dynamic sequences")
        g.add_argument("--no-data-sharing", action="store_true", help="dynamic without k-space averaging")
        g.add_argument("--samples", type=int, default=60, help="synthetic images or sequences")
        g.add_argument("--val-fraction", type=float, default=0.2)
        g.add_argument("--data-key", help="variable of a .mat file (e.g. seq)")
        g.add_argument("--flip-kernels", action="store_true", help="flip kernels of a Lasagne .npz")
        g.add_argument("--panel-every", type=int, default=1, help="epochs between PNG panels")

    # ------------------------------------------------------------------------------------------ model
    def resolve_defaults(self, args: argparse.Namespace) -> None:
        if args.batch_size is None:
            args.batch_size = 1 if args.dynamic else 10  # paper: main_3d.py / main_2d.py

    def _image_size(self, args: argparse.Namespace) -> tuple[int, int] | None:
        if args.input_size is None:
            return None
        if len(args.input_size) != 2:
            raise ConfigError(f"--input-size needs H W for cascadenet, got {args.input_size}")
        return tuple(args.input_size)

    def model_config(self, args: argparse.Namespace, data: Data | None) -> dict:
        from keras_zoo.models.cascadenet import ASCEND_VARIANT

        if data is not None and data.input_shape is not None:
            shape = data.input_shape
        else:  # the frames of a dynamic run are not in args: any count builds the same weights
            size = self._image_size(args) or (None, None)
            shape = (*(([args.frames]) if args.dynamic else []), *size)
        config = {
            "input_shape": (*shape, 2),
            "filters": args.filters,
            "n_cascades": args.cascades or (10 if args.dynamic else 5),
        }
        if args.variant == "ascend":
            config.update(ASCEND_VARIANT)
        if args.convs:
            config["n_convs"] = args.convs
        if args.dynamic:
            config.update(dynamic=True, data_sharing=not args.no_data_sharing)
        return {"variant": None, "config": config}

    def traits(self, args: argparse.Namespace) -> ModelTraits:
        return ModelTraits(full_resolution_2d=not args.dynamic, width=args.filters)

    def monitor(self, args: argparse.Namespace) -> tuple[str, str]:
        return "val_psnr", "max"

    def weights_options(self, args: argparse.Namespace) -> dict:
        return {"flip_kernels": args.flip_kernels}

    def optimizer(self, args, steps_per_epoch):
        import keras

        if args.variant == "ascend":
            schedule = keras.optimizers.schedules.ExponentialDecay(args.lr, 1000, 0.98, staircase=True)
            return keras.optimizers.SGD(schedule)
        return keras.optimizers.Adam(args.lr)

    def loss(self, args, data):
        return args.loss

    def metrics(self, args):
        from keras_zoo.metrics.reconstruction import PSNR, SSIM

        return [PSNR(), SSIM()]

    def callbacks(self, args, data, output_dir):
        from keras_zoo.callbacks.prediction_panels import PredictionPanels
        from keras_zoo.callbacks.reconstruction_panels import save_reconstruction_panel

        def draw(path, inputs, reconstruction, target):
            save_reconstruction_panel(path, inputs[0], reconstruction, target)

        inputs, target = data.extras["panel_inputs"], data.extras["panel_target"]
        return [PredictionPanels(inputs, target, draw, os.path.join(output_dir, "panels"), args.panel_every)]

    # ------------------------------------------------------------------------------------------ data
    def _images(self, args) -> tuple[np.ndarray, str]:
        import numpy as np

        from keras_zoo.datasets.mr_slices import FITS, data_files
        from keras_zoo.datasets.mri import scale_to_unit_max
        from keras_zoo.datasets.mri_readers import load_mr_images
        from keras_zoo.datasets.phantoms import phantom_images

        if not args.data:
            size = tuple(args.input_size or ((64, 64) if args.dynamic else (128, 128)))
            if size[0] != size[1]:
                raise ConfigError(f"synthetic phantoms are square; got --input-size {list(size)}")
            images = phantom_images(
                args.samples, size[0], seed=args.seed, dynamic=args.dynamic, frames=args.frames
            )
            kind = f"moving phantoms ({args.frames} frames)" if args.dynamic else "phantoms"
            return images, f"{args.samples} seeded {kind} {size[0]}x{size[1]}"
        files = data_files(args.data)
        stacks = [load_mr_images(f, key=args.data_key, dynamic=args.dynamic) for f in files]
        size = tuple(args.input_size or stacks[0].shape[-2:])
        images = np.concatenate([FITS[args.fit](s, size) for s in stacks])
        images = scale_to_unit_max(images, image_axes=3 if args.dynamic else 2)
        return (
            images,
            f"{len(images)} MR {'sequences' if args.dynamic else 'slices'} {size[0]}x{size[1]} from {args.data}",
        )

    def load_data(self, args: argparse.Namespace) -> Data:
        from keras_zoo.datasets.base import ArrayBatches, describe_workers, split_indices
        from keras_zoo.datasets.mri import cascadenet_example, undersampled_examples

        self._image_size(args)
        if not args.acceleration >= 1:  # checked before any mask divides by it (NaN included)
            raise ConfigError(f"--acceleration must be >= 1, got {args.acceleration:g}")
        if not 0.0 <= args.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {args.val_fraction:g}")
        images, description = self._images(args)
        train_idx, val_idx = split_indices(len(images), args.val_fraction, args.seed)
        train_images = images[train_idx]
        steps = args.steps_per_epoch or max(1, -(-len(train_images) // args.batch_size))
        try:  # a bad mask setting fails here, with a one-line message
            train = undersampled_examples(
                train_images,
                args.batch_size,
                steps,
                args.seed,
                args.acceleration,
                args.centre_lines,
                args.mask,
                workers=input_workers(args),
                normalise=args.normalise,
                phase_radians=args.phase_radians,
                phase_probability=args.phase_probability,
            )
        except ValueError as exc:
            if isinstance(exc, KerasZooError):
                raise
            raise ConfigError(f"cascadenet: {exc}") from None
        if len(val_idx):
            val_inputs, val_target = cascadenet_example(
                images[val_idx],
                VALIDATION_SEED + args.seed,
                args.acceleration,
                args.centre_lines,
                args.mask,
                normalise=args.normalise,
            )
            val = ArrayBatches(val_inputs, val_target, args.batch_size)
            panel_inputs, panel_target = tuple(a[:4] for a in val_inputs), val_target[:4]
        else:
            val = None
            panel_inputs, panel_target = train[0]
        return Data(
            train,
            val,
            f"{description} ({len(train_idx)}/{len(val_idx)}), {args.acceleration:g}x, "
            f"{describe_workers(train)}",
            extras={"panel_inputs": panel_inputs, "panel_target": panel_target},
            input_shape=tuple(images.shape[1:]),
        )

    # ------------------------------------------------------------------------------------------ report
    def evaluate(self, model: keras.Model, data: Data, args: argparse.Namespace) -> dict[str, float]:
        """Mean PSNR (dB), SSIM and NMSE of zero-filled inputs and reconstructions on the validation set."""
        import numpy as np

        from keras_zoo.datasets.mri import channels_to_complex
        from keras_zoo.metrics.reconstruction import complex_psnr, nmse, ssim

        if data.val is None:
            return {}
        inputs, target = data.val.x, data.val.y
        reconstruction = model.predict(inputs, batch_size=args.batch_size, verbose=0)
        results = {}
        for label, images in (("zero_filled", inputs[0]), ("reconstruction", reconstruction)):
            ref, rec = channels_to_complex(target), channels_to_complex(images)
            frames_ref = ref.reshape(-1, *ref.shape[-2:])
            frames_rec = rec.reshape(-1, *rec.shape[-2:])
            results[f"val_psnr_{label}"] = float(np.mean([complex_psnr(r, x) for r, x in zip(ref, rec)]))
            results[f"val_ssim_{label}"] = float(
                np.mean([ssim(r, x) for r, x in zip(frames_ref, frames_rec)])
            )
            results[f"val_nmse_{label}"] = float(np.mean([nmse(r, x) for r, x in zip(ref, rec)]))
        results["val_psnr_gain"] = results["val_psnr_reconstruction"] - results["val_psnr_zero_filled"]
        results["val_psnr"] = results["val_psnr_reconstruction"]
        log.info(
            "validation PSNR zero-filled %.2f dB -> reconstruction %.2f dB; SSIM %.4f -> %.4f",
            results["val_psnr_zero_filled"],
            results["val_psnr_reconstruction"],
            results["val_ssim_zero_filled"],
            results["val_ssim_reconstruction"],
        )
        return results

    def save_previews(self, model: keras.Model, data: Data, path: str, args: argparse.Namespace) -> None:
        import keras

        from keras_zoo.callbacks.reconstruction_panels import save_reconstruction_panel

        inputs, target = data.extras["panel_inputs"], data.extras["panel_target"]
        reconstruction = keras.ops.convert_to_numpy(model(inputs, training=False))
        save_reconstruction_panel(path, inputs[0], reconstruction, target)

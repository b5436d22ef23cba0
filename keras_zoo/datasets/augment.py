"""Paired 2D augmentation: one random geometric transform applied to an image and its mask.

The continuous part (rotation, shear, zoom, shift) is a single affine map sampled with
``scipy.ndimage.affine_transform``: bilinear for the image, nearest for the mask, so a mask keeps exactly
its label values (binary stays binary). The discrete part (flips, 90-degree turns) is exact array
reindexing. Crops are folded into the same map, so a random crop of a rotated image costs one
interpolation of the crop only and borders are filled by reflection instead of a constant.

Images are (H, W) or (H, W, C); masks are (H, W). All randomness comes from a passed
``numpy.random.Generator``, so a batch is reproducible from its seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

FILL_MODES = ("reflect", "nearest", "mirror", "constant", "wrap")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform; a zero range disables that part.

    Attributes:
        rotation: maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        shift: maximum shift as a fraction of the output height / width.
        shear: maximum shear angle in degrees.
        zoom: zoom factors per axis uniform in ``[1 - zoom, 1 + zoom]``.
        flip_horizontal: mirror left-right with probability 1/2.
        flip_vertical: mirror top-bottom with probability 1/2.
        rot90: turn by a random multiple of 90 degrees (half turns only for non-square outputs).
        fill_mode: how points outside the input are filled (``scipy.ndimage`` mode).
    """

    rotation: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    flip_horizontal: bool = False
    flip_vertical: bool = False
    rot90: bool = False
    fill_mode: str = "reflect"

    def __post_init__(self):
        for field in ("rotation", "shift", "shear", "zoom"):
            if getattr(self, field) < 0:
                raise ValueError(f"AugmentConfig.{field} must be >= 0, got {getattr(self, field)}")
        if self.zoom >= 1:
            raise ValueError(f"AugmentConfig.zoom must be < 1, got {self.zoom}")
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"AugmentConfig.fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")

    @property
    def is_affine(self) -> bool:
        """True when the continuous (interpolating) part of the transform is enabled."""
        return bool(self.rotation or self.shift or self.shear or self.zoom)

    @classmethod
    def named(cls, name: str) -> AugmentConfig | None:
        """The preset called ``name``: ``"reference"``, ``"strong"`` (:meth:`membranes`) or ``"none"`` (None).

        Raises:
            ValueError: another name.
        """
        presets = {"reference": cls.reference, "strong": cls.membranes, "none": lambda: None}
        if name not in presets:
            raise ValueError(f"augmentation must be one of {sorted(presets)}, got {name!r}")
        return presets[name]()

    @classmethod
    def reference(cls) -> AugmentConfig:
        """The zhixuhao/unet ``ImageDataGenerator`` ranges (rotation 0.2 degrees, shifts, shear and zoom
        0.05, horizontal flips, nearest fill)."""
        return cls(rotation=0.2, shift=0.05, shear=0.05, zoom=0.05, flip_horizontal=True, fill_mode="nearest")

    @classmethod
    def membranes(cls) -> AugmentConfig:
        """Stronger ranges suited to EM slices, which have no preferred orientation: any dihedral turn,
        rotations up to 15 degrees, small shear and zoom, mirrored borders."""
        return cls(
            rotation=15.0,
            shift=0.05,
            shear=5.0,
            zoom=0.1,
            flip_horizontal=True,
            flip_vertical=True,
            rot90=True,
        )


def _check_pair(image: np.ndarray, mask: np.ndarray | None) -> None:
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} must equal the image's (H, W) {image.shape[:2]}")


def random_affine(rng: np.random.Generator, config: AugmentConfig, out_shape: Sequence[int]):
    """Samples the continuous part of a transform.

    Args:
        rng: random generator.
        config: ranges.
        out_shape: (height, width) of the output, which scales the shift.

    Returns:
        ``(matrix, shift)``: a (2, 2) array mapping output offsets from the output centre to input offsets
        (row, column order), and a (2,) shift in input pixels.
    """
    angle = np.deg2rad(rng.uniform(-config.rotation, config.rotation)) if config.rotation else 0.0
    shear = np.deg2rad(rng.uniform(-config.shear, config.shear)) if config.shear else 0.0
    zoom = rng.uniform(1 - config.zoom, 1 + config.zoom, size=2) if config.zoom else np.ones(2)
    shift = (
        rng.uniform(-config.shift, config.shift, size=2) * np.asarray(out_shape[:2], float)
        if config.shift
        else np.zeros(2)
    )
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shearing = np.array([[1.0, 0.0], [np.tan(shear), 1.0]])
    matrix = rotation @ shearing @ np.diag(1.0 / zoom)
    return matrix, shift


def warp(
    array: np.ndarray,
    matrix: np.ndarray,
    in_center: Sequence[float],
    out_shape: Sequence[int],
    order: int,
    fill_mode: str = "reflect",
) -> np.ndarray:
    """Resamples ``array`` so that output pixel ``o`` reads input point ``in_center + matrix @ (o - c_out)``.

    Args:
        array: (H, W) or (H, W, C) array; channels are resampled independently.
        matrix: (2, 2) map from output offsets to input offsets.
        in_center: (row, column) input point that lands on the output centre ``c_out``.
        out_shape: (height, width) of the output.
        order: spline order (0 nearest, 1 bilinear).
        fill_mode: ``scipy.ndimage`` mode for points outside the input.

    Returns:
        Array (height, width[, C]) of the input's dtype.
    """
    out_shape = tuple(int(s) for s in out_shape[:2])
    out_center = (np.asarray(out_shape, float) - 1.0) / 2.0
    offset = np.asarray(in_center, float) - matrix @ out_center
    if array.ndim == 2:
        return ndimage.affine_transform(array, matrix, offset, out_shape, order=order, mode=fill_mode)
    channels = [
        ndimage.affine_transform(array[..., c], matrix, offset, out_shape, order=order, mode=fill_mode)
        for c in range(array.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def _dihedral(arrays: list[np.ndarray], rng: np.random.Generator, config: AugmentConfig) -> list[np.ndarray]:
    """Applies the same random flips and 90-degree turn to every array (spatial axes 0 and 1)."""
    if config.flip_horizontal and rng.random() < 0.5:
        arrays = [a[:, ::-1] for a in arrays]
    if config.flip_vertical and rng.random() < 0.5:
        arrays = [a[::-1] for a in arrays]
    if config.rot90:
        square = arrays[0].shape[0] == arrays[0].shape[1]
        turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        arrays = [np.rot90(a, turns, axes=(0, 1)) for a in arrays]
    return [np.ascontiguousarray(a) for a in arrays]


def random_patch(
    image: np.ndarray,
    mask: np.ndarray | None,
    size: Sequence[int],
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
    center: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cuts a (possibly transformed) patch of ``size`` from an image and its mask.

    Without ``center`` the patch centre is uniform over the positions where an untransformed patch fits
    inside the image (a random crop); with ``center`` it is that point (plus the random shift).

    Args:
        image: (H, W) or (H, W, C) array.
        mask: (H, W) integer or binary array, or None.
        size: (height, width) of the patch, each at most the image's.
        rng: random generator; the image and mask get the same transform.
        config: augmentation ranges; None crops only.
        center: optional fixed (row, column) centre in the input.

    Returns:
        ``(image_patch, mask_patch)`` of shapes (height, width[, C]) and (height, width); the mask patch
        holds only values of the input mask.
    """
    _check_pair(image, mask)
    height, width = (int(s) for s in size[:2])
    if not (0 < height <= image.shape[0] and 0 < width <= image.shape[1]):
        raise ValueError(
            f"patch size {(height, width)} must be positive and fit in the image {image.shape[:2]}"
        )
    config = config or AugmentConfig()
    if center is None:
        top = int(rng.integers(image.shape[0] - height + 1))
        left = int(rng.integers(image.shape[1] - width + 1))
        center = (top + (height - 1) / 2.0, left + (width - 1) / 2.0)
    if config.is_affine:
        matrix, shift = random_affine(rng, config, (height, width))
        in_center = np.asarray(center, float) + shift
        image = warp(image, matrix, in_center, (height, width), order=1, fill_mode=config.fill_mode)
        if mask is not None:
            mask = warp(mask, matrix, in_center, (height, width), order=0, fill_mode=config.fill_mode)
    else:
        top, left = (int(round(c - (s - 1) / 2.0)) for c, s in zip(center, (height, width)))
        if top < 0 or left < 0 or top + height > image.shape[0] or left + width > image.shape[1]:
            raise ValueError(
                f"patch {(height, width)} centred at {tuple(center)} leaves the image {image.shape[:2]}"
            )
        image = image[top : top + height, left : left + width]
        mask = None if mask is None else mask[top : top + height, left : left + width]
    if mask is None:
        return _dihedral([image], rng, config)[0], None
    image, mask = _dihedral([image, mask], rng, config)
    return image, mask


def augment_pair(
    image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """Applies one random transform to the whole image and mask, keeping their size.

    Args:
        image: (H, W) or (H, W, C) array.
        mask: (H, W) array or None.
        rng: random generator.
        config: augmentation ranges.

    Returns:
        ``(image, mask)`` transformed alike (a 90-degree turn swaps H and W only when they are equal,
        so shapes never change).
    """
    _check_pair(image, mask)
    center = ((image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0)
    return random_patch(image, mask, image.shape[:2], rng, config, center=center)


def center_crop(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Central (height, width) crop of an array whose first two axes are spatial.

    Raises:
        ValueError: when ``size`` is larger than the array.
    """
    height, width = (int(s) for s in size[:2])
    if not (0 < height <= array.shape[0] and 0 < width <= array.shape[1]):
        raise ValueError(f"crop size {(height, width)} must be positive and fit in {array.shape[:2]}")
    top = (array.shape[0] - height) // 2
    left = (array.shape[1] - width) // 2
    return array[top : top + height, left : left + width]

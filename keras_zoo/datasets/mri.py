"""k-space tooling for CascadeNet: sampling masks, retrospective undersampling, 2-channel conversions.

Conventions (those of the CascadeNet reference, ``utils/compressed_sensing.py``):
- Complex images have shape (..., Nx, Ny). Cartesian sampling picks phase-encode lines along Nx
  (axis -2) and samples every readout point along Ny (axis -1).
- FFTs are orthonormal. Masks are uncentred by default (``centred=False``: ``ifftshift``-ed so that the
  k-space centre sits at index [0, 0]), which is what the network's data-consistency layers expect.
- Networks take 2-channel float tensors (..., Nx, Ny, 2): channel 0 real, channel 1 imaginary.
- Images are scaled so that the magnitude's maximum is 1 before undersampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from keras_zoo.datasets.base import SeededSamples, worker_options


def _check_acceleration(shape: Sequence[int], acceleration: float, centre_lines: int) -> tuple[int, int]:
    """Returns (Nx, lines to sample) after checking the mask arguments."""
    if len(shape) < 2:
        raise ValueError(f"mask shape must have at least 2 axes (..., Nx, Ny), got {tuple(shape)}")
    nx = int(shape[-2])
    if not acceleration >= 1:  # also refuses NaN
        raise ValueError(f"acceleration must be >= 1, got {acceleration}")
    lines = int(nx / acceleration)
    if not 0 <= centre_lines <= lines:
        raise ValueError(
            f"centre_lines must be in [0, {lines}] for Nx={nx} at {acceleration}x, got {centre_lines}"
        )
    return nx, lines


def _line_mask(
    shape: Sequence[int],
    acceleration: float,
    centre_lines: int,
    centred: bool,
    rng: np.random.Generator,
    pdf: np.ndarray,
) -> np.ndarray:
    """Draws an independent set of lines per slice from ``pdf`` and always adds the centre lines."""
    nx, lines = _check_acceleration(shape, acceleration, centre_lines)
    n_slices = int(np.prod(shape[:-2], dtype=np.int64))
    start = nx // 2 - centre_lines // 2
    centre = slice(start, start + centre_lines)  # exactly centre_lines lines (the reference loses one if odd)
    pdf = pdf.astype(np.float64).copy()
    pdf[centre] = 0
    lines_mask = np.zeros((n_slices, nx), dtype=np.float32)
    if lines > centre_lines:  # otherwise every sampled line is a centre line
        pdf /= pdf.sum()
        for i in range(n_slices):
            lines_mask[i, rng.choice(nx, lines - centre_lines, replace=False, p=pdf)] = 1
    if centre_lines:
        lines_mask[:, centre] = 1
    mask = np.repeat(lines_mask[:, :, None], shape[-1], axis=2).reshape(tuple(shape))
    if not centred:
        mask = np.fft.ifftshift(mask, axes=(-2, -1))
    return mask


def cartesian_mask(
    shape: Sequence[int],
    acceleration: float = 4.0,
    centre_lines: int = 8,
    centred: bool = False,
    rng: np.random.Generator | int | None = None,
    density: str = "gaussian",
) -> np.ndarray:
    """Variable-density Cartesian undersampling mask, as the reference's ``cartesian_mask``.

    Each slice or frame (every index of ``shape[:-2]``) gets independent lines along Nx drawn without
    replacement from ``exp(-s (i - Nx/2)^2) + lambda/Nx`` (``s = 0.5/(Nx/10)^2``,
    ``lambda = Nx/(2 acceleration)``) with the ``centre_lines`` central lines always sampled, so that
    exactly ``int(Nx/acceleration)`` of the Nx lines are sampled.

    Args:
        shape: (..., Nx, Ny).
        acceleration: undersampling factor (4 in the paper).
        centre_lines: fully sampled central lines (the reference's ``sample_n``; its mains use 8).
        centred: keep the k-space centre in the middle; False (default) ``ifftshift``-s the mask.
        rng: ``numpy.random.Generator`` or seed.
        density: "gaussian" (the reference) or "uniform" (every non-centre line equally likely).

    Returns:
        float32 array ``shape`` of 0/1.
    """
    if density not in ("gaussian", "uniform"):
        raise ValueError(f"density must be 'gaussian' or 'uniform', got {density!r}")
    nx, _ = _check_acceleration(shape, acceleration, centre_lines)  # before dividing by acceleration
    positions = np.arange(nx) - nx / 2
    pdf = np.exp(-0.5 / (nx / 10.0) ** 2 * positions**2) + 1.0 / (2.0 * acceleration)
    if density == "uniform":
        pdf = np.ones(nx)
    return _line_mask(shape, acceleration, centre_lines, centred, np.random.default_rng(rng), pdf)


def uniform_mask(shape: Sequence[int], *args, **kwargs) -> np.ndarray:
    """Cartesian mask with lines drawn uniformly at random (plus the centre lines); the arguments, rate and
    layout of :func:`cartesian_mask`."""
    return cartesian_mask(shape, *args, density="uniform", **kwargs)


MASKS: dict[str, Callable[..., np.ndarray]] = {"cartesian": cartesian_mask, "uniform": uniform_mask}
NORMALISATIONS = ("none", "zero_filled")


def check_simulation(mask_kind: str, normalise: str) -> None:
    """Raises ValueError unless ``mask_kind`` is a key of :data:`MASKS` and ``normalise`` one of
    :data:`NORMALISATIONS` (how training and inference simulate undersampled inputs)."""
    if mask_kind not in MASKS:
        raise ValueError(f"mask_kind must be one of {sorted(MASKS)}, got {mask_kind!r}")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {list(NORMALISATIONS)}, got {normalise!r}")


def fft2(x: np.ndarray, centred: bool = False) -> np.ndarray:
    """Orthonormal 2D FFT over the last two axes; ``centred`` puts the k-space centre in the middle."""
    if centred:
        return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.fft.fft2(x, norm="ortho")


def ifft2(k: np.ndarray, centred: bool = False) -> np.ndarray:
    """Inverse of :func:`fft2`."""
    if centred:
        return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.fft.ifft2(k, norm="ortho")


def undersample(x: np.ndarray, mask: np.ndarray, centred: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Retrospective undersampling, as the reference's ``undersample``.

    Args:
        x: complex or real (magnitude) images (..., Nx, Ny).
        mask: 0/1 array broadcastable to ``x``; centred or not as ``centred`` says.
        centred: whether ``mask`` (and the returned k-space) has the k-space centre in the middle.

    Returns:
        (zero-filled image ``IFFT(mask * FFT(x))``, masked k-space ``mask * FFT(x)``), complex64.
    """
    kspace = fft2(np.asarray(x).astype(np.complex64), centred) * mask
    return ifft2(kspace, centred).astype(np.complex64), kspace.astype(np.complex64)


def complex_to_channels(x: np.ndarray) -> np.ndarray:
    """Complex (...) -> float32 (..., 2) with real and imaginary parts as channels."""
    x = np.asarray(x)
    return np.stack([x.real, x.imag], axis=-1).astype(np.float32)


def channels_to_complex(x: np.ndarray) -> np.ndarray:
    """Float (..., 2) -> complex64 (...); the inverse of :func:`complex_to_channels`."""
    x = np.asarray(x)
    if x.shape[-1:] != (2,):
        raise ValueError(f"expected a last axis of 2 channels (real, imag), got shape {x.shape}")
    return (x[..., 0] + 1j * x[..., 1]).astype(np.complex64)


def scale_to_unit_max(x: np.ndarray, image_axes: int = 2) -> np.ndarray:
    """Divides each image (the last ``image_axes`` axes) by its maximum magnitude (all-zero images stay 0).

    Args:
        x: complex or real array (..., *image).
        image_axes: trailing axes forming one image (2 for slices, 3 for (frames, Nx, Ny) sequences).

    Returns:
        complex64 array of the same shape with max |image| = 1.
    """
    x = np.asarray(x).astype(np.complex64)
    axes = tuple(range(x.ndim - image_axes, x.ndim))
    peak = np.abs(x).max(axis=axes, keepdims=True)
    return (x / np.where(peak > 0, peak, 1)).astype(np.complex64)


def zero_filled_peak(zero_filled: np.ndarray) -> np.ndarray:
    """Each example's max magnitude, 1 for an all-zero example.

    Args:
        zero_filled: complex (n, ...) zero-filled images.

    Returns:
        float32 (n,) scales to divide the example by (and multiply the network's output by).
    """
    peak = np.abs(zero_filled).reshape(len(zero_filled), -1).max(axis=1)
    return np.where(peak > 0, peak, 1).astype(np.float32)


def scale_by_zero_filled(
    zero_filled: np.ndarray, kspace: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divides each example's zero-filled image, k-space and target by the zero-filled image's max magnitude.

    The scale comes from the undersampled data alone, so it is the same at training and at inference on a
    scan whose fully sampled image is unknown. The FFT is linear, so the scaled k-space is still the FFT of
    the scaled image, and PSNR/SSIM (peak taken from the reference) do not change.

    Args:
        zero_filled: complex (n, ...) zero-filled images (slices or sequences).
        kspace: complex (n, ...) masked k-space of the same shape.
        target: complex or real (n, ...) fully sampled images.

    Returns:
        The three arrays scaled per example (all-zero examples stay 0), complex64.
    """
    peak = zero_filled_peak(zero_filled).reshape((-1,) + (1,) * (np.ndim(zero_filled) - 1))
    return tuple((np.asarray(a) / peak).astype(np.complex64) for a in (zero_filled, kspace, target))


def cascadenet_example(
    images: np.ndarray,
    rng: np.random.Generator | int | None = None,
    acceleration: float = 4.0,
    centre_lines: int = 8,
    mask_kind: str = "cartesian",
    normalise: str = "none",
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Undersamples images with fresh masks and returns CascadeNet inputs and target.

    Args:
        images: complex or magnitude images (n, Nx, Ny) or sequences (n, frames, Nx, Ny), already scaled
            (see :func:`scale_to_unit_max`). Every slice/frame gets its own mask.
        rng: generator or seed for the masks.
        acceleration: undersampling factor.
        centre_lines: fully sampled central lines.
        mask_kind: "cartesian" (variable density) or "uniform".
        normalise: "none" (the images as given) or "zero_filled" (:func:`scale_by_zero_filled`: each
            example divided by its zero-filled image's max magnitude).

    Returns:
        (``(image, kspace, mask)``, ``target``), each float32 (n, [frames,] Nx, Ny, 2); the mask has both
        channels equal and is uncentred. The inputs are a tuple, as Keras wants for multi-input batches.
    """
    check_simulation(mask_kind, normalise)
    images = np.asarray(images)
    mask = MASKS[mask_kind](
        images.shape, acceleration, centre_lines, centred=False, rng=np.random.default_rng(rng)
    )
    zero_filled, kspace = undersample(images, mask)
    if normalise == "zero_filled":
        zero_filled, kspace, images = scale_by_zero_filled(zero_filled, kspace, images)
    mask2 = np.repeat(mask[..., None], 2, axis=-1).astype(np.float32)
    return (complex_to_channels(zero_filled), complex_to_channels(kspace), mask2), complex_to_channels(images)


def smooth_phase(shape: Sequence[int], rng: np.random.Generator, max_radians: float = np.pi) -> np.ndarray:
    """A random, spatially smooth phase map: a quadratic polynomial over the image plane.

    ``phi(u, v) = c0 + c1 u + c2 v + c3 u v + c4 u^2 + c5 v^2`` with ``u, v`` in [-1, 1] across the image and
    each ``c`` uniform in [-max_radians, max_radians], so that magnitude-only training images look like MR
    images whose phase varies slowly (B0 and coil-sensitivity phase), as real complex data does.

    Args:
        shape: (Nx, Ny).
        rng: generator.
        max_radians: bound of each coefficient.

    Returns:
        complex64 (Nx, Ny) of modulus 1.
    """
    u, v = np.meshgrid(np.linspace(-1, 1, shape[-2]), np.linspace(-1, 1, shape[-1]), indexing="ij")
    c = rng.uniform(-max_radians, max_radians, 6)
    phi = c[0] + c[1] * u + c[2] * v + c[3] * u * v + c[4] * u**2 + c[5] * v**2
    return np.exp(1j * phi).astype(np.complex64)


def augment_image(
    image: np.ndarray, rng: np.random.Generator, phase_radians: float = np.pi, phase_probability: float = 1.0
) -> np.ndarray:
    """Random flips of both image axes and, for a real (magnitude) image, a random smooth phase.

    Complex images keep their own phase. The magnitude is unchanged, so an image scaled to max magnitude 1
    stays so.

    Args:
        image: complex or real image (Nx, Ny) or sequence (frames, Nx, Ny); a sequence's frames get the same
            flips and phase.
        rng: generator.
        phase_radians: bound of each coefficient of the random phase (:func:`smooth_phase`).
        phase_probability: chance that a real image gets the phase (below 1, the others stay real, so a
            model sees both kinds).

    Returns:
        complex64 array of the same shape.
    """
    out = np.asarray(image)
    for axis in (-2, -1):
        if rng.random() < 0.5:
            out = np.flip(out, axis=axis)
    out = out.astype(np.complex64)
    # at probability 1 no extra number is drawn, so the stream (and the recipes' figures) stay as before
    if not np.any(out.imag) and (phase_probability >= 1 or rng.random() < phase_probability):
        out = out * smooth_phase(out.shape[-2:], rng, phase_radians)
    return out


def undersampled_examples(
    images: np.ndarray,
    batch_size: int,
    steps: int,
    seed: int = 0,
    acceleration: float = 4.0,
    centre_lines: int = 8,
    mask_kind: str = "cartesian",
    workers: int | None = 0,
    augment: bool = True,
    normalise: str = "none",
    phase_radians: float = np.pi,
    phase_probability: float = 1.0,
) -> SeededSamples:
    """Training batches of :func:`cascadenet_example` pairs with fresh masks (new ones every epoch).

    Each example is one sample of :class:`keras_zoo.datasets.base.SeededSamples`: an image or sequence drawn
    with replacement from ``images``, its augmentation (:func:`augment_image`: flips, and a smooth phase for
    magnitude images) and its masks, all from the sample's own generator. The augmentation is not in the
    reference; it lifts the gain of a 300-step D5-C5 trained on magnitude prostate slices on a complex brain
    slice (docs/recipes/cascadenet.md).

    Args:
        images: complex or magnitude images (n, Nx, Ny) or sequences (n, frames, Nx, Ny), already scaled.
        batch_size: examples per batch.
        steps: batches per epoch.
        seed: base seed.
        acceleration: undersampling factor.
        centre_lines: fully sampled central lines.
        mask_kind: "cartesian" (variable density) or "uniform".
        workers: parallel workers (see :func:`keras_zoo.datasets.base.worker_options`; None: every core but
            one); threads, as NumPy's FFTs release the GIL and a batch is large to send between processes.
        augment: apply :func:`augment_image` to every training example (False: the images as given).
        phase_radians: bound of each coefficient of the random phase (:func:`smooth_phase`).
        phase_probability: chance that a magnitude image gets the random phase (:func:`augment_image`).
        normalise: "none" or "zero_filled" (see :func:`cascadenet_example`).

    Returns:
        :class:`SeededSamples` of ``((image, kspace, mask), target)`` batches, each float32
        (batch, [frames,] Nx, Ny, 2).

    Raises:
        ValueError: an empty ``images``, a phase probability outside [0, 1], or mask settings that do not fit
            the images.
    """
    if len(images) == 0:
        raise ValueError("images must hold at least one image")
    if not 0 <= phase_probability <= 1:
        raise ValueError(f"phase_probability must be in [0, 1], got {phase_probability}")
    cascadenet_example(
        images[:1], 0, acceleration, centre_lines, mask_kind, normalise
    )  # bad settings fail here

    def make_sample(rng: np.random.Generator, item: int):
        source = (
            augment_image(images[item], rng, phase_radians, phase_probability) if augment else images[item]
        )
        (image, kspace, mask), target = cascadenet_example(
            source[None], rng, acceleration, centre_lines, mask_kind, normalise
        )
        return (image[0], kspace[0], mask[0]), target[0]

    return SeededSamples(make_sample, len(images), batch_size, steps, seed, **worker_options(workers))

"""Seeded synthetic MR data: Shepp-Logan phantoms with random ellipses, and moving-phantom sequences.

These are CascadeNet's default training data when no ``--data`` is given. Images are complex64 with a
smooth random phase (real MR images are complex) and scaled to max magnitude 1.
"""

from __future__ import annotations

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.draw import ellipse
from skimage.transform import resize

from keras_zoo.datasets.mri import scale_to_unit_max


def shepp_logan(size: int) -> np.ndarray:
    """The Shepp-Logan phantom resized to (size, size), float32 in [0, 1]."""
    if size < 8:
        raise ValueError(f"phantom size must be >= 8, got {size}")
    return resize(shepp_logan_phantom(), (size, size), anti_aliasing=True).astype(np.float32)


def _add_ellipse(
    image: np.ndarray,
    rng: np.random.Generator,
    scale: float = 1.0,
    centre=None,
    radii=None,
    angle=None,
    value=None,
) -> None:
    size = image.shape[0]
    cy, cx = centre if centre is not None else rng.uniform(0.25, 0.75, 2) * size
    ry, rx = radii if radii is not None else rng.uniform(0.03, 0.15, 2) * size
    rows, cols = ellipse(
        cy,
        cx,
        ry * scale,
        rx * scale,
        shape=image.shape,
        rotation=rng.uniform(0, np.pi) if angle is None else angle,
    )
    image[rows, cols] += rng.uniform(-0.3, 0.5) if value is None else value


def smooth_phase(size: int, rng: np.random.Generator, strength: float = np.pi / 2) -> np.ndarray:
    """A random smooth (bilinear) phase map (size, size) in radians."""
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    a, b, c, d = rng.uniform(-1, 1, 4)
    return strength * (a * x + b * y + c * x * y + d) / 2


def random_phantom(
    size: int, rng: np.random.Generator | int | None = None, n_ellipses: int = 6, phase: bool = True
) -> np.ndarray:
    """Shepp-Logan plus ``n_ellipses`` random ellipses, randomly flipped, with an optional smooth phase.

    Returns:
        complex64 (size, size) with max magnitude 1.
    """
    rng = np.random.default_rng(rng)
    image = shepp_logan(size).copy()
    for _ in range(n_ellipses):
        _add_ellipse(image, rng)
    image = np.clip(image, 0, None)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1]
    result = image * np.exp(1j * smooth_phase(size, rng)) if phase else image.astype(np.complex64)
    return scale_to_unit_max(result)


def moving_phantom_sequence(
    frames: int,
    size: int,
    rng: np.random.Generator | int | None = None,
    n_moving: int = 3,
    phase: bool = True,
) -> np.ndarray:
    """A cine-like sequence: a random phantom whose extra ellipses pulsate and drift periodically.

    Returns:
        complex64 (frames, size, size) with max magnitude 1 over the sequence.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    rng = np.random.default_rng(rng)
    base = shepp_logan(size)
    movers = [
        dict(
            centre=rng.uniform(0.3, 0.7, 2) * size,
            radii=rng.uniform(0.05, 0.15, 2) * size,
            angle=rng.uniform(0, np.pi),
            value=rng.uniform(0.2, 0.6),
            drift=rng.uniform(-0.05, 0.05, 2) * size,
            offset=rng.uniform(0, 2 * np.pi),
        )
        for _ in range(n_moving)
    ]
    phase_map = np.exp(1j * smooth_phase(size, rng)) if phase else 1.0
    sequence = []
    for t in range(frames):
        image = base.copy()
        for m in movers:
            cycle = np.sin(2 * np.pi * t / frames + m["offset"])
            _add_ellipse(
                image,
                rng,
                scale=1 + 0.3 * cycle,
                centre=m["centre"] + m["drift"] * cycle,
                radii=m["radii"],
                angle=m["angle"],
                value=m["value"],
            )
        sequence.append(np.clip(image, 0, None) * phase_map)
    return scale_to_unit_max(np.stack(sequence), image_axes=3)


def phantom_images(n: int, size: int, seed: int = 0, dynamic: bool = False, frames: int = 10) -> np.ndarray:
    """``n`` seeded phantoms (n, size, size), or moving sequences (n, frames, size, size) if ``dynamic``."""
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    if dynamic:
        return np.stack([moving_phantom_sequence(frames, size, rng) for rng in rngs])
    return np.stack([random_phantom(size, rng) for rng in rngs])

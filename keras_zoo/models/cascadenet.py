"""Deep Cascade of CNNs for MR reconstruction (CascadeNet, Schlemper et al.), 2D and dynamic.

Each cascade is a small CNN denoiser with a residual connection followed by data consistency (DC),
which puts the measured k-space samples back (:class:`keras_zoo.layers.DataConsistency`):

- 2D (the paper's DnCn, default D5-C5): 5 cascades of ``n_convs - 1`` 3x3 conv+ReLU layers with
  ``filters`` channels and a linear 3x3 conv back to 2 channels (real, imag), He-normal weights, bias.
  565,770 parameters at the defaults, the same as the authors' ``d5_c5.npz``.
- dynamic (``dynamic=True``): 3x3x3 convolutions over (frames, H, W); with ``data_sharing=True`` each
  cascade first stacks k-space averages over neighbouring frames
  (:class:`keras_zoo.layers.KSpaceAveraging`, distances 0..4, 12 input channels): the paper's D5-C10(S),
  3,562,260 parameters.
- the Ascend port's MoDL-like variant (preset ``"ascend"``): no bias, batch norm after every conv (no
  ReLU after the last), one conv stack shared by all cascades, one learned DC lambda.

Layout is channels-last: 2D tensors are (batch, H, W, 2), dynamic ones (batch, frames, H, W, 2) (the
reference's (n, 2, nx, ny, nt) transposed), channel 0 real and channel 1 imaginary. FFTs are orthonormal
and uncentred (DC at index [0, 0]), so masks and k-space must be ``ifftshift``-ed (see
``keras_zoo.datasets.mri``). Images are expected scaled so that the magnitude's maximum is 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers

from keras_zoo.layers import DataConsistency, KSpaceAveraging
from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.layout import Conv2D, Conv3D
from keras_zoo.models.cascadenet_weights import load_cascadenet_weights
from keras_zoo.models.checks import check_at_least
from keras_zoo.registry import register_model

# The Ascend port's MoDL-like variant (preset "ascend", ``train.py --variant ascend``).
ASCEND_VARIANT = {
    "n_convs": 11,
    "batch_norm": True,
    "shared_weights": True,
    "noise_lambda": 0.5,
    "trainable_lambda": True,
    "lambda_form": "ascend",
    "kernel_initializer": "glorot_uniform",
}

# The paper's data-sharing windows t-d..t+d, d = 0..4 (``AverageInKspaceLayer(frame_dist=range(5))``).
DATA_SHARING_DISTANCES = (0, 1, 2, 3, 4)


def make_denoiser_layers(
    dims: int,
    n_convs: int,
    filters: int,
    activation: str,
    batch_norm: bool,
    kernel_initializer: str,
    name: str,
) -> list[keras.layers.Layer]:
    """Creates the layers of one cascade's CNN, in call order.

    Without batch norm: ``n_convs - 1`` convs with ``activation`` and bias (``{name}_conv{i}``), then the
    linear ``{name}_conv_aggr`` to 2 channels. With batch norm (the Ascend port): every conv has no bias
    and is followed by ``{name}_bn{i}``, and all but the last by ``{name}_act{i}``.

    Args:
        dims: 2 (Conv2D) or 3 (Conv3D over frames, H, W).
        n_convs: number of convolutions, >= 2.
        filters: channels of the hidden convolutions.
        activation: Keras activation name of the hidden convolutions.
        batch_norm: the Ascend port's conv -> BN -> activation ordering, without conv bias.
        kernel_initializer: Keras initializer name of the kernels.
        name: layer-name prefix, e.g. ``"cascade1"``.
    """
    conv = Conv2D if dims == 2 else Conv3D
    denoiser = []
    for i in range(1, n_convs + 1):
        last = i == n_convs
        conv_name = f"{name}_conv_aggr" if last and not batch_norm else f"{name}_conv{i}"
        denoiser.append(
            conv(
                2 if last else filters,
                3,
                padding="same",
                activation=None if (last or batch_norm) else activation,
                use_bias=not batch_norm,
                kernel_initializer=kernel_initializer,
                name=conv_name,
            )
        )
        if batch_norm:
            denoiser.append(BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{name}_bn{i}"))
            if not last:
                denoiser.append(layers.Activation(activation, name=f"{name}_act{i}"))
    return denoiser


def apply_layers(x, stack: Sequence[keras.layers.Layer]):
    """Calls ``stack`` in order on ``x``."""
    for layer in stack:
        x = layer(x)
    return x


def resolve_input_shape(input_shape: Sequence[int | None], dynamic: bool, frames: int | None) -> tuple:
    """Checks ``input_shape`` and returns (H, W, 2) for 2D or (frames, H, W, 2) for dynamic models."""
    shape = tuple(input_shape)
    if shape[-1:] != (2,):
        raise ValueError(f"cascadenet: input_shape must end with 2 channels (real, imag), got {shape}")
    if not dynamic:
        if len(shape) != 3:
            raise ValueError(f"cascadenet: input_shape must be (height, width, 2) for 2D, got {shape}")
        if frames is not None:
            raise ValueError(f"cascadenet: frames is only used with dynamic=True, got frames={frames}")
        return shape
    if len(shape) == 3:
        return (frames, *shape)
    if len(shape) != 4:
        raise ValueError(f"cascadenet: dynamic input_shape must be (frames, height, width, 2), got {shape}")
    if frames is not None and shape[0] not in (None, frames):
        raise ValueError(f"cascadenet: frames={frames} conflicts with input_shape {shape}")
    return shape


@register_model(
    "cascadenet",
    description="Deep Cascade of CNNs (CascadeNet) for 2D and dynamic MR reconstruction",
    presets={
        "tiny": {"input_shape": (32, 32, 2), "n_cascades": 2, "n_convs": 3, "filters": 8},
        "dynamic": {
            "input_shape": (30, 256, 32, 2),
            "n_cascades": 10,
            "dynamic": True,
            "data_sharing": True,
        },
        "ascend": {"n_cascades": 5, **ASCEND_VARIANT},
    },
    reference_params=565_770,
)
def cascadenet(
    input_shape: Sequence[int | None] = (256, 256, 2),
    n_cascades: int = 5,
    n_convs: int = 5,
    filters: int = 64,
    activation: str = "relu",
    dynamic: bool = False,
    frames: int | None = None,
    data_sharing: bool = False,
    noise_lambda: float | None = None,
    batch_norm: bool = False,
    shared_weights: bool = False,
    weights: str | os.PathLike | None = None,
    trainable_lambda: bool = False,
    lambda_form: str = "pytorch",
    kernel_initializer: str = "he_normal",
    flip_kernels: bool = False,
    name: str = "cascadenet",
) -> keras.Model:
    """Builds CascadeNet.

    Args:
        input_shape: (H, W, 2) for 2D; (frames, H, W, 2), or (H, W, 2) together with ``frames``, for
            dynamic models. Sizes may be None (fully convolutional).
        n_cascades: number of CNN + DC cascades (5 in D5-C5, 10 in D5-C10(S)).
        n_convs: convolutions per cascade including the final linear one (the "D" of D5-C5).
        filters: channels of the hidden convolutions (64 in the paper).
        activation: activation of the hidden convolutions ("relu" in the paper).
        dynamic: 3D convolutions over (frames, H, W) for dynamic sequences.
        frames: number of frames when ``input_shape`` is (H, W, 2) and ``dynamic``; None = any.
        data_sharing: k-space averaging over neighbouring frames before each cascade (dynamic only).
        noise_lambda: None for noise-free DC, else the DC lambda (fixed, or initial if trainable).
        batch_norm: the Ascend port's conv (no bias) -> BN -> ReLU blocks.
        shared_weights: one denoiser (and one DC layer) reused by every cascade, as in the Ascend port.
        weights: None, or a file to load: the authors' Lasagne ``.npz`` (``d5_c5.npz``), a PyTorch DnCn
            state dict ``.pth`` (needs torch), or Keras ``.weights.h5`` / legacy ``.h5``.
        trainable_lambda: learn the DC lambda (needs ``noise_lambda``).
        lambda_form: "pytorch" (w = lambda/(1+lambda)) or "ascend" (w = lambda/(0.5+lambda)).
        kernel_initializer: initializer of the conv kernels ("he_normal" paper, "glorot_uniform" port).
        flip_kernels: flip kernels spatially when importing a Lasagne ``.npz`` (Lasagne's CPU layer is a
            true convolution). False by default; both conventions measure within 0.2 dB of each other
            on real MR (see ``keras_zoo.models.cascadenet_weights``).
        name: model name.

    Returns:
        ``keras.Model`` with inputs ``[image, kspace, mask]`` (zero-filled image, masked uncentred
        k-space, mask with both channels equal), each (batch, H, W, 2) or (batch, frames, H, W, 2), and
        the reconstructed image of the same shape as output (float32, also under mixed precision).
    """
    shape = resolve_input_shape(input_shape, dynamic, frames)
    check_at_least("cascadenet", 1, n_cascades=n_cascades, filters=filters)
    check_at_least("cascadenet", 2, n_convs=n_convs)
    if data_sharing and not dynamic:
        raise ValueError("cascadenet: data_sharing=True needs dynamic=True")

    image = keras.Input(shape=shape, name="image")
    kspace = keras.Input(shape=shape, name="kspace")
    mask = keras.Input(shape=shape, name="mask")
    dims = 3 if dynamic else 2

    def make_dc(prefix: str) -> DataConsistency:
        return DataConsistency(
            noise_lambda, trainable_lambda=trainable_lambda, lambda_form=lambda_form, name=f"{prefix}dc"
        )

    if shared_weights:
        shared_denoiser = make_denoiser_layers(
            dims, n_convs, filters, activation, batch_norm, kernel_initializer, name="shared"
        )
        shared_dc = make_dc("")

    x = image
    for c in range(1, n_cascades + 1):
        prefix = f"cascade{c}"
        features = x
        if data_sharing:
            features = KSpaceAveraging(DATA_SHARING_DISTANCES, divide_by_n=c > 1, name=f"{prefix}_kavg")(
                [x, mask]
            )
        if shared_weights:
            denoiser, dc = shared_denoiser, shared_dc
        else:
            denoiser = make_denoiser_layers(
                dims, n_convs, filters, activation, batch_norm, kernel_initializer, name=prefix
            )
            dc = make_dc(f"{prefix}_")
        residual = apply_layers(features, denoiser)
        x = layers.Add(name=f"{prefix}_residual")([x, residual])
        x = dc([x, kspace, mask])

    model = keras.Model([image, kspace, mask], x, name=name)
    if weights is not None:
        load_cascadenet_weights(model, weights, flip_kernels=flip_kernels)
    return model

"""2D U-Net for binary or multi-class segmentation (zhixuhao/unet, ISBI 2012 membranes).

The default configuration reproduces the reference Keras model exactly: 31,031,685 parameters at
256x256x1. Encoder levels double the filters (64..512), the bottleneck has 1024; dropout follows the
deepest encoder level and the bottleneck; the decoder upsamples by nearest-neighbour repetition followed
by a learned 2x2 convolution and concatenates the skip *first*; a 2-filter 3x3 convolution precedes the
1x1 sigmoid head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers

from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.layout import Conv2D
from keras_zoo.layers.max_pooling import MaxPooling2D
from keras_zoo.models.checks import check_at_least, check_fraction
from keras_zoo.registry import register_model


def check_divisible(input_shape: Sequence[int | None], factor: int, model: str) -> None:
    """Raises ValueError when a known spatial size of ``input_shape`` is not a positive multiple of ``factor``."""
    for size in input_shape[:-1]:
        if size is not None and (size < factor or size % factor):
            raise ValueError(
                f"{model}: input spatial size {tuple(input_shape[:-1])} must be divisible by {factor}; "
                f"got {size}"
            )


def apply_conv_block(x, filters: int, batch_norm: bool, name: str, bn_momentum: float = 0.99):
    """Two 3x3 convolutions with ReLU (and optional batch norm before each ReLU).

    Args:
        x: tensor (batch, height, width, channels).
        filters: output channels of both convolutions.
        batch_norm: insert BatchNormalization between each convolution and its ReLU.
        name: layer-name prefix, e.g. ``"enc1"``.
        bn_momentum: momentum of the batch norms' moving statistics.
    """
    for i in (1, 2):
        x = Conv2D(
            filters,
            3,
            padding="same",
            kernel_initializer="he_normal",
            activation=None if batch_norm else "relu",
            use_bias=not batch_norm,
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


@register_model(
    "unet",
    description="2D U-Net (zhixuhao/unet) for ISBI 2012 membrane segmentation",
    presets={"tiny": {"input_shape": (32, 32, 1), "filters": 4, "depth": 2}},
    reference_params=31_031_685,
)
def unet(
    input_shape: Sequence[int | None] = (256, 256, 1),
    classes: int = 1,
    filters: int = 64,
    depth: int = 4,
    dropout: float = 0.5,
    batch_norm: bool = False,
    bn_momentum: float = 0.99,
    weights: str | os.PathLike | None = None,
    name: str = "unet",
) -> keras.Model:
    """Builds the 2D U-Net.

    Args:
        input_shape: (height, width, channels); height and width divisible by ``2**depth`` or ``None``
            (fully convolutional). Images are expected in [0, 1], as in the reference.
        classes: 1 gives a sigmoid head (binary mask); more gives a softmax over ``classes`` channels.
        filters: filters of the first level; level ``i`` has ``filters * 2**i``.
        depth: number of pooling steps (4 in the reference).
        dropout: dropout rate after the deepest encoder level and the bottleneck.
        batch_norm: add batch normalisation after every 3x3 convolution (not in the reference).
        bn_momentum: momentum of their moving statistics (0.99, Keras' default); short runs may want 0.9, so
            that the inference-mode statistics keep up with the weights.
        weights: None, or a weights file to load (``.weights.h5``, ``.keras``, or a legacy ``.h5`` such as the
            reference's ``unet_membrane.hdf5``, by layer name).
        name: model name.

    Returns:
        ``keras.Model`` mapping (batch, H, W, C) images to (batch, H, W, classes) probabilities (float32).
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"unet: input_shape must be (height, width, channels), got {input_shape}")
    check_at_least("unet", 1, classes=classes, filters=filters, depth=depth)
    check_fraction("unet", dropout=dropout, bn_momentum=bn_momentum)
    check_divisible(input_shape, 2**depth, "unet")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = apply_conv_block(x, filters * 2**level, batch_norm, f"enc{level + 1}", bn_momentum)
        if level == depth - 1 and dropout:
            x = layers.Dropout(dropout, name=f"enc{level + 1}_drop")(x)
        skips.append(x)
        x = MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)

    x = apply_conv_block(x, filters * 2**depth, batch_norm, "bottleneck", bn_momentum)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_drop")(x)

    for level in reversed(range(depth)):
        prefix = f"dec{level + 1}"
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}_upsample")(x)
        x = Conv2D(
            filters * 2**level,
            2,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            name=f"{prefix}_upconv",
        )(x)
        x = layers.Concatenate(axis=-1, name=f"{prefix}_concat")([skips[level], x])
        x = apply_conv_block(x, filters * 2**level, batch_norm, prefix, bn_momentum)

    x = Conv2D(2, 3, padding="same", activation="relu", kernel_initializer="he_normal", name="head_conv")(x)
    logits = Conv2D(classes, 1, name="head_logits")(x)
    activation = "sigmoid" if classes == 1 else "softmax"
    outputs = layers.Activation(activation, dtype="float32", name="head_" + activation)(logits)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        from keras_zoo.weights import load_weights

        load_weights(model, weights)  # legacy .h5 by layer name, with a report
    return model

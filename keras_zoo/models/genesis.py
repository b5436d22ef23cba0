"""Models Genesis: the reference Keras 3D U-Net (MrGiovanni/ModelsGenesis ``keras/unet3d.py``), channels-last.

The default configuration reproduces the network behind the published ``Genesis_Chest_CT.h5`` exactly:
16,324,929 parameters at 64x64x32x1 (4,672 of them BN moving statistics). Each level has two
conv-BN-ReLU blocks, the first with ``n`` and the second with ``2n`` filters; the decoder upsamples by
nearest repetition (no learned up-convolution) and concatenates the upsampled tensor *first*; a 1x1x1
sigmoid convolution is the head. The blocks keep the reference names ``depth_{i}_conv``, ``depth_{i}_bn``
and ``depth_{i}_relu`` (i = 0..13 at depth 4) so its weights load by name.

Transfer learning (:func:`genesis_classifier`, :func:`genesis_segmenter`) taps the encoder bottleneck
``depth_7_relu`` and the last decoder feature ``depth_13_relu``, as the reference's target-task code does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers

from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.layout import Conv3D
from keras_zoo.layers.max_pooling import MaxPooling3D
from keras_zoo.models.checks import check_at_least, check_fraction
from keras_zoo.registry import register_model, register_variant


def check_genesis_shape(input_shape: Sequence[int | None], depth: int) -> tuple[int | None, ...]:
    """Checks a (rows, cols, depth, channels) input shape; spatial sizes must divide by ``2**(depth-1)``.

    Returns:
        The shape as a tuple.

    Raises:
        ValueError: naming the shape and the offending size.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"genesis: input_shape must be (rows, cols, depth, channels), got {input_shape}")
    factor = 2 ** (depth - 1)
    for size in input_shape[:3]:
        if size is not None and (size < factor or size % factor):
            raise ValueError(
                f"genesis: spatial size {tuple(input_shape[:3])} must be divisible by 2**(depth-1) = {factor}; "
                f"got {size}"
            )
    return input_shape


def apply_conv_bn_relu(x, filters: int, batch_norm: bool, index: int, bn_momentum: float = 0.99):
    """One reference convolution block: Conv3D 3x3x3 'same' (bias, glorot) -> BN -> ReLU.

    Args:
        x: tensor (batch, rows, cols, depth, channels).
        filters: output channels.
        batch_norm: insert BatchNormalization (Keras-2 defaults: momentum 0.99, epsilon 1e-3).
        bn_momentum: momentum of the BN moving statistics.
        index: block number ``i`` in the names ``depth_{i}_conv/_bn/_relu``.
    """
    x = Conv3D(filters, 3, padding="same", name=f"depth_{index}_conv")(x)
    if batch_norm:
        x = BatchNormalization(axis=-1, momentum=bn_momentum, epsilon=1e-3, name=f"depth_{index}_bn")(x)
    return layers.Activation("relu", name=f"depth_{index}_relu")(x)


def bottleneck_layer_name(depth: int = 4) -> str:
    """Name of the encoder's last activation (``depth_7_relu`` at depth 4), the classifier's feature."""
    return f"depth_{2 * depth - 1}_relu"


def last_decoder_layer_name(depth: int = 4) -> str:
    """Name of the decoder's last activation (``depth_13_relu`` at depth 4), the segmenter's feature."""
    return f"depth_{4 * depth - 3}_relu"


@register_model(
    "genesis",
    description="Models Genesis 3D U-Net (Keras reference) for self-supervised restoration and transfer",
    presets={"tiny": {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3}},
    reference_params=16_324_929,
)
def genesis(
    input_shape: Sequence[int | None] = (64, 64, 32, 1),
    classes: int = 1,
    filters: int = 32,
    depth: int = 4,
    batch_norm: bool = True,
    weights: str | os.PathLike | None = None,
    bn_momentum: float = 0.99,
    name: str = "genesis",
) -> keras.Model:
    """Builds the Models Genesis 3D U-Net.

    Args:
        input_shape: (rows, cols, depth, channels); spatial sizes divisible by ``2**(depth-1)`` or ``None``.
            Volumes are expected in [0, 1] (CT: HU window [-1000, 1000]).
        classes: channels of the 1x1x1 head; 1 gives a sigmoid (restoration), more a softmax.
        filters: filters of the first convolution (``n_base_filters``, 32 in the reference).
        depth: number of resolution levels (4 in the reference; ``depth - 1`` poolings).
        batch_norm: batch normalisation in every block (True in pretraining and fine-tuning).
        weights: optional weight file: the reference's Keras-2 ``.h5`` (loaded by name, the head by shape)
            or keras_zoo's ``.weights.h5`` / ``.keras`` (see :mod:`keras_zoo.models.genesis_weights`).
        bn_momentum: momentum of the BN moving statistics (0.99, the Keras-2 default, in the reference).
            Short runs may want 0.9: with 0.99 the inference-mode statistics lag the weights for hundreds
            of steps, which can saturate the validation outputs early in training.
        name: model name.

    Returns:
        ``keras.Model`` mapping (batch, rows, cols, depth, channels) to (batch, rows, cols, depth, classes)
        probabilities in float32.
    """
    check_at_least("genesis", 1, classes=classes, filters=filters, depth=depth)
    check_fraction("genesis", bn_momentum=bn_momentum)
    input_shape = check_genesis_shape(input_shape, depth)

    inputs = keras.Input(shape=input_shape, name="volume")
    x = inputs
    index = 0
    skips = []
    for level in range(depth):
        x = apply_conv_bn_relu(x, filters * 2**level, batch_norm, index, bn_momentum)
        x = apply_conv_bn_relu(x, filters * 2**level * 2, batch_norm, index + 1, bn_momentum)
        index += 2
        if level < depth - 1:
            skips.append(x)
            x = MaxPooling3D(2, name=f"pool_{level}")(x)

    for level in reversed(range(depth - 1)):
        skip = skips[level]
        x = layers.UpSampling3D(2, name=f"upsample_{level}")(x)
        x = layers.Concatenate(axis=-1, name=f"concat_{level}")([x, skip])
        x = apply_conv_bn_relu(x, skip.shape[-1], batch_norm, index, bn_momentum)
        x = apply_conv_bn_relu(x, skip.shape[-1], batch_norm, index + 1, bn_momentum)
        index += 2

    logits = Conv3D(classes, 1, name="head_conv")(x)
    activation = "sigmoid" if classes == 1 else "softmax"
    outputs = layers.Activation(activation, dtype="float32", name=f"head_{activation}")(logits)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        from keras_zoo.models.genesis_weights import load_genesis_weights

        load_genesis_weights(model, weights)
    return model


def _backbone_layer_names(depth: int) -> list[str]:
    return [f"depth_{i}_{kind}" for i in range(2 * depth) for kind in ("conv", "bn")]


def _freeze(backbone: keras.Model, depth: int, freeze_encoder: bool, freeze_batch_norm: bool) -> None:
    encoder = set(_backbone_layer_names(depth))
    for layer in backbone.layers:
        if freeze_encoder and layer.name in encoder:
            layer.trainable = False
        if freeze_batch_norm and isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _target_backbone(
    input_shape: Sequence[int | None],
    filters: int,
    depth: int,
    weights: str | os.PathLike | None,
    backbone: keras.Model | None,
    bn_momentum: float,
) -> keras.Model:
    """The genesis network a target model is cut from: ``backbone`` itself, or a new one at ``input_shape``."""
    if backbone is not None:
        return backbone
    return genesis(input_shape, filters=filters, depth=depth, weights=weights, bn_momentum=bn_momentum)


@register_variant("genesis", "classifier", head_layers=("cls_dense", "cls_logits"))
def genesis_classifier(
    input_shape: Sequence[int | None] = (64, 64, 32, 1),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    filters: int = 32,
    depth: int = 4,
    dense_units: int = 1024,
    freeze_encoder: bool = False,
    freeze_batch_norm: bool = False,
    backbone: keras.Model | None = None,
    bn_momentum: float = 0.99,
    name: str = "genesis_classifier",
) -> keras.Model:
    """Classifier on the (pretrained) genesis encoder: ``depth_7_relu`` -> GAP3D -> Dense 1024 relu -> Dense.

    Args:
        input_shape: (rows, cols, depth, channels); any size divisible by ``2**(depth-1)`` (16 at depth 4 is
            the reference's fine-tuning advice). Ignored when ``backbone`` is given.
        classes: 1 gives a sigmoid output (binary), more a softmax.
        weights: pretrained genesis weights (reference ``.h5`` or keras_zoo files) for a new backbone.
        filters, depth: genesis configuration of a new backbone (must match ``weights``).
        dense_units: width of the hidden dense layer (1024 in the reference).
        freeze_encoder: make the encoder convolutions and BN layers untrainable.
        freeze_batch_norm: make every BN layer untrainable (inference-mode statistics).
        backbone: an existing genesis model to cut from instead of building one.
        bn_momentum: BN momentum of a new backbone (see :func:`genesis`).
        name: model name.

    Returns:
        ``keras.Model`` mapping volumes (batch, rows, cols, depth, channels) to (batch, classes) float32.
    """
    check_at_least("genesis_classifier", 1, classes=classes, dense_units=dense_units)
    net = _target_backbone(input_shape, filters, depth, weights, backbone, bn_momentum)
    depth = _depth_of(net)
    _freeze(net, depth, freeze_encoder, freeze_batch_norm)
    x = net.get_layer(bottleneck_layer_name(depth)).output
    x = layers.GlobalAveragePooling3D(name="cls_pool")(x)
    x = layers.Dense(dense_units, activation="relu", name="cls_dense")(x)
    x = layers.Dense(classes, name="cls_logits")(x)
    activation = "sigmoid" if classes == 1 else "softmax"
    outputs = layers.Activation(activation, dtype="float32", name=f"cls_{activation}")(x)
    return keras.Model(net.input, outputs, name=name)


@register_variant("genesis", "segmenter", head_layers=("seg_conv",))
def genesis_segmenter(
    input_shape: Sequence[int | None] = (64, 64, 32, 1),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    filters: int = 32,
    depth: int = 4,
    freeze_encoder: bool = False,
    freeze_batch_norm: bool = False,
    backbone: keras.Model | None = None,
    bn_momentum: float = 0.99,
    name: str = "genesis_segmenter",
) -> keras.Model:
    """Segmenter on the (pretrained) genesis network: ``depth_13_relu`` -> Conv3D 1x1x1 -> sigmoid/softmax.

    Args: as :func:`genesis_classifier` (without ``dense_units``); ``classes`` 1 gives a sigmoid mask, more
        a softmax over classes.

    Returns:
        ``keras.Model`` mapping (batch, rows, cols, depth, channels) to (batch, rows, cols, depth, classes).
    """
    check_at_least("genesis_segmenter", 1, classes=classes)
    net = _target_backbone(input_shape, filters, depth, weights, backbone, bn_momentum)
    depth = _depth_of(net)
    _freeze(net, depth, freeze_encoder, freeze_batch_norm)
    x = net.get_layer(last_decoder_layer_name(depth)).output
    x = Conv3D(classes, 1, name="seg_conv")(x)
    activation = "sigmoid" if classes == 1 else "softmax"
    outputs = layers.Activation(activation, dtype="float32", name=f"seg_{activation}")(x)
    return keras.Model(net.input, outputs, name=name)


def _depth_of(model: keras.Model) -> int:
    """Number of levels of a genesis model, from its block names (4 blocks per level but the last, 2)."""
    blocks = sum(
        1 for layer in model.layers if layer.name.startswith("depth_") and layer.name.endswith("_conv")
    )
    if blocks < 2 or (blocks + 2) % 4:
        raise ValueError(f"model {model.name!r} is not a genesis network ({blocks} depth_*_conv layers)")
    return (blocks + 2) // 4

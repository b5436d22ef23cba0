"""DeepLabv3+ with an aligned Xception backbone (tensorflow/models ``research/deeplab``, ``model.py``).

The default configuration reproduces the reference's VOC model (xception_65, output stride 16, atrous
rates 6/12/18, decoder output stride 4, 21 classes): 41,055,413 trainable and 41,258,213 total parameters,
identical at output stride 8. Layer names mirror the reference's variable scopes (``aspp0``,
``aspp1_depthwise``, ``image_pooling``, ``concat_projection``, ``decoder_feature_projection0``,
``decoder_conv0_depthwise``, ``logits_semantic``; backbone names in :mod:`keras_zoo.models.xception`), so a TF1
checkpoint converts by name (:mod:`keras_zoo.models.deeplab_weights`).

Two documented departures, both forced by Keras 3 having no ``align_corners=True`` bilinear resize on every
backend and the model having no ``Lambda`` layers:

* **Image pooling** is the newer reference's global mean (``reduce_mean`` over the feature map, 1x1 conv 256
  + BN + ReLU, broadcast back), not the older fixed ``crop/OS`` average pool. For a 513 crop both pool the
  whole 33x33 map, so they agree; the global mean also works for any input size.
* **Bilinear resizes** (ASPP output to the stride-4 decoder size, logits to the input size) use
  ``keras.layers.Resizing(interpolation="bilinear")``, i.e. half-pixel centres (TF2 ``tf.image.resize``,
  ``jax.image.resize``, PyTorch ``align_corners=False``), the only bilinear resize Keras provides on all
  backends. The reference uses ``align_corners=True``; the two grids differ by under one source pixel, so
  converted checkpoints keep working but their mIoU may move slightly. Both are called with
  ``training=False``: Keras' image preprocessing layers default to ``training=True`` and, called without a
  ``training`` argument, pass it on to every later layer, so ``model(x)`` (and ``model.export``, which traces
  that call) would run the decoder's batch norms on batch statistics.

The network needs a static input size: the resize targets are computed from it. For another size (multi-scale
evaluation) build a second model and copy the weights (``model_b.set_weights(model_a.get_weights())``);
no weight depends on the size.

Biases get no 2x gradient multiplier (the reference's default ``bias_multiplier``); weight decay is
``keras.regularizers.L2(wd / 2)`` on every convolution and pointwise kernel (not depthwise), equal to slim's
``l2_regularizer(wd)`` with the reference ``wd = 4e-5``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from keras_zoo.errors import WeightsError
from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.layout import Conv2D
from keras_zoo.models.xception import (
    BACKBONES,
    BN_MOMENTUM,
    apply_separable_conv,
    apply_xception,
    scaled,
)
from keras_zoo.registry import register_model, register_weights_loader

HEAD_BN_EPSILON = 1e-5  # ASPP and decoder batch norms (the backbone uses 1e-3)
DEFAULT_ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}
DEPTHWISE_STDDEV = 0.33
POINTWISE_STDDEV = 0.06
LOGITS_STDDEV = 0.01


def preprocess_input(images):
    """Scales RGB images from [0, 255] to [-1, 1] as the reference does (``2 / 255 * x - 1``).

    The reference pads crops with the mean pixel 127.5, which this maps to 0.

    Args:
        images: array or tensor (..., 3) of RGB values in [0, 255] (uint8 or float).

    Returns:
        float32 array or tensor of the same shape in [-1, 1].
    """
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) / 127.5 - 1.0
    return keras.ops.cast(images, "float32") / 127.5 - 1.0


def _conv_bn_relu(x, filters: int, weight_decay: float, name: str):
    """1x1 conv (no bias, glorot as slim's default) + BN (eps 1e-5) + ReLU, as the head's slim ``conv2d``."""
    x = Conv2D(
        filters,
        1,
        use_bias=False,
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
        name=name,
    )(x)
    x = BatchNormalization(momentum=BN_MOMENTUM, epsilon=HEAD_BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _head_separable(x, filters: int, rate: int, weight_decay: float, name: str):
    """The head's split separable conv (``utils.split_separable_conv2d``): ReLU after both BNs."""
    return apply_separable_conv(
        x,
        filters,
        rate=rate,
        relu_inside=True,
        epsilon=HEAD_BN_EPSILON,
        weight_decay=weight_decay,
        depthwise_stddev=DEPTHWISE_STDDEV,
        pointwise_stddev=POINTWISE_STDDEV,
        name=name,
    )


def apply_aspp(
    x, atrous_rates: Sequence[int], filters: int = 256, dropout: float = 0.1, weight_decay: float = 0.0
):
    """Atrous spatial pyramid pooling with image-level features, as the reference's ``extract_features``.

    Branches, concatenated in the reference's order: image pooling (global mean -> 1x1 conv -> BN -> ReLU ->
    broadcast), ``aspp0`` (1x1 conv), then one split separable 3x3 conv per atrous rate (``aspp1``...).
    The concatenation goes through ``concat_projection`` (1x1 conv + BN + ReLU) and dropout.

    Args:
        x: backbone features (batch, h, w, channels) with static h and w.
        atrous_rates: dilation rates of the separable branches, e.g. (6, 12, 18).
        filters: channels of every branch and of the projection (256 in the reference).
        dropout: dropout rate after the projection (reference keep_prob 0.9).
        weight_decay: reference weight decay ``wd``.

    Returns:
        Tensor (batch, h, w, filters).
    """
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError(f"apply_aspp needs a static spatial size, got {tuple(x.shape)}")
    if any(rate < 1 for rate in atrous_rates):
        raise ValueError(f"atrous_rates must all be >= 1, got {tuple(atrous_rates)}")
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="image_pooling_mean")(x)
    pooled = _conv_bn_relu(pooled, filters, weight_decay, name="image_pooling")
    pooled = layers.UpSampling2D((height, width), interpolation="nearest", name="image_pooling_broadcast")(
        pooled
    )
    branches = [pooled, _conv_bn_relu(x, filters, weight_decay, name="aspp0")]
    for i, rate in enumerate(atrous_rates, start=1):
        branches.append(_head_separable(x, filters, rate, weight_decay, name=f"aspp{i}"))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = _conv_bn_relu(x, filters, weight_decay, name="concat_projection")
    return layers.Dropout(dropout, name="concat_projection_dropout")(x)


def apply_decoder(x, tap, filters: int = 256, projection_filters: int = 48, weight_decay: float = 0.0):
    """The DeepLabv3+ decoder: project the stride-4 tap, upsample the ASPP output, two separable convs.

    Args:
        x: ASPP output (batch, h, w, channels).
        tap: backbone feature at stride 4 (batch, H4, W4, channels), before its ReLU.
        filters: channels of ``decoder_conv0`` / ``decoder_conv1`` (256).
        projection_filters: channels of ``decoder_feature_projection0`` (48).
        weight_decay: reference weight decay ``wd``.

    Returns:
        Tensor (batch, H4, W4, filters).
    """
    projection = _conv_bn_relu(tap, projection_filters, weight_decay, name="decoder_feature_projection0")
    size = (tap.shape[1], tap.shape[2])
    if (x.shape[1], x.shape[2]) != size:
        x = layers.Resizing(*size, interpolation="bilinear", name="decoder_upsample")(x, training=False)
    x = layers.Concatenate(name="decoder_concat")([x, projection])
    x = _head_separable(x, filters, 1, weight_decay, name="decoder_conv0")
    return _head_separable(x, filters, 1, weight_decay, name="decoder_conv1")


@register_model(
    "deeplabv3plus",
    description="DeepLabv3+ with aligned Xception-65 for PASCAL VOC semantic segmentation",
    presets={
        "tiny": {"input_shape": (33, 33, 3), "backbone": "xception41", "width": 1 / 16, "middle_units": 1}
    },
    reference_params=41_258_213,
)
def deeplabv3plus(
    input_shape: Sequence[int] = (513, 513, 3),
    classes: int = 21,
    output_stride: int = 16,
    backbone: str = "xception65",
    atrous_rates: Sequence[int] | None = None,
    weights: str | None = None,
    width: float = 1.0,
    middle_units: int | None = None,
    weight_decay: float = 4e-5,
    dropout: float = 0.1,
    classifier_activation: str | None = None,
    bn_momentum: float | None = None,
    freeze_batch_norm: bool = False,
    name: str = "deeplabv3plus",
) -> keras.Model:
    """Builds DeepLabv3+ (backbone, ASPP, decoder, logits upsampled to the input size).

    Args:
        input_shape: (height, width, 3) with static sizes; inputs must be scaled by :func:`preprocess_input`.
        classes: number of classes (21 for VOC, background included).
        output_stride: 16 or 8 (32 turns atrous convolution off); the backbone's atrous schedule follows.
        backbone: ``"xception65"`` (reference), ``"xception41"`` or ``"xception71"``.
        atrous_rates: ASPP rates; None gives (6, 12, 18) at OS16 and (12, 24, 36) at OS8.
        weights: None, a Keras weights file (``.weights.h5`` / legacy ``.h5``), or a TF1 DeepLab checkpoint
            prefix (``.../model.ckpt``) converted by name; see :mod:`keras_zoo.models.deeplab_weights`.
        width: channel multiplier for every layer (1.0 is the reference; test presets use 1/16).
        middle_units: middle-flow repeat count; None keeps the backbone's (16 for xception65). Test presets
            use 1 to build in seconds.
        weight_decay: reference weight decay ``wd`` (4e-5), applied as ``L2(wd / 2)``.
        dropout: dropout after the ASPP projection (0.1).
        classifier_activation: None returns logits (the reference), ``"softmax"`` probabilities.
        bn_momentum: moving-average decay of every batch norm; None keeps the reference's 0.9997 (about
            3000 steps: short runs want less).
        freeze_batch_norm: keep every batch norm fixed (the reference's ``fine_tune_batch_norm=False``).
        name: model name.

    Returns:
        ``keras.Model`` mapping (batch, H, W, 3) to (batch, H, W, classes) float32 logits (or probabilities),
        float32 also under mixed precision.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"deeplabv3plus: input_shape must be (height, width, 3), got {input_shape}")
    if any(size is None or size < 1 for size in input_shape[:2]):
        raise ValueError(f"deeplabv3plus: input_shape needs static positive sizes, got {input_shape}")
    if classes < 1:
        raise ValueError(f"deeplabv3plus: classes must be >= 1, got {classes}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"deeplabv3plus: output_stride must be 8, 16 or 32, got {output_stride}")
    if backbone not in BACKBONES:
        raise ValueError(f"deeplabv3plus: backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"deeplabv3plus: dropout must be in [0, 1), got {dropout}")
    if classifier_activation not in (None, "softmax"):
        raise ValueError(
            f"deeplabv3plus: classifier_activation must be None or 'softmax', got {classifier_activation!r}"
        )
    rates = tuple(DEFAULT_ATROUS_RATES[output_stride] if atrous_rates is None else atrous_rates)
    if any(rate < 1 for rate in rates):
        raise ValueError(f"deeplabv3plus: atrous_rates must be >= 1, got {list(rates)}")
    if bn_momentum is not None and not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"deeplabv3plus: bn_momentum must be in [0, 1), got {bn_momentum}")

    inputs = keras.Input(shape=input_shape, name="image")
    features, tap = apply_xception(inputs, backbone, output_stride, width, weight_decay, middle_units)
    x = apply_aspp(features, rates, scaled(256, width), dropout, weight_decay)
    x = apply_decoder(x, tap, scaled(256, width), scaled(48, width), weight_decay)
    x = Conv2D(
        classes,
        1,
        use_bias=True,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=LOGITS_STDDEV),
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
        name="logits_semantic",
    )(x)
    x = layers.Activation("linear", dtype="float32", name="logits_float32")(x)
    x = layers.Resizing(*input_shape[:2], interpolation="bilinear", dtype="float32", name="logits_upsample")(
        x, training=False
    )
    if classifier_activation:
        x = layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = layer.momentum if bn_momentum is None else bn_momentum
            layer.trainable = not freeze_batch_norm
    if weights is not None:
        load_deeplab_weights(model, weights)  # logs what matched
    return model


@register_weights_loader("deeplabv3plus")
def load_deeplab_weights(model: keras.Model, weights: str | os.PathLike):
    """Loads Keras weights (``.weights.h5``, legacy ``.h5``, ``.keras``) or converts a TF1 DeepLab checkpoint.

    Returns:
        The :class:`keras_zoo.weights.LoadReport` of a by-name load (None for ``.weights.h5``).

    Raises:
        WeightsError: when ``weights`` is neither a loadable Keras file nor a checkpoint prefix.
    """
    from keras_zoo.weights import load_weights

    weights = os.fspath(weights)
    if weights.endswith((".h5", ".hdf5", ".keras")):
        return load_weights(model, weights)
    if os.path.isfile(weights + ".index") or os.path.isfile(os.path.join(weights, "checkpoint")):
        from keras_zoo.models.deeplab_weights import load_tf_checkpoint

        return load_tf_checkpoint(model, weights)
    raise WeightsError(f"{weights}: not a Keras weights file or a TF checkpoint prefix (no {weights}.index)")

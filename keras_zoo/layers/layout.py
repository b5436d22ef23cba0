"""Channels-last convolutions and pools on Keras' torch backend without layout copies.

Keras' torch backend runs a channels-last ``ops.conv`` by permuting the input to (N, C, H, W), calling
``.contiguous()`` on it (a copy into channels-first order) and then ``.contiguous(channels_last)`` (a second
copy, back into the channels-last order that torch's CPU and cuDNN convolutions prefer); its pools make the
first copy, and the gradients of both copy again. Yet a channels-last tensor already *is* a channels-first
tensor in torch's ``channels_last`` memory format: ``ops.transpose`` to (N, C, H, W) is a view with exactly
those strides, a channels-first ``ops.conv`` or pool runs on it without copying, its output comes back in
``channels_last`` memory format, and the transpose back to (N, H, W, C) is a view of contiguous memory.
:func:`channels_first_view` does that; the functions and layers below use it where :func:`implementation`
says so (torch by default). Results equal the plain ops up to float32 rounding (torch may pick another
kernel for the other weight layout); the five networks' predictions were bitwise equal.

Only layout changes: :class:`Conv2D`, :class:`Conv3D` and :class:`AveragePooling2D` subclass Keras' layers,
keep their class names, configs and weights (Keras 3 ``.weights.h5`` files key layers by their snake-cased
class name) and are registered as ``keras_zoo>NAME``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from keras_zoo.layers.rewrites import chosen_implementation

IMPLEMENTATION_VARIABLE = "KERAS_ZOO_LAYOUT"
IMPLEMENTATIONS = ("auto", "view", "native")
# per backend under "auto": TensorFlow and JAX get Keras' ops unchanged (their transposes are real ops, and
# XLA assigns layouts itself)
AUTO_IMPLEMENTATION = {"torch": "view"}


def implementation() -> str:
    """The layout that ``$KERAS_ZOO_LAYOUT`` (default ``"auto"``) asks for here.

    ``view``: channels-last ops run through :func:`channels_first_view`; ``native``: Keras' ops as they are;
    ``auto`` resolves to view on torch, native elsewhere. Read when a layer is called (traced).

    Raises:
        ValueError: for any other value, naming the variable.
    """
    return chosen_implementation(IMPLEMENTATION_VARIABLE, IMPLEMENTATIONS, AUTO_IMPLEMENTATION, "native")


def uses_view(data_format: str | None = None) -> bool:
    """Whether a ``data_format`` op runs through :func:`channels_first_view` (only channels-last ones do)."""
    return implementation() == "view" and (data_format or keras.config.image_data_format()) == "channels_last"


def channels_first_view(op: Callable, inputs, *args, **kwargs):
    """``op(inputs, *args, data_format="channels_last", **kwargs)``, computed as the channels-first op on a
    transposed view of ``inputs``.

    Args:
        op: a Keras op with a ``data_format`` argument (``ops.conv``, ``ops.max_pool``, ...).
        inputs: tensor (batch, *spatial, channels).

    Returns:
        Tensor (batch, *out_spatial, out_channels), as the channels-last op.
    """
    rank = len(inputs.shape) - 2
    channels_first = ops.transpose(inputs, (0, rank + 1, *range(1, rank + 1)))
    outputs = op(channels_first, *args, data_format="channels_first", **kwargs)
    return ops.transpose(outputs, (0, *range(2, rank + 2), 1))


def depthwise_conv(inputs, kernel, strides=1, padding: str = "valid", dilation_rate=1):
    """``ops.depthwise_conv`` of channels-last ``inputs`` (batch, h, w, channels) with ``kernel`` (kh, kw,
    channels, multiplier), through :func:`channels_first_view` where :func:`uses_view`."""
    arguments = {"strides": strides, "padding": padding, "dilation_rate": dilation_rate}
    if uses_view("channels_last"):
        return channels_first_view(ops.depthwise_conv, inputs, kernel, **arguments)
    return ops.depthwise_conv(inputs, kernel, data_format="channels_last", **arguments)


class ViewPooling:
    """``call`` of a Keras pooling layer (placed before it in the bases) that pools channels-last inputs
    through :func:`channels_first_view` where :func:`uses_view`, and is the parent's ``call`` otherwise."""

    def call(self, inputs):
        if not uses_view(self.data_format):
            return super().call(inputs)
        op = ops.max_pool if self.pool_mode == "max" else ops.average_pool
        return channels_first_view(
            op, inputs, pool_size=self.pool_size, strides=self.strides, padding=self.padding
        )


class _ViewConvolution:
    """``convolution_op`` of a Keras convolution layer (placed before it in the bases) that convolves
    channels-last inputs through :func:`channels_first_view` where :func:`uses_view`."""

    def convolution_op(self, inputs, kernel):
        if not uses_view(self.data_format):
            return super().convolution_op(inputs, kernel)
        return channels_first_view(
            ops.conv,
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )


@keras.saving.register_keras_serializable(package="keras_zoo")
class Conv2D(_ViewConvolution, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (same arguments, weights and class name), convolving through
    :func:`channels_first_view` where :func:`uses_view`.

    Call args:
        inputs: tensor (batch, height, width, channels).

    Returns:
        Tensor (batch, out_h, out_w, filters), as the parent layer.
    """


@keras.saving.register_keras_serializable(package="keras_zoo")
class Conv3D(_ViewConvolution, keras.layers.Conv3D):
    """``keras.layers.Conv3D`` (same arguments, weights and class name), convolving through
    :func:`channels_first_view` where :func:`uses_view`.

    Call args:
        inputs: tensor (batch, depth, height, width, channels).

    Returns:
        Tensor (batch, out_d, out_h, out_w, filters), as the parent layer.
    """


@keras.saving.register_keras_serializable(package="keras_zoo")
class AveragePooling2D(ViewPooling, keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` (same arguments and class name), pooling through
    :func:`channels_first_view` where :func:`uses_view`.

    Call args:
        inputs: tensor (batch, height, width, channels).

    Returns:
        Tensor (batch, out_h, out_w, channels), as the parent layer.
    """

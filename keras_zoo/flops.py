"""Model FLOPs: an analytic count of a network's multiply-adds, for throughput and utilisation figures.

Counts the layers that do a network's arithmetic (convolutions of every kind and dense layers) from their
kernel and output shapes; batch norm, activations, pooling, resizing and the data-consistency FFTs are left
out (well under 1 % of the total for the five networks here). One multiply-add is 2 FLOPs. A training step
is counted as 3x the forward pass (forward, gradient with respect to the inputs, gradient with respect to
the weights), the usual convention for model-FLOPs utilisation.
"""

from __future__ import annotations

import math

import keras

TRAIN_STEP_FACTOR = 3


def _per_sample(shape) -> int:
    return math.prod(int(d) for d in shape[1:])


def _in_channels(layer) -> int:
    axis = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1
    return int(layer.input.shape[axis])


def layer_forward_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs of one layer for one sample (0 for layers without multiply-adds).

    Args:
        layer: a built layer of a functional model, called exactly once (its ``input``/``output`` defined).
    """
    if isinstance(layer, keras.layers.SeparableConv1D | keras.layers.SeparableConv2D):
        in_channels = _in_channels(layer)
        kernel = math.prod(layer.kernel_size)
        outputs = _per_sample(layer.output.shape)
        positions = outputs // layer.filters
        depthwise = positions * in_channels * layer.depth_multiplier * kernel
        pointwise = positions * in_channels * layer.depth_multiplier * layer.filters
        return 2 * (depthwise + pointwise)
    if isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
        return 2 * _per_sample(layer.output.shape) * math.prod(layer.kernel_size)
    transposed = keras.layers.Conv1DTranspose | keras.layers.Conv2DTranspose | keras.layers.Conv3DTranspose
    if isinstance(layer, transposed):
        # every input value scatters a kernel-sized patch into every output channel
        return 2 * _per_sample(layer.input.shape) * math.prod(layer.kernel_size) * layer.filters
    if isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
        in_channels = _in_channels(layer) // layer.groups
        return 2 * _per_sample(layer.output.shape) * math.prod(layer.kernel_size) * in_channels
    if isinstance(layer, keras.layers.Dense):
        return 2 * _per_sample(layer.output.shape) * int(layer.input.shape[-1])
    return 0


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def forward_flops(model: keras.Model, batch_size: int = 1) -> int:
    """FLOPs of one forward pass of ``batch_size`` samples (multiply-adds x 2; see the module docstring)."""
    return batch_size * sum(layer_forward_flops(layer) for layer in _layers(model))


def training_step_flops(model: keras.Model, batch_size: int) -> int:
    """FLOPs of one training step on ``batch_size`` samples: 3x the forward pass."""
    return TRAIN_STEP_FACTOR * forward_flops(model, batch_size)

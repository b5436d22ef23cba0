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


def _in_channels(layer, input_shape) -> int:
    axis = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1
    return int(input_shape[axis])


def layer_forward_flops(layer: keras.layers.Layer, input_shape, output_shape) -> int:
    """Forward FLOPs of one call of ``layer`` for one sample (0 for layers without multiply-adds).

    Args:
        layer: a built layer.
        input_shape: the shape of the call's input, batch axis first (e.g. ``(None, 256, 256, 64)``).
        output_shape: the shape of the call's output, batch axis first.
    """
    kernel = math.prod(getattr(layer, "kernel_size", ()))
    if isinstance(layer, keras.layers.SeparableConv1D | keras.layers.SeparableConv2D):
        depthwise_channels = _in_channels(layer, input_shape) * layer.depth_multiplier
        positions = _per_sample(output_shape) // layer.filters
        return 2 * positions * depthwise_channels * (kernel + layer.filters)
    if isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
        return 2 * _per_sample(output_shape) * kernel
    transposed = keras.layers.Conv1DTranspose | keras.layers.Conv2DTranspose | keras.layers.Conv3DTranspose
    if isinstance(layer, transposed):
        # every input value scatters a kernel-sized patch into every output channel
        return 2 * _per_sample(input_shape) * kernel * layer.filters
    if isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
        return 2 * _per_sample(output_shape) * kernel * (_in_channels(layer, input_shape) // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        return 2 * _per_sample(output_shape) * int(input_shape[-1])
    return 0


def _calls(model: keras.Model):
    """(layer, input shape, output shape) of every layer call in ``model``, nested models expanded; a
    layer shared by several calls (e.g. CascadeNet's ``shared_weights``) appears once per call."""
    for nodes in model._nodes_by_depth.values():  # Keras' graph of the functional model
        for node in nodes:
            layer = node.operation
            if isinstance(layer, keras.Model):
                yield from _calls(layer)
            elif node.input_tensors and node.output_tensors:
                yield layer, node.input_tensors[0].shape, node.output_tensors[0].shape


def forward_flops(model: keras.Model, batch_size: int = 1) -> int:
    """FLOPs of one forward pass of ``batch_size`` samples (multiply-adds x 2; see the module docstring)."""
    return batch_size * sum(layer_forward_flops(*call) for call in _calls(model))


def training_step_flops(model: keras.Model, batch_size: int) -> int:
    """FLOPs of one training step on ``batch_size`` samples: 3x the forward pass."""
    return TRAIN_STEP_FACTOR * forward_flops(model, batch_size)

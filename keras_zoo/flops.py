"""Model FLOPs and bytes: analytic counts of a network's multiply-adds and of the memory traffic of its
layers, for throughput, utilisation and roofline figures.

Counts the layers that do a network's arithmetic (convolutions of every kind and dense layers) from their
kernel and output shapes; batch norm, activations, pooling, resizing and the data-consistency FFTs are left
out (well under 1 % of the total for the five networks here). One multiply-add is 2 FLOPs. A training step
is counted as 3x the forward pass (forward, gradient with respect to the inputs, gradient with respect to
the weights), the usual convention for model-FLOPs utilisation.

Bytes (:func:`training_step_bytes`) count what the layers read and write if each ran on its own: every
input and output tensor of every layer call at the layer's compute dtype, 3x for a training step (forward;
backward reads the saved inputs and the output gradient and writes the input gradient), plus 40 bytes per
float32 trainable weight (read forward and backward, gradient written, Adam reads weight, gradient and two
moments and writes three). A compiler that fuses element-wise layers moves less; the figure is the
layer-by-layer traffic that makes batch norm, activations, pooling and concatenation cost time on a GPU.
"""

from __future__ import annotations

import math

import keras

TRAIN_STEP_FACTOR = 3
ADAM_BYTES_PER_WEIGHT = 40


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


COUNTED = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)


def _nodes(model: keras.Model):
    """The nodes of ``model``'s functional graph (a built ``Sequential``'s inner functional model).

    Raises:
        ValueError: a layer of another kind holds a convolution or dense layer, whose FLOPs would be
            counted as 0.
    """
    graph = getattr(model, "_functional", None) or model
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            layer = node.operation
            if not isinstance(layer, (keras.Model, *COUNTED)):
                hidden = [
                    sub for sub in layer._flatten_layers(include_self=False) if isinstance(sub, COUNTED)
                ]
                if hidden:
                    raise ValueError(
                        f"cannot count the FLOPs of layer {layer.name!r} ({type(layer).__name__}): it calls "
                        f"{hidden[0].name!r} ({type(hidden[0]).__name__}) inside"
                    )
            yield node


def _calls(model: keras.Model):
    """(layer, input shape, output shape) of every layer call in ``model``, nested models expanded; a
    layer shared by several calls (e.g. CascadeNet's ``shared_weights``) appears once per call."""
    for node in _nodes(model):
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


def _tensor_bytes(tensor, itemsize: int, batch_size: int) -> int:
    return batch_size * _per_sample(tensor.shape) * itemsize


def _all_calls(model: keras.Model):
    """(layer, input tensors, output tensors) of every layer call, nested models expanded, inputs skipped."""
    for node in _nodes(model):
        layer = node.operation
        if isinstance(layer, keras.Model):
            yield from _all_calls(layer)
        elif node.input_tensors and node.output_tensors:
            yield layer, node.input_tensors, node.output_tensors


def forward_bytes(model: keras.Model, batch_size: int = 1) -> int:
    """Bytes the layers of one forward pass read and write (inputs + outputs of every call, compute dtype)."""
    total = 0
    for layer, inputs, outputs in _all_calls(model):
        half = keras.backend.standardize_dtype(layer.compute_dtype) in ("float16", "bfloat16")
        itemsize = 2 if half else 4
        total += sum(_tensor_bytes(t, itemsize, batch_size) for t in (*inputs, *outputs))
    return total


def training_step_bytes(model: keras.Model, batch_size: int) -> int:
    """Bytes of one training step: 3x the forward activations plus the weights' Adam update (module doc)."""
    weights = sum(math.prod(v.shape) for v in model.trainable_weights)
    return TRAIN_STEP_FACTOR * forward_bytes(model, batch_size) + ADAM_BYTES_PER_WEIGHT * weights

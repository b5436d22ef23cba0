"""keras_zoo.flops: multiply-add counts against hand-worked numbers."""

import keras
import pytest

from keras_zoo.flops import forward_flops, layer_forward_flops, training_step_bytes, training_step_flops

pytestmark = pytest.mark.backend_agnostic


def _apply(layer, input_shape):
    inputs = keras.Input(input_shape)
    keras.Model(inputs, layer(inputs))
    return layer


@pytest.mark.parametrize(
    ("layer", "input_shape", "expected"),
    [
        # 8x8 outputs x 4 channels, each 3*3*2 multiply-adds
        (keras.layers.Conv2D(4, 3, padding="same"), (8, 8, 2), 2 * 8 * 8 * 4 * 9 * 2),
        # valid padding: 6x6 outputs
        (keras.layers.Conv2D(4, 3), (8, 8, 2), 2 * 6 * 6 * 4 * 9 * 2),
        # stride 2 halves each side
        (keras.layers.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 2), 2 * 4 * 4 * 4 * 9 * 2),
        # 2 groups: each output channel sees 2 of the 4 inputs
        (keras.layers.Conv2D(6, 3, padding="same", groups=2), (8, 8, 4), 2 * 8 * 8 * 6 * 9 * 2),
        (keras.layers.Conv3D(4, 3, padding="same"), (4, 8, 8, 2), 2 * 4 * 8 * 8 * 4 * 27 * 2),
        # channels-first: (channels, H, W)
        (
            keras.layers.Conv2D(4, 3, padding="same", data_format="channels_first"),
            (2, 8, 8),
            2 * 8 * 8 * 4 * 9 * 2,
        ),
        # depthwise: one 3x3 filter per channel
        (keras.layers.DepthwiseConv2D(3, padding="same"), (8, 8, 5), 2 * 8 * 8 * 5 * 9),
        # separable: depthwise (x2 multiplier) then 1x1 from 10 to 7 channels
        (
            keras.layers.SeparableConv2D(7, 3, padding="same", depth_multiplier=2),
            (8, 8, 5),
            2 * (8 * 8 * 10 * 9 + 8 * 8 * 10 * 7),
        ),
        # transposed: each of the 4x4x3 inputs spreads a 2x2 patch into 6 channels
        (keras.layers.Conv2DTranspose(6, 2, strides=2), (4, 4, 3), 2 * 4 * 4 * 3 * 4 * 6),
        (keras.layers.Dense(10), (32,), 2 * 32 * 10),
        # a dense layer on a sequence applies to every position
        (keras.layers.Dense(10), (5, 32), 2 * 5 * 32 * 10),
        (keras.layers.MaxPooling2D(), (8, 8, 2), 0),
        (keras.layers.BatchNormalization(), (8, 8, 2), 0),
    ],
)
def test_layer_forward_flops(layer, input_shape, expected):
    layer = _apply(layer, input_shape)
    assert layer_forward_flops(layer, layer.input.shape, layer.output.shape) == expected


def test_model_flops_sum_layers_scale_with_batch_and_include_nested_models():
    inner_in = keras.Input((8, 8, 4))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 1)(inner_in), name="inner")
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = inner(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    per_sample = 2 * 8 * 8 * 4 * 9 * 2 + 2 * 8 * 8 * 4 * 4 + 2 * 4 * 3
    assert forward_flops(model) == per_sample
    assert forward_flops(model, batch_size=5) == 5 * per_sample
    assert training_step_flops(model, batch_size=5) == 3 * 5 * per_sample


def test_a_nested_sequential_is_counted_and_a_layer_hiding_a_convolution_is_refused():
    inputs = keras.Input((8, 8, 2))
    block = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Dense(3)])
    assert forward_flops(keras.Model(inputs, block(inputs))) == 2 * 8 * 8 * 4 * 9 * 2 + 2 * 8 * 8 * 3 * 4

    class Wrapped(keras.layers.Layer):  # its convolution is no node of the graph: it would count as 0
        def __init__(self):
            super().__init__(name="wrapped")
            self.conv = keras.layers.Conv2D(4, 3, name="inner_conv")

        def call(self, x):
            return self.conv(x)

    model = keras.Model(inputs, Wrapped()(inputs))
    with pytest.raises(ValueError, match="layer 'wrapped' \\(Wrapped\\): it calls 'inner_conv' \\(Conv2D\\)"):
        forward_flops(model)
    with pytest.raises(ValueError, match="wrapped"):
        training_step_bytes(model, 1)

    class WrappedTransposed(keras.layers.Layer):  # Keras' transposed convolutions are not Conv2D subclasses
        def __init__(self):
            super().__init__(name="wrapped_transposed")
            self.conv = keras.layers.Conv2DTranspose(4, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(ValueError, match="wrapped_transposed"):
        forward_flops(keras.Model(inputs, WrappedTransposed()(inputs)))


def test_a_shared_layer_counts_once_per_call():
    conv = keras.layers.Conv2D(2, 3, padding="same")
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, conv(conv(conv(inputs))))
    assert forward_flops(model) == 3 * 2 * 8 * 8 * 2 * 9 * 2


def _two_layer_model():
    inputs = keras.Input((8, 8, 2))
    hidden = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    outputs = keras.layers.ReLU(name="relu")(hidden)
    return keras.Model(inputs, outputs)


def test_bytes_count_each_layers_inputs_and_outputs_and_the_adam_update():
    from keras_zoo.flops import forward_bytes, training_step_bytes

    model = _two_layer_model()
    conv = (8 * 8 * 2 + 8 * 8 * 4) * 4  # float32 input read, output written
    relu = (8 * 8 * 4 + 8 * 8 * 4) * 4
    assert forward_bytes(model, 3) == 3 * (conv + relu)
    weights = 3 * 3 * 2 * 4 + 4
    assert training_step_bytes(model, 3) == 3 * 3 * (conv + relu) + 40 * weights


def test_bytes_halve_for_activations_computed_in_bfloat16():
    from keras_zoo.flops import forward_bytes

    fp32 = forward_bytes(_two_layer_model(), 2)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert forward_bytes(_two_layer_model(), 2) == fp32 // 2
    finally:
        keras.mixed_precision.set_global_policy("float32")

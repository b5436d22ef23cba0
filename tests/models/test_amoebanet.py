import collections

import keras
import numpy as np
import pytest

import keras_zoo
from keras_zoo.models.amoebanet import amoebanet, reduction_indices
from keras_zoo.registry import get_entry
from tests.helpers import check_model, mixed_precision_forward, tf_same_padding

pytestmark = pytest.mark.backend_agnostic

# Per-scope trainable totals of the reference build (reference_specs.md section 5).
REFERENCE_SCOPES = {
    "stem_": 928,
    "cell_stem_0_": 18_464,
    "cell_stem_1_": 86_592,
    "cell_0_": 528_640,
    "cell_1_": 741_632,
    "reduction_cell_0_": 1_956_096,
    "cell_2_": 2_826_752,
    "cell_3_": 3_351_040,
    "aux_3_": 663_984,
    "reduction_cell_1_": 7_811_584,
    "cell_4_": 11_289_600,
    "cell_5_": 13_386_752,
    "final_layer_": 4_101_097,
}


def trainable_count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def default_with_aux():
    """The reference training graph at 224x224 (built once; never run: too slow for CI)."""
    return amoebanet(aux_head=True)


@pytest.mark.structure
def test_reference_parameter_counts(default_with_aux):
    assert trainable_count(default_with_aux.trainable_weights) == 46_763_161
    assert trainable_count(default_with_aux.non_trainable_weights) == 83_308  # BN moving statistics
    assert len(default_with_aux.weights) == 613  # variables of the reference graph, BN statistics included
    model = amoebanet()
    assert trainable_count(model.trainable_weights) == 46_099_177
    assert get_entry("amoebanet").reference_params == 46_099_177


@pytest.mark.structure
def test_reference_scope_totals(default_with_aux):
    totals = collections.Counter()
    for layer in default_with_aux.layers:
        scopes = [s for s in REFERENCE_SCOPES if layer.name.startswith(s)]
        assert len(scopes) <= 1, (layer.name, scopes)
        if scopes:
            totals[scopes[0]] += trainable_count(layer.trainable_weights)
        else:
            assert not layer.weights, f"layer {layer.name} has weights outside the reference scopes"
    assert dict(totals) == REFERENCE_SCOPES


@pytest.mark.structure
def test_stage_shapes_at_224(default_with_aux):
    model = default_with_aux
    expected = {
        "stem_conv0_bn": (111, 111, 32),
        "cell_stem_0_cell_output": (56, 56, 192),
        "cell_stem_1_cell_output": (28, 28, 384),
        "cell_0_cell_output": (28, 28, 1024),
        "cell_1_cell_output": (28, 28, 1024),
        "reduction_cell_0_cell_output": (14, 14, 1536),
        "cell_2_cell_output": (14, 14, 2048),
        "cell_3_cell_output": (14, 14, 2048),
        "aux_3_avg_pool": (4, 4, 2048),
        "reduction_cell_1_cell_output": (7, 7, 3072),
        "cell_4_cell_output": (7, 7, 4096),
        "cell_5_cell_output": (7, 7, 4096),
    }
    for name, shape in expected.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1001), (None, 1001)]
    # the first stem cell sees the raw 32-channel stem output as state 1
    assert model.get_layer("cell_stem_0_comb_iter_1_right_pre_1x1").kernel.shape == (1, 1, 32, 16)
    assert model.get_layer("aux_3_proj").kernel.shape == (1, 1, 2048, 51)
    assert model.get_layer("aux_3_conv").kernel.shape == (4, 4, 51, 307)


@pytest.mark.structure
def test_reference_layer_settings(default_with_aux):
    model = default_with_aux
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and not any(layer.use_bias for layer in convs)
    init = convs[0].kernel_initializer.get_config()
    assert (init["scale"], init["mode"]) == (2.0, "fan_out")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {(layer.momentum, layer.epsilon) for layer in norms} == {(0.9, 1e-5)}
    assert model.get_layer("final_layer_dropout").rate == pytest.approx(0.5)
    assert not [layer for layer in model.layers if "drop_path" in layer.name]


@pytest.mark.structure
def test_same_average_pools_pad_evenly(default_with_aux):
    """Keras 3.15's torch backend averages repeated edge pixels where "same" pads more after than before
    (keras-team/keras#23233). AmoebaNet-D's "same" average pools all pad evenly (3x3, stride 1: the reduction
    cell's average pool reads a state of the cell, not a strided input), so every backend computes the
    reference's pooling."""
    pools = [
        layer
        for layer in default_with_aux.layers
        if isinstance(layer, keras.layers.AveragePooling2D) and layer.padding == "same"
    ]
    assert len(pools) == 10  # one per cell: 2 stem, 6 normal, 2 reduction
    for layer in pools:
        for size, window, stride in zip(layer.input.shape[1:3], layer.pool_size, layer.strides, strict=True):
            before, after = tf_same_padding(size, window, stride)
            assert before == after, (layer.name, size, window, stride)


def test_reduction_positions():
    assert reduction_indices(6) == [2, 4]
    assert reduction_indices(12) == [4, 8]
    assert reduction_indices(18) == [6, 12]


def test_tiny_common_checks(tmp_path):
    model = keras_zoo.get_model("amoebanet", preset="tiny")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    check_model(model, x, tmp_path, expected_output_shapes=[(2, 10)], fit=False)
    # one training step: eager on TensorFlow, where tracing the ~340-layer graph costs minutes on a shared
    # 2-core CI machine; compiled on JAX, where eager runs compile each small op of the gradient on its own
    # (43 s against 18 s here)
    eager = keras.config.backend() != "jax"
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=eager)
    history = model.fit(x, np.array([1, 3]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.structure
def test_tiny_aux_head_and_counts():
    model = amoebanet(
        input_shape=(96, 96, 3), classes=10, num_cells=3, filters=16, stem_filters=8, aux_head=True
    )
    no_aux = amoebanet(input_shape=(96, 96, 3), classes=10, num_cells=3, filters=16, stem_filters=8)
    aux = sum(
        trainable_count(layer.trainable_weights) for layer in model.layers if layer.name.startswith("aux_")
    )
    # aux head on cell_1 (6x6x128): proj 1x1 (128->51), BN, 1x1-map conv (51->307), BN, FC(307->10)
    assert aux == 128 * 51 + 2 * 51 + 51 * 307 + 2 * 307 + 307 * 10 + 10
    assert trainable_count(model.trainable_weights) == trainable_count(no_aux.trainable_weights) + aux
    assert trainable_count(no_aux.trainable_weights) == 98_399  # pinned: guards against structural drift
    logits, aux_logits = model(np.zeros((2, 96, 96, 3), "float32"), training=False)
    assert logits.shape == aux_logits.shape == (2, 10)


@pytest.mark.structure
def test_drop_path_layers_when_enabled():
    model = amoebanet(input_shape=(32, 32, 3), classes=5, num_cells=3, filters=8, drop_path_keep_prob=0.7)
    drop = [layer for layer in model.layers if layer.name.endswith("_drop_path")]
    # every operation except 'none' (two per cell): 8 in each of 2 stem + 2 reduction + 3 normal cells
    assert len(drop) == 7 * 8
    assert {layer.keep_prob for layer in drop} == {0.7}
    y = model(np.ones((2, 32, 32, 3), "float32"), training=True)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))


@pytest.mark.structure
def test_mixed_precision_logits_float32():
    x = np.zeros((1, 32, 32, 3), "float32")
    (y,) = mixed_precision_forward(amoebanet, x, input_shape=(32, 32, 3), classes=4, num_cells=3, filters=8)
    assert y.dtype == np.float32 and y.shape == (1, 4)


@pytest.mark.structure
def test_weight_decay_matches_slim_l2():
    model = amoebanet(input_shape=(32, 32, 3), classes=4, num_cells=3, filters=8, weight_decay=4e-5)
    model(np.zeros((1, 32, 32, 3), "float32"))
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    expected = 4e-5 * sum(float(np.sum(keras.ops.convert_to_numpy(k) ** 2)) for k in kernels) / 2
    assert float(sum(keras.ops.convert_to_numpy(v) for v in model.losses)) == pytest.approx(
        expected, rel=1e-4
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (None, None, 3)}, "input_shape"),
        ({"input_shape": (16, 16, 3)}, ">= 32"),
        ({"classes": 0}, "classes"),
        ({"filters": 12}, "multiple of 8"),
        ({"num_cells": 2}, "num_cells"),
        ({"drop_path_keep_prob": 0.0}, "drop_path_keep_prob"),
        ({"dropout_keep_prob": 1.5}, "dropout_keep_prob"),
        ({"input_shape": (32, 32, 3), "filters": 8, "aux_head": True}, "auxiliary head"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        amoebanet(**{"num_cells": 3, "filters": 8, **kwargs})

"""AmoebaNet-D cells (tensorflow/tpu ``models/official/amoeba_net``, spec 'amoeba_net_d').

A cell starts from two hidden states: state 0 is the current input after ReLU, 1x1 convolution to F and
batch norm; state 1 is the previous-previous output made to match (factorized reduction when its spatial
size differs, a 1x1 projection when only its channels differ, the current input itself when there is none).
Five combinations each apply an operation to two states and add the results, appending states 2..6. The
states no combination used are concatenated: states {0, 3, 4, 6} in a normal cell (4F channels) and
{4, 5, 6} in a reduction cell (3F). In a reduction cell, operations on states 0 and 1 have stride 2.

Layer names follow the reference variable scopes with ``/`` replaced by ``_``
(``cell_0_comb_iter_1_right_pre_1x1``), so every layer of a cell starts with the cell's scope.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from keras_zoo.layers.batch_norm import BatchNormalization
from keras_zoo.layers.drop_path import DropPath
from keras_zoo.layers.layout import AveragePooling2D, Conv2D
from keras_zoo.layers.max_pooling import MaxPooling2D

# (operation, state index) per combination: left then right, five combinations.
NORMAL_CELL = {
    "operations": [
        "1x1",
        "max_pool_3x3",
        "none",
        "1x7_7x1",
        "1x1",
        "1x7_7x1",
        "max_pool_3x3",
        "none",
        "avg_pool_3x3",
        "1x1",
    ],
    "hiddenstate_indices": [1, 1, 1, 0, 0, 0, 2, 2, 1, 5],
    "used_hiddenstates": [0, 1, 1, 0, 0, 1, 0],
}
REDUCTION_CELL = {
    "operations": [
        "max_pool_2x2",
        "max_pool_3x3",
        "none",
        "3x3",
        "1x7_7x1",
        "max_pool_3x3",
        "none",
        "max_pool_2x2",
        "avg_pool_3x3",
        "1x1",
    ],
    "hiddenstate_indices": [0, 0, 2, 1, 2, 2, 3, 1, 2, 3],
    "used_hiddenstates": [1, 1, 1, 1, 0, 0, 0],
}
OPERATIONS = ("none", "1x1", "3x3", "1x7_7x1", "max_pool_2x2", "max_pool_3x3", "avg_pool_3x3")


@dataclasses.dataclass(frozen=True)
class LayerSettings:
    """Settings shared by every convolution and batch norm (the reference's slim arg_scope).

    Attributes:
        bn_momentum: batch-norm moving-average decay (reference flag 0.9).
        bn_epsilon: batch-norm epsilon (reference flag 1e-5).
        weight_decay: slim L2 factor wd (loss wd * sum(w^2) / 2, i.e. Keras ``L2(wd / 2)``) on kernels.
        drop_path_keep_prob: target keep probability of drop-path; 1 builds no DropPath layers.
    """

    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    weight_decay: float = 0.0
    drop_path_keep_prob: float = 1.0

    def initializer(self) -> keras.initializers.Initializer:
        """contrib ``variance_scaling_initializer(mode='FAN_OUT')``: factor 2, truncated normal."""
        return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")

    def regularizer(self) -> keras.regularizers.Regularizer | None:
        return keras.regularizers.L2(self.weight_decay / 2) if self.weight_decay else None

    def conv(self, x, filters: int, kernel, name: str, strides=1, padding: str = "same"):
        """Bias-free convolution (all AmoebaNet convolutions are followed by batch norm)."""
        return Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            use_bias=False,
            kernel_initializer=self.initializer(),
            kernel_regularizer=self.regularizer(),
            name=name,
        )(x)

    def batch_norm(self, x, name: str):
        return BatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=name)(x)

    def relu(self, x, name: str):
        return layers.ReLU(name=name)(x)


def apply_factorized_reduction(x, filters: int, settings: LayerSettings, name: str):
    """Halves the spatial size without dropping pixels: two shifted stride-2 1x1 paths, concat, BN.

    Args:
        x: tensor (batch, H, W, C).
        filters: output channels (even); each path gives half.
        name: scope prefix.

    Returns:
        tensor (batch, ceil(H / 2), ceil(W / 2), filters).
    """
    if filters % 2:
        raise ValueError(f"factorized reduction needs an even number of filters, got {filters}")
    path1 = AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_path1_pool")(x)
    path1 = settings.conv(path1, filters // 2, 1, name=f"{name}_path1_conv")
    path2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_path2_pad")(x)
    path2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_path2_shift")(path2)
    path2 = AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_path2_pool")(path2)
    path2 = settings.conv(path2, filters // 2, 1, name=f"{name}_path2_conv")
    x = layers.Concatenate(axis=-1, name=f"{name}_path_concat")([path1, path2])
    return settings.batch_norm(x, name=f"{name}_final_path_bn")


def apply_operation(x, operation: str, filters: int, strides: int, settings: LayerSettings, name: str):
    """One AmoebaNet operation (ReLU-conv-BN ordering), followed by drop-path unless it is 'none'.

    Args:
        x: tensor (batch, H, W, C).
        operation: one of ``OPERATIONS``.
        filters: output channels F.
        strides: 1, or 2 for operations on the cell inputs of a reduction cell.
        name: scope prefix, e.g. ``"cell_0_comb_iter_0_left"``.

    Returns:
        tensor (batch, H / strides, W / strides, F).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown AmoebaNet operation {operation!r}; expected one of {OPERATIONS}")
    input_filters = x.shape[-1]
    if operation in ("none", "1x1"):
        if strides > 1 or operation == "1x1" or input_filters != filters:
            x = settings.relu(x, name=f"{name}_relu")
            x = settings.conv(x, filters, 1, strides=strides, name=f"{name}_1x1")
            x = settings.batch_norm(x, name=f"{name}_bn_1")
    elif "pool" in operation:
        pool_type, _, shape = operation.split("_")
        pool_class = MaxPooling2D if pool_type == "max" else AveragePooling2D
        size = int(shape.split("x")[0])
        x = pool_class(size, strides=strides, padding="same", name=f"{name}_{operation}")(x)
        if input_filters != filters:
            x = settings.conv(x, filters, 1, name=f"{name}_1x1")
            x = settings.batch_norm(x, name=f"{name}_bn_1")
    else:
        bottleneck = filters // 4
        x = settings.relu(x, name=f"{name}_relu")
        if bottleneck >= 1:
            x = settings.conv(x, bottleneck, 1, name=f"{name}_pre_1x1")
            x = settings.batch_norm(x, name=f"{name}_pre_bn")
            x = settings.relu(x, name=f"{name}_pre_relu")
        inner = bottleneck if bottleneck >= 1 else filters
        if operation == "3x3":
            x = settings.conv(x, inner, 3, strides=strides, name=f"{name}_3x3")
        else:
            x = settings.conv(x, inner, (1, 7), strides=(1, strides), name=f"{name}_1x7")
            x = settings.batch_norm(x, name=f"{name}_bn_1x7_7x1")
            x = settings.relu(x, name=f"{name}_relu_1x7_7x1")
            x = settings.conv(x, inner, (7, 1), strides=(strides, 1), name=f"{name}_7x1")
        x = settings.batch_norm(x, name=f"{name}_bn")
        if bottleneck >= 1:
            x = settings.relu(x, name=f"{name}_post_relu")
            x = settings.conv(x, filters, 1, name=f"{name}_post_1x1")
            x = settings.batch_norm(x, name=f"{name}_post_bn")
    if operation != "none" and settings.drop_path_keep_prob < 1.0:
        x = DropPath(settings.drop_path_keep_prob, name=f"{name}_drop_path")(x)
    return x


def reduce_prev_layer(prev, current, filters: int, settings: LayerSettings, name: str):
    """Makes the previous-previous state match the current input: same spatial size and F channels."""
    if prev is None:
        return current
    if prev.shape[1:3] != current.shape[1:3]:
        prev = settings.relu(prev, name=f"{name}_prev_relu")
        return apply_factorized_reduction(prev, filters, settings, name=name)
    if prev.shape[-1] != filters:
        prev = settings.relu(prev, name=f"{name}_prev_relu")
        prev = settings.conv(prev, filters, 1, name=f"{name}_prev_1x1")
        prev = settings.batch_norm(prev, name=f"{name}_prev_bn")
    return prev


def apply_cell(
    x,
    prev,
    spec: dict,
    filters: int,
    strides: int,
    settings: LayerSettings,
    name: str,
):
    """One AmoebaNet cell.

    Args:
        x: current input (batch, H, W, C).
        prev: previous-previous output (batch, H' , W', C') or None (the first stem cell).
        spec: ``NORMAL_CELL`` or ``REDUCTION_CELL``.
        filters: F, the channels of every operation.
        strides: 2 for reduction (and stem) cells, 1 for normal cells.
        name: scope, e.g. ``"cell_0"``, ``"reduction_cell_1"``, ``"cell_stem_0"``.

    Returns:
        tensor (batch, H / strides, W / strides, n * F) with n = number of unused states.
    """
    prev = reduce_prev_layer(prev, x, filters, settings, name=name)
    x = settings.relu(x, name=f"{name}_relu")
    x = settings.conv(x, filters, 1, name=f"{name}_1x1")
    states = [settings.batch_norm(x, name=f"{name}_beginning_bn"), prev]

    operations, indices = spec["operations"], spec["hiddenstate_indices"]
    for comb in range(5):
        prefix = f"{name}_comb_iter_{comb}"
        branches = []
        for side, i in (("left", 2 * comb), ("right", 2 * comb + 1)):
            state = indices[i]
            op_strides = strides if state < 2 else 1
            branches.append(
                apply_operation(
                    states[state], operations[i], filters, op_strides, settings, name=f"{prefix}_{side}"
                )
            )
        states.append(layers.Add(name=f"{prefix}_combine")(branches))

    # The reference would project an unused state whose shape differs from the last one; with the
    # AmoebaNet-D specs every unused state already has the final size and F channels.
    outputs = [state for state, used in zip(states, spec["used_hiddenstates"]) if not used]
    return layers.Concatenate(axis=-1, name=f"{name}_cell_output")(outputs)

"""AmoebaNet-D image classifier (tensorflow/tpu ``models/official/amoeba_net``, ImageNet layout).

The default configuration (224x224, 6 normal cells, reduction size 256, 1001 classes) has 46,099,177
trainable parameters, 46,763,161 with the auxiliary head, as the reference build. Layout:

- stem: 3x3 stride-2 VALID convolution to ``stem_filters`` + batch norm (no ReLU before it), then two
  stem cells built from the reduction-cell spec with stride 2 and F/4, F/2 filters. The first stem cell
  has no previous layer, so its state 1 is the raw stem output.
- ``num_cells`` normal cells; a reduction cell (filters x2) precedes cells ``int(num_cells / 3)`` and
  ``int(2 * num_cells / 3)``.
- optional auxiliary head on the ReLU of the last normal cell before the second reduction.
- final layer: ReLU, global average pooling, dropout, dense (with bias).

Convolutions have no bias and a fan-out variance-scaling initializer; batch norm uses the reference's flag
values (decay 0.9, epsilon 1e-5). The model returns **logits** in float32 (also under mixed precision):
train with a ``from_logits`` cross-entropy (``keras_zoo.losses.classification``), apply softmax for
probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers

from keras_zoo.layers.layout import AveragePooling2D
from keras_zoo.models.amoebanet_cells import NORMAL_CELL, REDUCTION_CELL, LayerSettings, apply_cell
from keras_zoo.registry import register_model
from keras_zoo.weights import load_weights

NUM_STEM_CELLS = 2
NUM_REDUCTION_LAYERS = 2
AUX_SCALING = 0.4


def reduction_indices(num_cells: int) -> list[int]:
    """Normal-cell indices preceded by a reduction cell: ``int(i / 3 * num_cells)`` for i = 1, 2."""
    return [int(i / (NUM_REDUCTION_LAYERS + 1) * num_cells) for i in range(1, NUM_REDUCTION_LAYERS + 1)]


def apply_aux_head(x, classes: int, settings: LayerSettings, name: str):
    """Auxiliary classifier: ReLU, 5x5/3 VALID avg pool, 1x1 conv 51, conv over the whole map to 307, FC.

    Args:
        x: normal-cell output (batch, H, W, C) with H, W >= 5.
        classes: output classes.
        name: scope, e.g. ``"aux_3"``.

    Returns:
        float32 logits (batch, classes).
    """
    x = settings.relu(x, name=f"{name}_relu")
    x = AveragePooling2D(5, strides=3, padding="valid", name=f"{name}_avg_pool")(x)
    x = settings.conv(x, int(128 * AUX_SCALING), 1, name=f"{name}_proj")
    x = settings.batch_norm(x, name=f"{name}_aux_bn0")
    x = settings.relu(x, name=f"{name}_aux_relu0")
    x = settings.conv(x, int(768 * AUX_SCALING), tuple(x.shape[1:3]), padding="valid", name=f"{name}_conv")
    x = settings.batch_norm(x, name=f"{name}_aux_bn1")
    x = settings.relu(x, name=f"{name}_aux_relu1")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(
        classes,
        kernel_initializer=settings.initializer(),
        kernel_regularizer=settings.regularizer(),
        name=f"{name}_fc",
    )(x)
    return layers.Activation("linear", dtype="float32", name="aux_logits")(x)


def _check_arguments(input_shape, classes, num_cells, filters, stem_filters, keep_probs) -> None:
    if len(input_shape) != 3 or any(s is None for s in input_shape):
        raise ValueError(
            f"amoebanet: input_shape must be a known (height, width, channels), got {input_shape}"
        )
    if min(input_shape[:2]) < 32:
        raise ValueError(f"amoebanet: input height and width must be >= 32, got {input_shape}")
    if classes < 1:
        raise ValueError(f"amoebanet: classes must be >= 1, got {classes}")
    if num_cells < NUM_REDUCTION_LAYERS + 1:
        raise ValueError(f"amoebanet: num_cells must be >= 3, got {num_cells}")
    if filters < 8 or filters % 8:
        raise ValueError(f"amoebanet: filters must be a positive multiple of 8, got {filters}")
    if stem_filters < 1:
        raise ValueError(f"amoebanet: stem_filters must be >= 1, got {stem_filters}")
    for label, value in keep_probs.items():
        if not 0.0 < value <= 1.0:
            raise ValueError(f"amoebanet: {label} must be in (0, 1], got {value}")


@register_model(
    "amoebanet",
    description="AmoebaNet-D (tensorflow/tpu amoeba_net) ImageNet classifier",
    presets={
        "tiny": {"input_shape": (32, 32, 3), "classes": 10, "num_cells": 3, "filters": 16, "stem_filters": 8}
    },
    reference_params=46_099_177,
)
def amoebanet(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 1001,
    num_cells: int = 6,
    filters: int = 256,
    stem_filters: int = 32,
    aux_head: bool = False,
    drop_path_keep_prob: float = 1.0,
    dropout_keep_prob: float = 0.5,
    weight_decay: float = 0.0,
    weights: str | os.PathLike | None = None,
    name: str = "amoebanet",
) -> keras.Model:
    """Builds AmoebaNet-D.

    Args:
        input_shape: (height, width, channels), known sizes >= 32; images scaled to [-1, 1].
        classes: 1001 keeps the reference's background class 0 (ImageNet labels 1..1000); 1000 also works.
        num_cells: normal cells in total (6 in the fast recipe, 12 and 18 in the paper's settings).
        filters: reduction size F of the first normal stage; stem cells use F/4 and F/2, the later stages
            2F and 4F. A multiple of 8 (factorized reductions split F/4 in two).
        stem_filters: filters of the stem convolution.
        aux_head: add the auxiliary classifier as a second output (the reference trains with it, weight
            0.4, and drops it for evaluation; its weights are named ``aux_*`` so a model without the head
            loads the trained weights by name).
        drop_path_keep_prob: target keep probability of drop-path after every operation except identity;
            1 (the reference flag default) builds no drop-path layers. The keep probability ramps from 1 to
            this value over training with :class:`keras_zoo.callbacks.drop_path.DropPathSchedule`.
        dropout_keep_prob: keep probability of the dropout before the final dense layer.
        weight_decay: slim L2 factor wd on every conv and dense kernel (adds wd * sum(w^2) / 2 to the
            loss); the reference trains with 4e-5. 0 adds no regularization losses.
        weights: optional weight file loaded after building (``.weights.h5``, ``.keras``, or legacy ``.h5``
            by layer name, see :func:`keras_zoo.weights.load_weights`).
        name: model name.

    Returns:
        ``keras.Model`` mapping (batch, H, W, 3) images to float32 logits (batch, classes); with
        ``aux_head`` the outputs are ``[logits, aux_logits]``.
    """
    input_shape = tuple(input_shape)
    _check_arguments(
        input_shape,
        classes,
        num_cells,
        filters,
        stem_filters,
        {"drop_path_keep_prob": drop_path_keep_prob, "dropout_keep_prob": dropout_keep_prob},
    )
    if weight_decay < 0:
        raise ValueError(f"amoebanet: weight_decay must be >= 0, got {weight_decay}")
    settings = LayerSettings(weight_decay=weight_decay, drop_path_keep_prob=drop_path_keep_prob)
    reductions = reduction_indices(num_cells)
    aux_cell = reductions[1] - 1

    inputs = keras.Input(shape=input_shape, name="image")
    x = settings.conv(inputs, stem_filters, 3, strides=2, padding="valid", name="stem_conv0")
    x = settings.batch_norm(x, name="stem_conv0_bn")

    cell_outputs = [None, x]
    for stem_cell in range(NUM_STEM_CELLS):
        scale = 2 ** (stem_cell - NUM_STEM_CELLS)
        x = apply_cell(
            x,
            cell_outputs[-2],
            REDUCTION_CELL,
            int(filters * scale),
            2,
            settings,
            name=f"cell_stem_{stem_cell}",
        )
        cell_outputs.append(x)

    scale = 1
    aux_logits = None
    for cell in range(num_cells):
        if cell in reductions:
            scale *= 2
            x = apply_cell(
                x,
                cell_outputs[-2],
                REDUCTION_CELL,
                filters * scale,
                2,
                settings,
                name=f"reduction_cell_{reductions.index(cell)}",
            )
            cell_outputs.append(x)
        x = apply_cell(x, cell_outputs[-2], NORMAL_CELL, filters * scale, 1, settings, name=f"cell_{cell}")
        if aux_head and cell == aux_cell:
            if min(x.shape[1:3]) < 5:
                raise ValueError(
                    f"amoebanet: the auxiliary head needs a feature map of at least 5x5 after cell {cell}, "
                    f"got {tuple(x.shape[1:3])} for input_shape {input_shape}; use a larger input"
                )
            aux_logits = apply_aux_head(x, classes, settings, name=f"aux_{cell}")
        cell_outputs.append(x)

    x = settings.relu(x, name="final_layer_relu")
    x = layers.GlobalAveragePooling2D(name="final_layer_global_pool")(x)
    if dropout_keep_prob < 1.0:
        x = layers.Dropout(1.0 - dropout_keep_prob, name="final_layer_dropout")(x)
    x = layers.Dense(
        classes,
        kernel_initializer=settings.initializer(),
        kernel_regularizer=settings.regularizer(),
        name="final_layer_fc",
    )(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    outputs = [logits, aux_logits] if aux_logits is not None else logits
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_weights(model, weights)
    return model

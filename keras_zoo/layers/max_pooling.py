"""Max pooling whose gradient XLA can fuse: the window maximum over shifted slices ("taps").

Keras lowers max pooling on JAX to ``reduce_window`` and its gradient to ``select_and_scatter``, which
XLA:GPU emits as a kernel of its own that adds every output gradient into the input gradient with an atomic
operation (a compare-and-swap loop for 16-bit types; openxla/xla#46225 reports the same loop for float32
scatters in jaxlib 0.10.2 and 0.11); nothing fuses into it. AmoebaNet-D has 28 max pools (U-Net 4, Models
Genesis 3). :func:`tap_max_pool` computes the same pooling from the ``prod(pool_size)`` strided slices of the
padded input (one per window position, "tap"): the forward pass is an elementwise maximum of the slices,
and the gradient goes, per output pixel, to the first tap in row-major window order that holds the
maximum, which is the element ``select_and_scatter`` picks (its ``>=`` selection keeps the first maximum).
The gradient is written as a surrogate that only uses elementwise ops, so it lowers to selects, pads and
adds, which XLA fuses into one loop per layer:

    y = stop_gradient(m) + sum_t where(first_t, x_t - stop_gradient(x_t), 0)

whose value is ``m`` (each term is 0) and whose derivative with respect to ``x_t`` is ``first_t``.

:class:`MaxPooling2D` and :class:`MaxPooling3D` subclass Keras' layers and only replace ``call``: the
configuration, output shapes and class names are the parent's (Keras 3 ``.weights.h5`` files key layers by
their snake-cased class name). They run :func:`tap_max_pool` where :func:`implementation` says so (JAX by
default) and the parent's ``keras.ops.max_pool`` otherwise.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import keras
from keras import ops

from keras_zoo.layers.layout import ViewPooling
from keras_zoo.layers.rewrites import chosen_implementation, same_padding

IMPLEMENTATION_VARIABLE = "KERAS_ZOO_MAX_POOLING"
IMPLEMENTATIONS = ("auto", "taps", "native")
# per backend under "auto"; other backends keep their own kernels (torch's and TensorFlow's max-pool
# gradients are not scatters that a compiler could fuse, and the rewrite was not measured faster there)
AUTO_IMPLEMENTATION = {"jax": "taps"}
_HALF_PRECISION = ("float16", "bfloat16")


def implementation() -> str:
    """The max-pooling implementation that ``$KERAS_ZOO_MAX_POOLING`` (default ``"auto"``) asks for here.

    ``taps``: :func:`tap_max_pool`; ``native``: Keras' ``ops.max_pool``; ``auto`` resolves to taps on JAX,
    native elsewhere. Read when a layer is called (traced), so it is meant for benchmarks comparing the two.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    return chosen_implementation(IMPLEMENTATION_VARIABLE, IMPLEMENTATIONS, AUTO_IMPLEMENTATION, "native")


def _as_tuple(name: str, values: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """``values`` as ``rank`` ints >= 1; raises ValueError naming ``name`` otherwise."""
    result = (int(values),) * rank if isinstance(values, int) else tuple(int(v) for v in values)
    if len(result) != rank or min(result) < 1:
        raise ValueError(f"{name} must be {rank} integers >= 1, got {values!r}")
    return result


def tap_max_pool(
    inputs,
    pool_size: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str = "valid",
):
    """Max pooling (channels last, any number of spatial axes) as the maximum of shifted strided slices.

    Args:
        inputs: float tensor (batch, *spatial, channels) with static spatial sizes.
        pool_size: window size per spatial axis (an int for all of them).
        strides: stride per spatial axis; ``None`` means ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (windows padded with -inf, the extra pixel after).

    Returns:
        Tensor (batch, *out, channels) of the inputs' dtype, equal to ``keras.ops.max_pool(inputs,
        pool_size, strides, padding)``: out = ceil(size / stride) for "same", ``(size - pool) // stride + 1``
        for "valid". Its gradient sends each output gradient to the first maximum of the window in
        row-major order, as ``select_and_scatter`` does; half-precision gradients are summed in float32
        (where windows overlap) and rounded once.

    Raises:
        ValueError: for a non-float input, a dynamic spatial size, a bad window, or a window larger than
            the (padded) input.
    """
    spatial = tuple(inputs.shape[1:-1])
    rank = len(spatial)
    if None in spatial:
        raise ValueError(f"needs static spatial sizes, got input shape {tuple(inputs.shape)}")
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if not _is_float(dtype):
        raise ValueError(f"needs a float input, got {dtype}")
    pool_size = _as_tuple("pool_size", pool_size, rank)
    strides = pool_size if strides is None else _as_tuple("strides", strides, rank)
    if padding == "same":
        pads = tuple(same_padding(n, k, s) for n, k, s in zip(spatial, pool_size, strides))
    elif padding == "valid":
        pads = ((0, 0),) * rank
    else:
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    out = tuple((n + sum(p) - k) // s + 1 for n, p, k, s in zip(spatial, pads, pool_size, strides))
    if min(out) < 1:
        raise ValueError(f"input {spatial} is smaller than the pooling window {pool_size}")

    accumulate = "float32" if dtype in _HALF_PRECISION else dtype
    x = ops.cast(inputs, accumulate)  # so that the slices' gradients are summed in float32
    if any(sum(p) for p in pads):
        x = ops.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-math.inf)
    taps = [
        x[(slice(None), *(slice(t, t + s * (o - 1) + 1, s) for t, s, o in zip(offset, strides, out)))]
        for offset in itertools.product(*(range(k) for k in pool_size))
    ]
    maximum = ops.stop_gradient(functools.reduce(ops.maximum, taps))
    outputs = maximum
    taken = None  # windows whose maximum an earlier tap already holds
    for tap in taps:
        holds = ops.equal(ops.stop_gradient(tap), maximum)
        first = holds if taken is None else ops.logical_and(holds, ops.logical_not(taken))
        taken = holds if taken is None else ops.logical_or(taken, holds)
        outputs = outputs + ops.where(first, tap - ops.stop_gradient(tap), ops.zeros_like(tap))
    return ops.cast(outputs, dtype)


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def _pools_by_taps(layer: keras.layers.Layer, inputs) -> bool:
    """Whether ``layer`` runs :func:`tap_max_pool` on ``inputs`` (else the parent's ``ops.max_pool``)."""
    return (
        implementation() == "taps"
        and layer.data_format == "channels_last"
        and None not in tuple(inputs.shape[1:-1])
        and _is_float(keras.backend.standardize_dtype(inputs.dtype))
    )


class _TapMaxPooling:
    """``call`` of the max-pooling layers below: :func:`tap_max_pool` where :func:`_pools_by_taps` says
    so, else Keras' pooling (channels_first, dynamic-size and integer inputs), on a channels-first view
    where :func:`keras_zoo.layers.layout.uses_view` (torch)."""

    def call(self, inputs):
        if not _pools_by_taps(self, inputs):
            return super().call(inputs)
        return tap_max_pool(inputs, self.pool_size, self.strides, self.padding)


@keras.saving.register_keras_serializable(package="keras_zoo")
class MaxPooling2D(_TapMaxPooling, ViewPooling, keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` computed by :func:`tap_max_pool` where :func:`implementation` says so.

    Takes exactly the arguments of ``keras.layers.MaxPooling2D``. ``channels_first``, dynamic-size and
    integer inputs run the parent's pooling.

    Call args:
        inputs: tensor (batch, height, width, channels).

    Returns:
        Tensor (batch, out_h, out_w, channels), as the parent layer.
    """


@keras.saving.register_keras_serializable(package="keras_zoo")
class MaxPooling3D(_TapMaxPooling, ViewPooling, keras.layers.MaxPooling3D):
    """``keras.layers.MaxPooling3D`` computed by :func:`tap_max_pool` where :func:`implementation` says so.

    Takes exactly the arguments of ``keras.layers.MaxPooling3D``. ``channels_first``, dynamic-size and
    integer inputs run the parent's pooling.

    Call args:
        inputs: tensor (batch, depth, height, width, channels).

    Returns:
        Tensor (batch, out_d, out_h, out_w, channels), as the parent layer.
    """

    def call(self, inputs):
        if (
            keras.backend.backend() == "tensorflow"
            and keras.backend.standardize_dtype(inputs.dtype) == "float16"
        ):
            # TensorFlow has no float16 MaxPool3D kernel (nor its gradient) on CPUs; a maximum is exact in float32
            return ops.cast(super().call(ops.cast(inputs, "float32")), "float16")
        return super().call(inputs)

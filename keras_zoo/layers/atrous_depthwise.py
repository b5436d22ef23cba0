"""Depthwise convolution computed in forms that XLA compiles and runs well.

XLA lowers a depthwise convolution to a grouped convolution, and its kernel gradient to a batch-grouped
convolution whose "window" is the whole feature map; dilated ones get ``rhs_dilate`` (XLA:GPU pads the
kernel out to its dilated extent before cuDNN sees it: 3x3 at rate 18 becomes 37x37), strided ones window
strides. XLA:CPU runs grouped convolutions slowly and XLA:GPU autotunes each of them against cuDNN's
algorithms (jax-ml/jax#26266, #13800). Three exact reformulations, chosen per backend (:func:`implementation`):

* **Taps** (JAX): the convolution as the sum over the kernel's taps of a shifted, strided, dilated slice
  of the (padded) input times that tap's weights. It lowers to slices, multiplies and adds, its gradients to
  pads and reductions; there is no convolution left, so nothing to autotune, and each layer fuses into one
  loop. Taps that only read padding are skipped.
* **Atrous** (dilation ``r > 1``; torch): space-to-batch, the transform of TensorFlow's
  ``tf.nn.with_space_to_batch``. The grid is padded at its end to a multiple of ``r`` and split into its
  ``r * r`` phase sub-grids ``x[i::r, j::r]``, stacked along the batch axis; a dilated kernel only ever
  combines pixels of one phase, so the convolution runs on the sub-grids with dilation 1, and the phases
  are interleaved back and cropped. For "same" padding and an odd kernel the sub-grids are convolved
  "same": the zeros past the ends of a sub-grid are exactly the zeros that "same" padding of the full grid
  (or the end padding) supplies; taps that reach past the whole grid (rate 18 on a 17x17 map) only read
  zeros and are dropped first. "valid" padding, and "same" with an even kernel (whose padding is split
  unevenly), pad the full grid explicitly and convolve "valid".
* **Strided** (stride ``s > 1``; on request): phase decomposition. Output pixel ``i`` reads input rows
  ``s * i + t``; grouping the taps ``t`` by ``t mod s`` gives one stride-1 "valid" convolution per phase
  sub-grid ``x[p::s, q::s]`` with the sub-kernel ``kernel[p::s, q::s]`` (2x2, 2x1, 1x2 and 1x1 for a 3x3
  kernel at stride 2), summed. It does the multiply-adds of the strided convolution, no more.

All give the parent's result up to float32 rounding (the "same"-padded space-to-batch forward pass is
bitwise equal on TensorFlow and JAX CPU; tests/layers/test_atrous_depthwise.py says where and why not).
:class:`DepthwiseConv2D` subclasses ``keras.layers.DepthwiseConv2D`` and only replaces its ``call``, so
weights, variable names and order, ``get_config`` and weight files are those of the parent. It keeps the
parent's class name on purpose: Keras 3 ``.weights.h5`` files key each layer by its snake-cased class name
and a counter (``layers/depthwise_conv2d_3/vars/0``), so any other name would stop files saved with
``keras.layers.DepthwiseConv2D`` from loading. It is registered as ``keras_zoo>DepthwiseConv2D``.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_zoo.layers import layout
from keras_zoo.layers.rewrites import chosen_implementation, same_padding

IMPLEMENTATION_VARIABLE = "KERAS_ZOO_DEPTHWISE"
IMPLEMENTATIONS = ("auto", "taps", "phases", "native")
# per backend under "auto"; any other backend (torch) gets "atrous": space-to-batch for the dilated form,
# its own op for the strided one, which measured faster on torch than the phase decomposition
AUTO_IMPLEMENTATION = {"jax": "taps", "tensorflow": "native"}


def implementation() -> str:
    """The depthwise implementation that ``$KERAS_ZOO_DEPTHWISE`` (default ``"auto"``) asks for here.

    ``taps``: :func:`tap_depthwise_conv` for every form; ``phases``: :func:`atrous_depthwise_conv` and
    :func:`strided_depthwise_conv` for the atrous and strided forms; ``native``: Keras' own convolution;
    ``atrous``: :func:`atrous_depthwise_conv` for the atrous form only. ``auto`` resolves to taps on JAX,
    native on TensorFlow, atrous elsewhere (torch). Read when a layer is called (traced), so it is meant for
    benchmarks comparing implementations, not for switching inside one model.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    return chosen_implementation(IMPLEMENTATION_VARIABLE, IMPLEMENTATIONS, AUTO_IMPLEMENTATION, "atrous")


def _drop_padding_taps(kernel, axis: int, size: int, rate: int):
    """Kernel and rate along ``axis`` without the taps that only read "same" padding (odd kernels).

    A tap ``t`` of a dilated kernel reads pixel ``i + (t - centre) * rate``; when ``|t - centre| * rate``
    is at least ``size`` that pixel is padding for every ``i``, so the tap only adds zeros. With no tap
    left but the centre, the axis needs no dilation at all (rate 1).
    """
    taps = int(kernel.shape[axis])
    live = _live_taps(taps, rate, 1, size, (taps - 1) // 2 * rate, size)  # symmetric about the centre
    if len(live) < taps:
        index = [slice(None)] * 4
        index[axis] = slice(live[0], live[-1] + 1)
        kernel = kernel[tuple(index)]
    return kernel, (rate if len(live) > 1 else 1)


def _live_taps(kernel: int, rate: int, stride: int, out: int, before: int, size: int) -> list[int]:
    """Taps of one axis that read at least one pixel: tap ``t`` reads rows ``s * i + t * r - before``."""
    live = []
    for tap in range(kernel):
        first = tap * rate - before
        if first + stride * (out - 1) >= 0 and first < size:
            live.append(tap)
    return live


def _output_size(size, kernel, strides, rates, padding=((0, 0), (0, 0))) -> tuple[int, int]:
    """(out_h, out_w) of a convolution of a (height, width) input padded by ``padding`` ((before, after)
    per axis); raises ValueError when the dilated kernel is larger than the padded input."""
    extent = tuple((k - 1) * r + 1 for k, r in zip(kernel, rates))
    out_h, out_w = ((n + sum(p) - e) // s + 1 for n, p, e, s in zip(size, padding, extent, strides))
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"input {size[0]}x{size[1]} is smaller than the dilated kernel {extent[0]}x{extent[1]}"
        )
    return out_h, out_w


def _checked_window(name: str, values, padding: str) -> tuple[int, int]:
    """``values`` (two ints >= 1) as a tuple; raises ValueError naming ``name`` or the padding otherwise."""
    first, second = (int(v) for v in values)
    if first < 1 or second < 1:
        raise ValueError(f"{name} must be >= 1, got {tuple(values)}")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    return first, second


def _spatial_size(inputs) -> tuple[int, int]:
    height, width = inputs.shape[1], inputs.shape[2]
    if height is None or width is None:
        raise ValueError(f"needs static spatial sizes, got input shape {tuple(inputs.shape)}")
    return int(height), int(width)


def atrous_depthwise_conv(inputs, kernel, dilation_rate: tuple[int, int], padding: str = "same"):
    """Stride-1 dilated depthwise convolution computed by space-to-batch (channels last).

    Args:
        inputs: tensor (batch, height, width, channels) with static height and width.
        kernel: depthwise kernel (kh, kw, channels, multiplier).
        dilation_rate: (rate_h, rate_w), each >= 1.
        padding: ``"same"`` or ``"valid"``.

    Returns:
        Tensor (batch, out_h, out_w, channels * multiplier), equal to
        ``keras.ops.depthwise_conv(inputs, kernel, 1, padding, dilation_rate=dilation_rate)``: out_h = height
        for "same", ``height - (kh - 1) * rate_h`` for "valid" (likewise for the width).
    """
    rate_h, rate_w = _checked_window("dilation_rate", dilation_rate, padding)
    kernel_h, kernel_w = int(kernel.shape[0]), int(kernel.shape[1])
    height, width = _spatial_size(inputs)
    x = inputs
    if padding == "same":
        out_h, out_w = height, width
        if kernel_h % 2 == 1 and kernel_w % 2 == 1:
            kernel, rate_h = _drop_padding_taps(kernel, 0, height, rate_h)
            kernel, rate_w = _drop_padding_taps(kernel, 1, width, rate_w)
            if rate_h == rate_w == 1:  # e.g. rate 18 on a 17x17 map: only the centre tap reads pixels
                return layout.depthwise_conv(x, kernel, strides=1, padding="same")
            conv_padding = "same"
        else:  # even kernels pad unevenly: pad the full grid explicitly, convolve "valid"
            pad_h = same_padding(height, kernel_h, 1, rate_h)
            pad_w = same_padding(width, kernel_w, 1, rate_w)
            x = ops.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
            height, width = height + sum(pad_h), width + sum(pad_w)
            conv_padding = "valid"
    else:
        out_h, out_w = _output_size((height, width), (kernel_h, kernel_w), (1, 1), (rate_h, rate_w))
        conv_padding = "valid"
    # pad the end of the grid to whole blocks of rate x rate; the phases are x[i::rate_h, j::rate_w]
    end_h, end_w = -height % rate_h, -width % rate_w
    if end_h or end_w:
        x = ops.pad(x, ((0, 0), (0, end_h), (0, end_w), (0, 0)))
    grid_h, grid_w = (height + end_h) // rate_h, (width + end_w) // rate_w
    channels = x.shape[-1]
    x = ops.reshape(x, (-1, grid_h, rate_h, grid_w, rate_w, channels))
    x = ops.transpose(x, (2, 4, 0, 1, 3, 5))  # (rate_h, rate_w, batch, grid_h, grid_w, channels)
    x = ops.reshape(x, (-1, grid_h, grid_w, channels))
    y = layout.depthwise_conv(x, kernel, strides=1, padding=conv_padding)
    y_h, y_w, y_channels = y.shape[1], y.shape[2], y.shape[3]
    y = ops.reshape(y, (rate_h, rate_w, -1, y_h, y_w, y_channels))
    y = ops.transpose(y, (2, 3, 0, 4, 1, 5))  # (batch, y_h, rate_h, y_w, rate_w, channels)
    y = ops.reshape(y, (-1, y_h * rate_h, y_w * rate_w, y_channels))
    if (y_h * rate_h, y_w * rate_w) != (out_h, out_w):
        y = y[:, :out_h, :out_w, :]
    return y


def strided_depthwise_conv(inputs, kernel, strides: tuple[int, int], padding: str = "valid"):
    """Undilated strided depthwise convolution as a sum of stride-1 convolutions of its phases.

    Args:
        inputs: tensor (batch, height, width, channels) with static height and width.
        kernel: depthwise kernel (kh, kw, channels, multiplier).
        strides: (stride_h, stride_w), each >= 1.
        padding: ``"same"`` or ``"valid"``.

    Returns:
        Tensor (batch, out_h, out_w, channels * multiplier), equal up to float32 rounding to
        ``keras.ops.depthwise_conv(inputs, kernel, strides, padding)``: out = ceil(height / stride_h) for
        "same", ``(height - kh) // stride_h + 1`` for "valid" (likewise for the width).
    """
    stride_h, stride_w = _checked_window("strides", strides, padding)
    kernel_h, kernel_w = int(kernel.shape[0]), int(kernel.shape[1])
    height, width = _spatial_size(inputs)
    x = inputs
    if padding == "same":
        pad_h = same_padding(height, kernel_h, stride_h, 1)
        pad_w = same_padding(width, kernel_w, stride_w, 1)
        if any(pad_h + pad_w):
            x = ops.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
        height, width = height + sum(pad_h), width + sum(pad_w)
    out_h, out_w = (height - kernel_h) // stride_h + 1, (width - kernel_w) // stride_w + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"input {height}x{width} is smaller than the kernel {kernel_h}x{kernel_w}")
    outputs = None
    # output (i, j) reads x[s*i + t, ...]; taps t = s*a + p read phase p at row i + a
    for p in range(min(stride_h, kernel_h)):
        for q in range(min(stride_w, kernel_w)):
            sub_kernel = kernel[p::stride_h, q::stride_w]
            sub_h, sub_w = int(sub_kernel.shape[0]), int(sub_kernel.shape[1])
            phase = x[:, p::stride_h, q::stride_w, :][:, : out_h + sub_h - 1, : out_w + sub_w - 1, :]
            y = layout.depthwise_conv(phase, sub_kernel, strides=1, padding="valid")
            outputs = y if outputs is None else outputs + y
    return outputs


def tap_depthwise_conv(inputs, kernel, strides=(1, 1), dilation_rate=(1, 1), padding: str = "same"):
    """Depthwise convolution as a sum of shifted (strided, dilated) slices times the kernel's taps.

    Lowers to slices, multiplies and adds, and its gradients to pads and reductions: no convolution, so
    nothing for a convolution autotuner to time, and XLA fuses each layer into one loop. Taps that only read
    padding are skipped. Half-precision inputs are summed in float32 and the result cast back.

    Args:
        inputs: tensor (batch, height, width, channels) with static height and width.
        kernel: depthwise kernel (kh, kw, channels, multiplier).
        strides: (stride_h, stride_w), each >= 1.
        dilation_rate: (rate_h, rate_w), each >= 1.
        padding: ``"same"`` or ``"valid"``.

    Returns:
        Tensor (batch, out_h, out_w, channels * multiplier), equal up to float32 rounding to
        ``keras.ops.depthwise_conv(inputs, kernel, strides, padding, dilation_rate=dilation_rate)``.
    """
    stride_h, stride_w = _checked_window("strides", strides, padding)
    rate_h, rate_w = _checked_window("dilation_rate", dilation_rate, padding)
    kernel_h, kernel_w, channels, multiplier = (int(d) for d in kernel.shape)
    height, width = _spatial_size(inputs)
    if padding == "same":
        pad_h = same_padding(height, kernel_h, stride_h, rate_h)
        pad_w = same_padding(width, kernel_w, stride_w, rate_w)
    else:
        pad_h = pad_w = (0, 0)
    out_h, out_w = _output_size(
        (height, width), (kernel_h, kernel_w), (stride_h, stride_w), (rate_h, rate_w), (pad_h, pad_w)
    )
    dtype = inputs.dtype
    accumulate = "float32" if dtype in ("float16", "bfloat16") else dtype
    x = ops.cast(inputs, accumulate)
    if any(pad_h + pad_w):
        x = ops.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    kernel = ops.cast(kernel, accumulate)
    outputs = None
    for a in _live_taps(kernel_h, rate_h, stride_h, out_h, pad_h[0], height):
        for b in _live_taps(kernel_w, rate_w, stride_w, out_w, pad_w[0], width):
            row, col = a * rate_h, b * rate_w
            patch = x[
                :,
                row : row + stride_h * (out_h - 1) + 1 : stride_h,
                col : col + stride_w * (out_w - 1) + 1 : stride_w,
                :,
            ]
            if multiplier == 1:
                term = patch * kernel[a, b, :, 0]
            else:  # output channel c * multiplier + k, as Keras orders them
                term = ops.reshape(patch[..., None] * kernel[a, b], (-1, out_h, out_w, channels * multiplier))
            outputs = term if outputs is None else outputs + term
    return ops.cast(outputs, dtype)


@keras.saving.register_keras_serializable(package="keras_zoo")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` computed as :func:`implementation` says for the backend.

    Takes exactly the arguments of ``keras.layers.DepthwiseConv2D`` and has the same weights (``kernel``
    (kh, kw, channels, multiplier), then ``bias``), so weight files of either layer load into the other.
    On JAX every form runs :func:`tap_depthwise_conv`. On torch, ``dilation_rate > 1`` (with stride 1) runs
    :func:`atrous_depthwise_conv` (:func:`strided_depthwise_conv` for ``strides > 1`` only when
    ``$KERAS_ZOO_DEPTHWISE=phases``). Everything else, all of TensorFlow, and every ``channels_first`` or
    dynamic-size input run ``keras.ops.depthwise_conv``: ``tf.nn.depthwise_conv2d`` already applies
    space-to-batch itself for dilation, and its native CPU kernels were faster than the rewrites. On torch
    every depthwise convolution left runs on a channels-first view (:mod:`keras_zoo.layers.layout`).

    Call args:
        inputs: tensor (batch, height, width, channels) (channels last).

    Returns:
        Tensor (batch, out_h, out_w, channels * depth_multiplier), as the parent layer.
    """

    def _rewrite(self, inputs) -> str | None:
        """``"taps"``, ``"atrous"``, ``"strided"`` or None (the parent's convolution) for ``inputs``."""
        choice = implementation()
        if self.data_format != "channels_last" or inputs.shape[1] is None or inputs.shape[2] is None:
            return None
        if choice in ("taps", "native"):
            return "taps" if choice == "taps" else None
        dilated = max(self.dilation_rate) > 1
        strided = max(self.strides) > 1
        if dilated and not strided:
            return "atrous"
        if strided and not dilated and choice == "phases":
            return "strided"
        return None

    def call(self, inputs):
        mode = self._rewrite(inputs)
        if mode is None and not layout.uses_view(self.data_format):
            return super().call(inputs)
        if mode is None:
            outputs = layout.depthwise_conv(
                inputs, self.kernel, self.strides, self.padding, self.dilation_rate
            )
        elif mode == "taps":
            outputs = tap_depthwise_conv(inputs, self.kernel, self.strides, self.dilation_rate, self.padding)
        elif mode == "atrous":
            outputs = atrous_depthwise_conv(inputs, self.kernel, self.dilation_rate, self.padding)
        else:
            outputs = strided_depthwise_conv(inputs, self.kernel, self.strides, self.padding)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, -1)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

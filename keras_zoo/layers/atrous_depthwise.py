"""Depthwise convolution whose atrous and strided forms lower to plain stride-1, undilated convolutions.

XLA lowers a dilated depthwise convolution to a grouped convolution with ``rhs_dilate`` (XLA:GPU pads the
kernel out to its dilated extent before cuDNN sees it: 3x3 at rate 18 becomes 37x37), and the kernel
gradients of dilated and strided depthwise convolutions to batch-grouped convolutions with window strides
or ``rhs_dilate``, which XLA:GPU and XLA:CPU handle slowly (jax-ml/jax#26266, #13800). Two mathematically
exact reformulations remove all of them:

* **Atrous** (dilation ``r > 1``): space-to-batch, the transform of TensorFlow's
  ``tf.nn.with_space_to_batch``. The grid is padded at its end to a multiple of ``r`` and split into its
  ``r * r`` phase sub-grids ``x[i::r, j::r]``, stacked along the batch axis; a dilated kernel only ever
  combines pixels of one phase, so the convolution runs on the sub-grids with dilation 1, and the phases
  are interleaved back and cropped. For "same" padding and an odd kernel the sub-grids are convolved
  "same": the zeros past the ends of a sub-grid are exactly the zeros that "same" padding of the full grid
  (or the end padding) supplies; taps that reach past the whole grid (rate 18 on a 17x17 map) only read
  zeros and are dropped first. "valid" padding, and "same" with an even kernel (whose padding is split
  unevenly), pad the full grid explicitly and convolve "valid".
* **Strided** (stride ``s > 1``): phase decomposition. Output pixel ``i`` reads input rows ``s * i + t``;
  grouping the taps ``t`` by ``t mod s`` gives one stride-1 "valid" convolution per phase sub-grid
  ``x[p::s, q::s]`` with the sub-kernel ``kernel[p::s, q::s]`` (2x2, 2x1, 1x2 and 1x1 for a 3x3 kernel at
  stride 2), summed. It does the multiply-adds of the strided convolution, no more.

Both give the parent's result up to float32 rounding (the "same"-padded space-to-batch forward pass is
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


def _same_padding(size: int, kernel: int, stride: int, rate: int) -> tuple[int, int]:
    """(before, after) padding of "same" (TF/XLA convention: the extra pixel goes after)."""
    effective = (kernel - 1) * rate + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _drop_padding_taps(kernel, axis: int, size: int, rate: int):
    """Kernel and rate along ``axis`` without the taps that only read "same" padding (odd kernels).

    A tap ``t`` of a dilated kernel reads pixel ``i + (t - centre) * rate``; when ``|t - centre| * rate``
    is at least ``size`` that pixel is padding for every ``i``, so the tap only adds zeros. With no tap
    left but the centre, the axis needs no dilation at all (rate 1).
    """
    centre = (int(kernel.shape[axis]) - 1) // 2
    reach = min(centre, (size - 1) // rate)
    if reach < centre:
        index = [slice(None)] * 4
        index[axis] = slice(centre - reach, centre + reach + 1)
        kernel = kernel[tuple(index)]
    return kernel, (rate if reach else 1)


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
                return ops.depthwise_conv(x, kernel, strides=1, padding="same", data_format="channels_last")
            conv_padding = "same"
        else:  # even kernels pad unevenly: pad the full grid explicitly, convolve "valid"
            pad_h = _same_padding(height, kernel_h, 1, rate_h)
            pad_w = _same_padding(width, kernel_w, 1, rate_w)
            x = ops.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
            height, width = height + sum(pad_h), width + sum(pad_w)
            conv_padding = "valid"
    else:
        out_h, out_w = height - (kernel_h - 1) * rate_h, width - (kernel_w - 1) * rate_w
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"input {height}x{width} is smaller than the dilated kernel "
                f"{(kernel_h - 1) * rate_h + 1}x{(kernel_w - 1) * rate_w + 1}"
            )
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
    y = ops.depthwise_conv(x, kernel, strides=1, padding=conv_padding, data_format="channels_last")
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
        pad_h = _same_padding(height, kernel_h, stride_h, 1)
        pad_w = _same_padding(width, kernel_w, stride_w, 1)
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
            y = ops.depthwise_conv(phase, sub_kernel, strides=1, padding="valid", data_format="channels_last")
            outputs = y if outputs is None else outputs + y
    return outputs


@keras.saving.register_keras_serializable(package="keras_zoo")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` that computes atrous and strided forms without dilated kernels.

    Takes exactly the arguments of ``keras.layers.DepthwiseConv2D`` and has the same weights (``kernel``
    (kh, kw, channels, multiplier), then ``bias``), so weight files of either layer load into the other.
    With ``dilation_rate > 1`` (and stride 1) the call runs :func:`atrous_depthwise_conv`; with
    ``strides > 1`` (and dilation 1) it runs :func:`strided_depthwise_conv`. Everything else (dilation 1 and
    stride 1, stride and dilation both > 1, ``channels_first``, dynamic spatial sizes) uses the parent's
    ``keras.ops.depthwise_conv``.

    Backend check: the rewrites run on JAX and PyTorch. On TensorFlow the parent's convolution is kept:
    ``tf.nn.depthwise_conv2d`` already applies space-to-batch itself for dilation, its native CPU kernels
    were faster than both rewrites, and its results are the same.

    Call args:
        inputs: tensor (batch, height, width, channels) (channels last).

    Returns:
        Tensor (batch, out_h, out_w, channels * depth_multiplier), as the parent layer.
    """

    def _rewrite(self, inputs) -> str | None:
        """``"atrous"``, ``"strided"`` or None (the parent's convolution) for ``inputs`` on this backend."""
        if keras.config.backend() == "tensorflow" or self.data_format != "channels_last":
            return None
        if inputs.shape[1] is None or inputs.shape[2] is None:
            return None
        dilated = max(self.dilation_rate) > 1
        strided = max(self.strides) > 1
        if dilated and not strided:
            return "atrous"
        if strided and not dilated:
            return "strided"
        return None

    def call(self, inputs):
        mode = self._rewrite(inputs)
        if mode is None:
            return super().call(inputs)
        if mode == "atrous":
            outputs = atrous_depthwise_conv(inputs, self.kernel, self.dilation_rate, self.padding)
        else:
            outputs = strided_depthwise_conv(inputs, self.kernel, self.strides, self.padding)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, -1)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

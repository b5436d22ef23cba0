"""Batch normalization whose training step runs the backend's fused kernel.

Keras 3 computes a batch norm in training as separate ops (mean, variance, normalise, each with its
gradient), and under a bfloat16 policy first casts the input to float32 and the output back. TensorFlow's
fused kernel (``FusedBatchNormV3``: oneDNN on CPUs, cuDNN on GPUs) and PyTorch's (``native_batch_norm``: one
ATen operator forward and one backward, on CPU, CUDA or an NPU through torch_npu) do the same in one pass
over the data per direction, reading bfloat16 directly (docs/benchmarks.md, "fused batch norm on
TensorFlow" and "on Keras' torch backend").

The implementation is chosen by ``$KERAS_ZOO_BATCH_NORM``: ``fused`` (the backend's kernel where it applies),
``keras`` (Keras' own), or ``auto`` (the default: ``fused`` on the TensorFlow and torch backends, ``keras``
on JAX, where XLA fuses Keras' ops itself).
"""

from __future__ import annotations

import keras

from keras_zoo.layers.rewrites import chosen_implementation

IMPLEMENTATION_VARIABLE = "KERAS_ZOO_BATCH_NORM"
IMPLEMENTATIONS = ("auto", "fused", "keras")
AUTO_IMPLEMENTATION = {"tensorflow": "fused", "torch": "fused"}  # JAX: XLA fuses Keras' ops
FUSED_BACKENDS = ("tensorflow", "torch")
FUSED_DTYPES = ("float32", "bfloat16", "float16")
# oneDNN's fused kernel in bfloat16 was slower than Keras' ops for channel counts that are not a multiple
# of 16 (12, 24, 40, 100, 728) and faster for multiples (docs/benchmarks.md, "2026-12-07, fused batch norm"),
# on an AMX Xeon and an AMD Zen 5 alike; at the other counts the float32 kernel on a float32 copy of the
# input (the copy Keras' ops make too) was faster than Keras' ops (docs/benchmarks.md, "batch norm at any
# channel count").
HALF_PRECISION_CHANNEL_MULTIPLE = 16
# torch's CPU kernel (channels-last) was slower than Keras' ops below 16 channels (2 to 12) in float32 and
# mostly in bfloat16, and faster from 16 up (docs/benchmarks.md, "fused batch norm on Keras' torch backend").
# On a GPU or NPU it is one kernel launch against Keras' dozens, at any channel count.
MIN_TORCH_CPU_CHANNELS = 16


def implementation() -> str:
    """The batch-norm implementation that ``$KERAS_ZOO_BATCH_NORM`` (default ``"auto"``) asks for here:
    ``fused`` or ``keras`` (``auto``: fused on TensorFlow and torch, keras on JAX). Read when a layer is
    called.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    return chosen_implementation(IMPLEMENTATION_VARIABLE, IMPLEMENTATIONS, AUTO_IMPLEMENTATION, "keras")


@keras.saving.register_keras_serializable(package="keras_zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with the backend's fused kernel in training.

    Same arguments, variables, names, config and results as the Keras layer: in training (``training=True``
    and a trainable layer) the output is normalised by the batch's mean and biased variance, and the moving
    statistics are updated with ``momentum`` as Keras does. The fused kernel runs on the TensorFlow and
    torch backends for inputs of rank >= 4 (batch, spatial..., channels) normalised over the last axis,
    without a mask, renormalisation or synchronisation, in float32, bfloat16 or float16; on TensorFlow, in
    bfloat16 or float16 with a channel count that is not a multiple of 16
    (:data:`HALF_PRECISION_CHANNEL_MULTIPLE`), the float32 kernel on a float32 copy of the input; on torch
    with at least 16 channels on a CPU (:data:`MIN_TORCH_CPU_CHANNELS`), any number on another device.
    Everything else (inference, JAX, other layouts) is the Keras layer's computation. On TensorFlow inputs
    of rank > 4 are viewed as (batch, dim 1, rest, channels); on torch the kernel reads a channels-first view
    of the input (torch's ``channels_last`` memory format), so nothing is copied.

    Under a mixed policy the kernel reads the bfloat16 or float16 input (or its float32 copy) and computes
    its statistics in float32, where the Keras layer casts the input to float32 first: outputs agree to the
    compute dtype's precision.
    """

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable and mask is None and self._fuses(inputs):
            return self._fused_training_call(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _fuses(self, inputs) -> bool:
        """Whether this training call runs the fused kernel: where it computes what the Keras layer does,
        and where it measured faster (the torch channel rule above)."""
        backend, rank = keras.config.backend(), len(inputs.shape)
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if not (
            backend in FUSED_BACKENDS
            and implementation() == "fused"
            and rank >= 4
            and self.axis in (-1, rank - 1)
            and not getattr(self, "renorm", False)  # an argument since Keras 3.14
            and not self.synchronized
            and dtype in FUSED_DTYPES
        ):
            return False
        if backend == "torch":
            return inputs.device.type != "cpu" or inputs.shape[-1] >= MIN_TORCH_CPU_CHANNELS
        return True

    def _fused_training_call(self, inputs):
        """Normalises ``inputs`` (batch, ..., channels) by its batch statistics and updates the moving ones.

        Returns:
            Tensor of the shape of ``inputs``, in the layer's compute dtype.
        """
        if keras.config.backend() == "torch":
            return self._torch_training_call(inputs)
        return self._tensorflow_training_call(inputs)

    def _tensorflow_training_call(self, inputs):
        """The training call with ``FusedBatchNormV3``; statistics in float32."""
        import tensorflow as tf  # the TensorFlow backend is running

        channels = inputs.shape[-1]
        shape = tf.shape(inputs)
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [shape[0], shape[1], -1, channels])
        if x.dtype != tf.float32 and channels % HALF_PRECISION_CHANNEL_MULTIPLE:
            x = tf.cast(x, tf.float32)  # the float32 kernel on a float32 copy, as Keras' ops make one
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        # the op itself: some TensorFlow versions' Python wrapper raises epsilon to 1.001e-5 (an old cuDNN
        # bound; cuDNN 7.4+ takes any epsilon)
        outputs, mean, corrected_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=gamma,
            offset=beta,
            mean=tf.zeros([0], tf.float32),
            variance=tf.zeros([0], tf.float32),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the Bessel-corrected variance; Keras averages the biased one.
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = corrected_variance * tf.maximum(count - 1.0, 0.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        outputs = tf.reshape(outputs, shape)
        outputs.set_shape(inputs.shape)
        return tf.cast(outputs, self.compute_dtype)

    def _torch_training_call(self, inputs):
        """The training call with ``torch.native_batch_norm`` on a channels-first view of ``inputs``;
        statistics in float32. Each moving statistic moves by one ``lerp`` (the same average as Keras'
        ``moving * momentum + batch * (1 - momentum)``, in two operators instead of four)."""
        import torch  # the torch backend is running

        gamma = self.gamma.value if self.scale else None
        beta = self.beta.value if self.center else None
        outputs, mean, inverse_std = torch.native_batch_norm(
            torch.movedim(inputs, -1, 1), gamma, beta, None, None, True, 0.0, self.epsilon
        )
        # The kernel keeps 1 / sqrt(variance + epsilon) of the biased batch variance.
        variance = torch.pow(inverse_std, -2.0) - self.epsilon
        weight = 1.0 - self.momentum
        self.moving_mean.assign(torch.lerp(self.moving_mean.value, mean, weight))
        self.moving_variance.assign(torch.lerp(self.moving_variance.value, variance, weight))
        return torch.movedim(outputs, 1, -1).to(getattr(torch, self.compute_dtype))

"""Data consistency (DC): put the measured k-space samples back into a reconstruction.

For an image estimate ``x`` with k-space ``k_hat = FFT(x)``, measured k-space ``k0`` and sampling mask
``m`` (1 where a sample was measured), the layer returns ``IFFT(k)`` with

    k = (1 - w*m) * k_hat + w*m*k0

- noise-free (``noise_lambda=None``): ``w = 1``, i.e. ``k = (1 - m) k_hat + m k0`` (the paper's DC);
- noisy, PyTorch reference form (``lambda_form="pytorch"``): ``w = lambda / (1 + lambda)``, i.e.
  ``k = (1 - m) k_hat + m (k_hat + lambda k0) / (1 + lambda)``: only sampled entries change. (The Theano
  reference applies ``(k_hat + lambda k0)/(1 + lambda)`` to every entry, also rescaling unsampled ones;
  that quirk is not reproduced.)
- Ascend-port form (``lambda_form="ascend"``): ``w = lambda / (0.5 + lambda)`` with a learned scalar
  ``lambda`` initialised to 0.5, as in the port's MoDL-style network. It equals the PyTorch form with
  ``lambda_pytorch = 2 lambda``; the port's unnormalised FFT cancels in FFT -> IFFT and does not matter.

FFTs are orthonormal and uncentred (see :mod:`keras_zoo.layers.fft`). The layer computes in float32 by
default, also under a mixed-precision policy, because FFTs in float16 are neither supported everywhere
nor accurate enough to restore the measurement.
"""

from __future__ import annotations

import keras

from keras_zoo.layers.fft import fft2_channels, ifft2_channels

LAMBDA_FORMS = ("pytorch", "ascend")


@keras.saving.register_keras_serializable(package="keras_zoo")
class DataConsistency(keras.layers.Layer):
    """Replaces (or blends) the sampled k-space entries of an image with the measurement.

    Args:
        noise_lambda: None for noise-free DC; otherwise the fixed value (or initial value, when
            ``trainable_lambda``) of lambda, >= 0.
        trainable_lambda: learn lambda as a scalar weight named ``"lambda"``.
        lambda_form: ``"pytorch"`` (w = lambda/(1+lambda)) or ``"ascend"`` (w = lambda/(0.5+lambda)).
        **kwargs: ``keras.layers.Layer`` arguments; ``dtype`` defaults to ``"float32"``.

    Call arguments:
        inputs: list ``[image, kspace, mask]``: ``image`` float (..., H, W, 2) current estimate (real, imag);
            ``kspace`` float (..., H, W, 2) measured uncentred k-space (entries outside the mask are ignored);
            ``mask`` float (..., H, W, 2) or (..., H, W, 1) with 1 at sampled entries (both channels equal).

    Returns:
        Float tensor (..., H, W, 2): the data-consistent image.
    """

    def __init__(
        self,
        noise_lambda: float | None = None,
        trainable_lambda: bool = False,
        lambda_form: str = "pytorch",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if noise_lambda is not None and noise_lambda < 0:
            raise ValueError(f"DataConsistency: noise_lambda must be >= 0 or None, got {noise_lambda}")
        if trainable_lambda and noise_lambda is None:
            raise ValueError("DataConsistency: trainable_lambda=True needs an initial noise_lambda, got None")
        if lambda_form not in LAMBDA_FORMS:
            raise ValueError(
                f"DataConsistency: lambda_form must be one of {LAMBDA_FORMS}, got {lambda_form!r}"
            )
        self.noise_lambda = None if noise_lambda is None else float(noise_lambda)
        self.trainable_lambda = bool(trainable_lambda)
        self.lambda_form = lambda_form

    def build(self, input_shape):
        if self.trainable_lambda:
            self.lambda_weight = self.add_weight(
                name="lambda",
                shape=(),
                initializer=keras.initializers.Constant(self.noise_lambda),
                trainable=True,
            )
        self.built = True

    def blend_weight(self):
        """The blending weight w applied at sampled entries (a float or a scalar tensor)."""
        if self.noise_lambda is None:
            return 1.0
        lam = self.lambda_weight if self.trainable_lambda else self.noise_lambda
        offset = 1.0 if self.lambda_form == "pytorch" else 0.5
        return lam / (offset + lam)

    def call(self, inputs):
        image, kspace, mask = inputs
        mask = mask[..., :1]
        k_hat = fft2_channels(image)
        k = k_hat + self.blend_weight() * mask * (kspace - k_hat)
        return ifft2_channels(k)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(
            noise_lambda=self.noise_lambda,
            trainable_lambda=self.trainable_lambda,
            lambda_form=self.lambda_form,
        )
        return config

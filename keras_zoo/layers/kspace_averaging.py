"""k-space averaging over neighbouring frames: the data-sharing layer of the dynamic CascadeNet.

For a dynamic sequence ``x`` (batch, frames, H, W, 2) with k-space ``k = FFT(x)`` per frame and mask
``m``, and for every frame distance ``d`` in ``frame_distances``, each frame ``t`` gets

    avg_d[t] = sum_{s=t-d..t+d} k[s] / max(c, sum_{s=t-d..t+d} m[s])     (frames wrap around: circular)
    out_d[t] = avg_d[t] * (1 - m[t]) + k[t] * m[t]                         (sampled entries are kept)

with ``c = 2d + 1`` when ``divide_by_n`` and ``c = 1`` otherwise. In the first cascade the input is the
zero-filled image, so the sum only holds sampled values and ``c = 1`` divides by the number of sampled
contributions; later cascades use ``divide_by_n=True`` (a plain average of the full k-space), as in the
reference (``AverageInKspaceLayer(frame_dist=range(5))``, circular, not clipped). The output stacks the
input and one image per distance along channels, in the reference order
``[re, im, re_d0, im_d0, re_d1, im_d1, ...]``: 2 * (1 + len(frame_distances)) channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_zoo.layers.fft import fft2_channels, ifft2_channels


@keras.saving.register_keras_serializable(package="keras_zoo")
class KSpaceAveraging(keras.layers.Layer):
    """Fills unsampled k-space of each frame with the average over neighbouring frames.

    Args:
        frame_distances: distances ``d`` >= 0 of the averaging windows ``t-d..t+d`` (reference: 0..4).
        divide_by_n: divide by the window length ``2d+1`` (at least) instead of by the sampled count.
        include_input: put the input image first in the output (the Theano reference does; the PyTorch
            ``DnCn3DDS`` does not).
        **kwargs: ``keras.layers.Layer`` arguments; ``dtype`` defaults to ``"float32"``.

    Call arguments:
        inputs: list ``[image, mask]``: ``image`` float (batch, frames, H, W, 2) (real, imag); ``mask`` float
            (batch, frames, H, W, 2) or (..., 1), 1 at sampled entries.

    Returns:
        Float tensor (batch, frames, H, W, 2 * (len(frame_distances) + include_input)).
    """

    def __init__(
        self,
        frame_distances: Sequence[int] = (0, 1, 2, 3, 4),
        divide_by_n: bool = False,
        include_input: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        frame_distances = [int(d) for d in frame_distances]
        if not frame_distances or min(frame_distances) < 0:
            raise ValueError(
                f"KSpaceAveraging: frame_distances must be non-empty and >= 0, got {frame_distances}"
            )
        self.frame_distances = frame_distances
        self.divide_by_n = bool(divide_by_n)
        self.include_input = bool(include_input)

    def call(self, inputs):
        image, mask = inputs
        mask = mask[..., :1]
        kspace = fft2_channels(image)
        # Window sums for every distance up to the largest one, grown one ring at a time.
        k_sum, m_sum = kspace, mask
        window_sums = {0: (k_sum, m_sum)}
        for d in range(1, max(self.frame_distances) + 1):
            k_sum = k_sum + ops.roll(kspace, d, axis=1) + ops.roll(kspace, -d, axis=1)
            m_sum = m_sum + ops.roll(mask, d, axis=1) + ops.roll(mask, -d, axis=1)
            window_sums[d] = (k_sum, m_sum)
        outputs = [image] if self.include_input else []
        for d in self.frame_distances:
            k_sum, m_sum = window_sums[d]
            count = float(2 * d + 1) if self.divide_by_n else 1.0
            average = k_sum / ops.maximum(m_sum, count)
            outputs.append(ifft2_channels(average * (1.0 - mask) + kspace * mask))
        return ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0])
        copies = len(self.frame_distances) + int(self.include_input)
        return shape[:-1] + (2 * copies,)

    def get_config(self):
        config = super().get_config()
        config.update(
            frame_distances=list(self.frame_distances),
            divide_by_n=self.divide_by_n,
            include_input=self.include_input,
        )
        return config

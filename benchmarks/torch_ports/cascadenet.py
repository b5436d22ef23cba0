"""PyTorch port of keras_zoo's CascadeNet (Deep Cascade of CNNs for MR reconstruction): measuring equipment.

This file is a layer-for-layer torch.nn version of :func:`keras_zoo.models.cascadenet.cascadenet`, written
to compare keras_zoo's training throughput with PyTorch's on the same machine (see ``harness.py``). It is
not part of the installed package and is not meant for training real models.

What it builds, as the Keras factory does:

- 2D (default, the paper's D5-C5): 5 cascades, each ``n_convs - 1`` 3x3 conv + ReLU layers with
  ``filters`` channels and bias, a linear 3x3 conv back to 2 channels (real, imag), a residual add of the
  cascade's input and data consistency (DC). 565,770 parameters.
- dynamic (``dynamic=True``): the same with 3x3x3 convolutions over (frames, H, W); with
  ``data_sharing=True`` each cascade's CNN sees the k-space averages over neighbouring frames (12
  channels), the paper's D5-C10(S), 3,562,260 parameters.
- the Ascend port's MoDL-like variant (``--variant ascend``, keras_zoo's preset "ascend"): 11 convs without
  bias, each followed by batch norm (ReLU after all but the last), one conv stack and one DC layer (with a
  learned lambda, ``w = lambda / (0.5 + lambda)``) shared by all cascades. 336,649 parameters counted as
  Keras ``count_params()`` does: the shared layers once, batch-norm moving statistics included.

Layout is channels-first: 2D tensors are (batch, 2, H, W), dynamic ones (batch, 2, frames, H, W), channel 0
real and channel 1 imaginary (Keras: (batch, H, W, 2) and (batch, frames, H, W, 2)). The model takes
``(image, kspace, mask)``: the zero-filled image, the measured uncentred k-space and the sampling mask
(both channels equal; only channel 0 is read). FFTs are orthonormal and uncentred (``norm="ortho"``, no
``fftshift``), as in :mod:`keras_zoo.layers.fft`. DC and k-space averaging compute in float32 with autocast
off, as the Keras layers (dtype float32) do under mixed precision.

Under ``torch.compile`` (``--compile``, see ``harness.py``) the complex-valued parts are a problem: inductor
generates no code for complex tensors (it falls back to eager ATen kernels op by op, and fails outright
on the dynamic model's ``torch.roll`` of a complex tensor with torch 2.13), and a graph break inside the
cascade loop makes dynamo skip the whole ``forward``, leaving nothing compiled. So ``--compile-scope cnn``
(the default) compiles each cascade's CNN on its own (:meth:`CascadeNet.compile_cnns`) and runs residual
adds, DC and k-space averaging eagerly; ``--compile-scope model`` compiles the whole model in one graph
with the complex ops left to inductor's fallback (2D only in practice).

Timing (``main()``) feeds every input, the mask included, uniform [0, 1) float32 noise, as ``keras-zoo
benchmark`` does: a non-binary mask costs the same arithmetic as a binary one, so the step time is
representative even though the inputs are not a real undersampled scan.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from keras_weights import assign_, copy_layer_weights, copy_weights_by_name, init_keras_  # noqa: E402

# keras_zoo.models.cascadenet.ASCEND_VARIANT (the Ascend port's MoDL-like network), copied so that this
# file needs no Keras.
ASCEND_VARIANT = {
    "n_convs": 11,
    "batch_norm": True,
    "shared_weights": True,
    "noise_lambda": 0.5,
    "trainable_lambda": True,
    "lambda_form": "ascend",
    "kernel_initializer": "glorot_uniform",
}

# The paper's data-sharing windows t-d..t+d, d = 0..4 (keras_zoo.models.cascadenet.DATA_SHARING_DISTANCES).
DATA_SHARING_DISTANCES = (0, 1, 2, 3, 4)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
}

# Keras BatchNormalization(momentum=0.99, epsilon=1e-3): torch's momentum is 1 - Keras's.
BN_MOMENTUM = 0.01
BN_EPSILON = 1e-3


# ----------------------------------------------------------------------------------------------------------
# FFT helpers on 2-channel (real, imag) channels-first tensors
# ----------------------------------------------------------------------------------------------------------


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """(batch, 2, *spatial) float -> (batch, *spatial) complex64, channel 0 real, channel 1 imaginary."""
    return torch.complex(x[:, 0].float(), x[:, 1].float())


def to_channels(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(batch, *spatial) complex -> (batch, 2, *spatial) float32 in ``like``'s memory format."""
    out = torch.stack([z.real, z.imag], dim=1)
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    elif (
        like.dim() == 5
        and not like.is_contiguous()
        and like.is_contiguous(memory_format=torch.channels_last_3d)
    ):
        out = out.contiguous(memory_format=torch.channels_last_3d)
    return out


def fft2(z: torch.Tensor) -> torch.Tensor:
    """Orthonormal, uncentred 2D FFT over the last two axes (H, W) (keras_zoo.layers.fft.fft2_channels)."""
    return torch.fft.fft2(z, norm="ortho")


def ifft2(k: torch.Tensor) -> torch.Tensor:
    """Orthonormal, uncentred inverse 2D FFT over the last two axes (keras_zoo.layers.fft.ifft2_channels)."""
    return torch.fft.ifft2(k, norm="ortho")


# ----------------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------------


class DataConsistency(nn.Module):
    """keras_zoo.layers.DataConsistency: ``IFFT(k_hat + w * m * (k0 - k_hat))`` with ``k_hat = FFT(image)``.

    ``w`` is 1 (``noise_lambda=None``), ``lambda / (1 + lambda)`` (``lambda_form="pytorch"``) or
    ``lambda / (0.5 + lambda)`` (``"ascend"``); with ``trainable_lambda`` lambda is a learned scalar
    parameter ``lambda_weight`` (Keras weight ``"lambda"``).
    """

    def __init__(
        self, noise_lambda: float | None = None, trainable_lambda: bool = False, lambda_form: str = "pytorch"
    ):
        super().__init__()
        if trainable_lambda and noise_lambda is None:
            raise ValueError("DataConsistency: trainable_lambda=True needs an initial noise_lambda")
        if lambda_form not in ("pytorch", "ascend"):
            raise ValueError(f"DataConsistency: unknown lambda_form {lambda_form!r}")
        self.noise_lambda = noise_lambda
        self.offset = 1.0 if lambda_form == "pytorch" else 0.5
        self.lambda_weight = nn.Parameter(torch.tensor(float(noise_lambda))) if trainable_lambda else None

    def blend_weight(self) -> float | torch.Tensor:
        """The weight w applied at sampled entries (a float, or a scalar tensor when lambda is learned)."""
        if self.noise_lambda is None:
            return 1.0
        lam = self.lambda_weight if self.lambda_weight is not None else self.noise_lambda
        return lam / (self.offset + lam)

    def forward(self, image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image, kspace, mask: (batch, 2, [frames,] H, W) -> (batch, 2, [frames,] H, W) float32."""
        with torch.autocast(image.device.type, enabled=False):
            k_hat = fft2(to_complex(image))
            k0 = to_complex(kspace)
            m = mask[:, 0].float()
            k = k_hat + self.blend_weight() * m * (k0 - k_hat)
            return to_channels(ifft2(k), image)


class KSpaceAveraging(nn.Module):
    """keras_zoo.layers.KSpaceAveraging: data sharing over neighbouring frames (dynamic models).

    For each distance d, unsampled k-space of frame t is filled with ``sum_{t-d..t+d} k / max(c, sum m)``
    (circular over frames, ``c = 2d + 1`` when ``divide_by_n`` else 1); sampled entries keep ``k[t]``.
    Output channels: ``[re, im, re_d0, im_d0, re_d1, im_d1, ...]`` (input first).
    """

    def __init__(self, frame_distances: Sequence[int] = DATA_SHARING_DISTANCES, divide_by_n: bool = False):
        super().__init__()
        self.frame_distances = [int(d) for d in frame_distances]
        self.divide_by_n = bool(divide_by_n)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image, mask: (batch, 2, frames, H, W) -> (batch, 2 * (1 + len(distances)), frames, H, W)."""
        with torch.autocast(image.device.type, enabled=False):
            kspace = fft2(to_complex(image))  # (batch, frames, H, W)
            m = mask[:, 0].float()
            k_sum, m_sum = kspace, m
            window_sums = {0: (k_sum, m_sum)}
            for d in range(1, max(self.frame_distances) + 1):
                k_sum = k_sum + torch.roll(kspace, d, dims=1) + torch.roll(kspace, -d, dims=1)
                m_sum = m_sum + torch.roll(m, d, dims=1) + torch.roll(m, -d, dims=1)
                window_sums[d] = (k_sum, m_sum)
            outputs = [image.float()]
            for d in self.frame_distances:
                k_sum, m_sum = window_sums[d]
                count = float(2 * d + 1) if self.divide_by_n else 1.0
                average = k_sum / torch.clamp(m_sum, min=count)
                outputs.append(to_channels(ifft2(average * (1.0 - m) + kspace * m), image))
            return torch.cat(outputs, dim=1)


def make_denoiser(
    dims: int,
    in_channels: int,
    n_convs: int,
    filters: int,
    activation: str,
    batch_norm: bool,
    kernel_initializer: str,
    name: str,
) -> nn.Sequential:
    """One cascade's CNN (make_denoiser_layers in Keras), children named after the Keras layers.

    Without batch norm: ``n_convs - 1`` convs with bias + activation (``{name}_conv{i}``, ``{name}_relu{i}``),
    then the linear ``{name}_conv_aggr`` to 2 channels. With batch norm: every conv has no bias and is
    followed by ``{name}_bn{i}``, and all but the last by ``{name}_act{i}``.
    (batch, in_channels, [frames,] H, W) -> (batch, 2, [frames,] H, W).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"cascadenet port: unsupported activation {activation!r}")
    conv_cls = nn.Conv2d if dims == 2 else nn.Conv3d
    bn_cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    children: list[tuple[str, nn.Module]] = []
    channels = in_channels
    for i in range(1, n_convs + 1):
        last = i == n_convs
        out_channels = 2 if last else filters
        conv_name = f"{name}_conv_aggr" if last and not batch_norm else f"{name}_conv{i}"
        conv = conv_cls(channels, out_channels, 3, padding=1, bias=not batch_norm)
        # Keras initialisers: he_normal (truncated normal, std sqrt(2 / fan_in) / 0.8796) or glorot_uniform
        init_keras_(conv, kernel_initializer, port="cascadenet port")
        children.append((conv_name, conv))
        if batch_norm:
            children.append((f"{name}_bn{i}", bn_cls(out_channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)))
            if not last:
                children.append((f"{name}_act{i}", ACTIVATIONS[activation]()))
        elif not last:
            children.append((f"{name}_relu{i}", ACTIVATIONS[activation]()))
        channels = out_channels
    return nn.Sequential(OrderedDict(children))


class CascadeNet(nn.Module):
    """The cascades: ``x = DC(x + CNN(features(x)), kspace, mask)`` n_cascades times, x0 = image.

    ``features`` is x itself, or for data sharing the k-space averages (``cascade{c}_kavg``). With
    ``shared_weights`` one denoiser (``shared``) and one DC (``dc``) serve all cascades.
    """

    def __init__(
        self,
        input_shape: Sequence[int | None] = (256, 256, 2),
        n_cascades: int = 5,
        n_convs: int = 5,
        filters: int = 64,
        activation: str = "relu",
        dynamic: bool = False,
        frames: int | None = None,
        data_sharing: bool = False,
        noise_lambda: float | None = None,
        batch_norm: bool = False,
        shared_weights: bool = False,
        trainable_lambda: bool = False,
        lambda_form: str = "pytorch",
        kernel_initializer: str = "he_normal",
    ):
        super().__init__()
        self.keras_input_shape = resolve_input_shape(input_shape, dynamic, frames)
        if n_cascades < 1 or filters < 1 or n_convs < 2:
            raise ValueError("cascadenet port: needs n_cascades >= 1, filters >= 1, n_convs >= 2")
        if data_sharing and not dynamic:
            raise ValueError("cascadenet port: data_sharing=True needs dynamic=True")
        self.n_cascades = n_cascades
        self.shared_weights = shared_weights
        dims = 3 if dynamic else 2
        in_channels = 2 * (1 + len(DATA_SHARING_DISTANCES)) if data_sharing else 2

        def denoiser(name: str) -> nn.Sequential:
            return make_denoiser(
                dims, in_channels, n_convs, filters, activation, batch_norm, kernel_initializer, name
            )

        def dc() -> DataConsistency:
            return DataConsistency(noise_lambda, trainable_lambda, lambda_form)

        names = [f"cascade{c}" for c in range(1, n_cascades + 1)]
        if shared_weights:
            self.shared = denoiser("shared")
            self.dc = dc()
        else:
            self.denoisers = nn.ModuleDict({name: denoiser(name) for name in names})
            self.dcs = nn.ModuleDict({f"{name}_dc": dc() for name in names})
        self.kavgs = (
            nn.ModuleDict(
                {
                    f"{name}_kavg": KSpaceAveraging(DATA_SHARING_DISTANCES, divide_by_n=c > 1)
                    for c, name in enumerate(names, start=1)
                }
            )
            if data_sharing
            else None
        )
        # compile_cnns(): denoiser key ("shared" or "cascade{c}") -> its compiled version; a plain dict, so
        # neither parameters nor state_dict see the compiled wrappers
        self.compiled_cnns: dict[str, Callable] = {}

    def denoiser_modules(self) -> dict[str, nn.Sequential]:
        """Every distinct cascade CNN by key: ``{"shared": ...}`` or ``{"cascade1": ..., ...}``."""
        return {"shared": self.shared} if self.shared_weights else dict(self.denoisers.items())

    def compile_cnns(self, compile: Callable[[nn.Module], Callable]) -> CascadeNet:
        """Makes ``forward`` call ``compile(cnn)`` for each cascade CNN, the complex-valued DC staying eager.

        ``compile`` is e.g. ``torch.compile`` with its options. Dynamo compiles each distinct CNN once per
        input ``requires_grad`` state (the first cascade's input is the data, which needs no gradient), all
        through ``nn.Sequential.forward``; the recompile limit is raised to cover that (10 cascades of the
        dynamic model would pass the default 8 and leave the last ones eager). Returns ``self``.
        """
        cnns = self.denoiser_modules()
        config = torch._dynamo.config
        limit_name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, limit_name, max(getattr(config, limit_name), 2 * len(cnns) + 2))
        self.compiled_cnns = {key: compile(cnn) for key, cnn in cnns.items()}
        return self

    def input_shapes(self) -> list[tuple[int, ...]]:
        """Channels-first shapes (without batch) of image, kspace and mask: (2, [frames,] H, W)."""
        shape = self.keras_input_shape
        if any(s is None for s in shape):
            raise ValueError(f"cascadenet port: input_shape {shape} has None sizes; give fixed ones")
        channels_first = (shape[-1], *shape[:-1])
        return [channels_first] * 3

    def forward(self, image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (zero-filled), kspace, mask: (batch, 2, [frames,] H, W) -> reconstruction, same shape."""
        x = image
        for c in range(1, self.n_cascades + 1):
            prefix = f"cascade{c}"
            features = x if self.kavgs is None else self.kavgs[f"{prefix}_kavg"](x, mask)
            if self.shared_weights:
                key, denoiser, dc = "shared", self.shared, self.dc
            else:
                key, denoiser, dc = prefix, self.denoisers[prefix], self.dcs[f"{prefix}_dc"]
            if key in self.compiled_cnns:
                denoiser = self.compiled_cnns[key]
            x = x + denoiser(features)  # cascade{c}_residual
            x = dc(x, kspace, mask)
        return x


def resolve_input_shape(input_shape: Sequence[int | None], dynamic: bool, frames: int | None) -> tuple:
    """As Keras: (H, W, 2) for 2D, (frames, H, W, 2) for dynamic (``frames`` fills a 3-long shape)."""
    shape = tuple(input_shape)
    if shape[-1:] != (2,):
        raise ValueError(f"cascadenet port: input_shape must end with 2 channels, got {shape}")
    if not dynamic:
        if len(shape) != 3:
            raise ValueError(f"cascadenet port: 2D input_shape must be (H, W, 2), got {shape}")
        return shape
    if len(shape) == 3:
        return (frames, *shape)
    if len(shape) != 4:
        raise ValueError(f"cascadenet port: dynamic input_shape must be (frames, H, W, 2), got {shape}")
    return shape


def build(**config) -> CascadeNet:
    """Builds the port; keyword arguments as ``keras_zoo.models.cascadenet.cascadenet`` (architecture ones).

    ``input_shape`` is given in the Keras (channels-last) form, e.g. (256, 256, 2); defaults are the Keras
    "default" preset (2D D5-C5, 256x256). ``weights``, ``flip_kernels`` and ``name`` are not supported.
    """
    return CascadeNet(**config)


# ----------------------------------------------------------------------------------------------------------
# Keras weights -> port
# ----------------------------------------------------------------------------------------------------------


def copy_keras_weights(keras_model, torch_model: CascadeNet) -> None:
    """Copies a Keras CascadeNet's weights into a port of the same configuration (by Keras layer name).

    Conv kernels go from Keras (k, k, [k,] in, out) to torch (out, in, k, k, [k]); batch norm
    gamma/beta/moving mean/variance to weight/bias/running_mean/running_var (``keras_weights``); the DC
    ``lambda`` to ``lambda_weight``. Shared modules are visited (and copied) once.

    Raises:
        ValueError: when a Keras layer with weights has no counterpart in the port (or the other way
            round), or shapes differ.
    """
    modules = {
        name.rsplit(".", 1)[-1]: module
        for name, module in torch_model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.BatchNorm2d, nn.BatchNorm3d))
        or (isinstance(module, DataConsistency) and module.lambda_weight is not None)
    }

    def copy(layer, module: nn.Module, port: str, check_constants: bool) -> None:
        if isinstance(module, DataConsistency):
            (lam,) = layer.get_weights()
            assign_(layer.name, [module.lambda_weight], [np.asarray(lam, dtype=np.float32).reshape(())], port)
        else:
            copy_layer_weights(layer, module, port, check_constants)

    copy_weights_by_name(keras_model, modules, port="cascadenet port", copy=copy)


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Times training steps of the port and prints one JSON line (see harness.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_timing_arguments(parser)
    parser.add_argument(
        "--variant",
        default="default",
        choices=("default", "ascend"),
        help="ascend: keras_zoo's preset 'ascend' (shared BN conv stack, learned lambda)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="image size; default 256 256 (2D), 256 32 (--dynamic, keras_zoo's preset)",
    )
    parser.add_argument("--n-cascades", type=int, default=None, help="default 5 (10 with --dynamic)")
    parser.add_argument("--n-convs", type=int, default=None, help="default 5 (11 for --variant ascend)")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--dynamic", action="store_true", help="3D convs over (frames, H, W)")
    parser.add_argument("--frames", type=int, default=30, help="frames of a dynamic sequence")
    parser.add_argument("--no-data-sharing", action="store_true", help="dynamic without k-space averaging")
    parser.add_argument(
        "--compile-scope",
        default="cnn",
        choices=("cnn", "model"),
        help="with --compile: cnn compiles each cascade's CNN, DC and FFTs eager; model "
        "compiles the whole model, complex ops falling back to eager kernels (2D only)",
    )
    args = harness.parse_args(parser, argv)

    config: dict = dict(ASCEND_VARIANT) if args.variant == "ascend" else {}
    config["filters"] = args.filters
    size = args.size or ((256, 32) if args.dynamic else (256, 256))
    if args.dynamic:
        config.update(
            input_shape=(args.frames, *size, 2),
            dynamic=True,
            data_sharing=not args.no_data_sharing,
            n_cascades=10,
        )
    else:
        config["input_shape"] = (*size, 2)
    if args.n_cascades is not None:
        config["n_cascades"] = args.n_cascades
    if args.n_convs is not None:
        config["n_convs"] = args.n_convs
    model = build(**config)
    name = "cascadenet" + ("-dynamic" if args.dynamic else "")
    name += "-ascend" if args.variant == "ascend" else ""
    # Inputs: image, kspace, mask, all uniform [0, 1) (see the module docstring).
    compile_model = None if args.compile_scope == "model" else (lambda m, compile: m.compile_cnns(compile))
    record = harness.time_training(
        model, model.input_shapes(), args, name, forward=lambda m, xs: m(*xs), compile_model=compile_model
    )
    record["compile_scope"] = args.compile_scope if args.compile else None
    harness.print_record(record)


if __name__ == "__main__":
    main()

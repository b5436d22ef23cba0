"""What the runtime needs to know about a configured network to choose kernels and compilation.

The runtime never sees a model's name: each training recipe describes its configured network with a
:class:`ModelTraits` (``Task.traits``), and the choices below read only those facts and the CPU. The
measurements behind the thresholds are in docs/benchmarks.md ("oneDNN or Eigen", "XLA on TensorFlow CPU").
This module imports neither Keras nor TensorFlow, so the CLI can decide before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess

# Wide 2D 3x3 convolutions at full resolution train faster on Eigen than on oneDNN on AVX2-only CPUs from
# this many base filters on (docs/benchmarks.md, "oneDNN or Eigen").
EIGEN_MIN_FILTERS = 48
# AMD's CPU family of Zen 5 (Zen 4 is family 25), the first whose server and desktop parts run AVX-512 on
# full 512-bit units; its mobile parts share the family with 256-bit units.
AMD_ZEN5_FAMILY = 26


@dataclasses.dataclass(frozen=True)
class ModelTraits:
    """Facts about a configured network that decide CPU kernels and XLA compilation.

    Attributes:
        full_resolution_2d: the training step is dominated by 2D 3x3 convolutions at the input's full
            resolution (U-Net, the 2D CascadeNet); False for 3D, strided or separable networks.
        width: the base filter count of those convolutions (None: unknown).
        xla_fails_in_mixed_precision: TensorFlow's XLA cannot compile the training step under a mixed
            precision policy (DeepLabv3+'s bilinear-resize gradient mixes float types).
    """

    full_resolution_2d: bool = False
    width: int | None = None
    xla_fails_in_mixed_precision: bool = False


def _cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields in ``path`` ("flags", "vendor_id", "cpu family", ...); empty where it
    cannot be read (not Linux)."""
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="ascii", errors="ignore") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags(path: str = "/proc/cpuinfo") -> list[str]:
    """The CPU features that decide kernel and precision choices (from /proc/cpuinfo; empty elsewhere)."""
    flags = set(_cpuinfo(path).get("flags", "").split())
    return sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma"})


def cpu_vendor_family(path: str = "/proc/cpuinfo") -> tuple[str, int] | None:
    """The CPU's vendor and family number as /proc/cpuinfo gives them, e.g. ``("AuthenticAMD", 26)`` for
    AMD Zen 5; None where they cannot be read."""
    fields = _cpuinfo(path)
    vendor, family = fields.get("vendor_id"), fields.get("cpu family", "")
    return (vendor, int(family)) if vendor and family.isdigit() else None


def bf16_is_faster_on_cpu() -> bool:
    """Whether TensorFlow's and PyTorch's oneDNN kernels train keras_zoo networks faster in bfloat16 than in
    float32 on this CPU (docs/benchmarks.md, "bfloat16 on CPUs").

    They do on CPUs with AMX-BF16 (Intel Xeon from Sapphire Rapids) and on AMD CPUs from Zen 5 (family 26)
    with AVX512_BF16 (measured on an EPYC, whose AVX-512 units are 512 bits wide; the family also holds the
    mobile Zen 5 parts, whose units are 256 bits wide, not measured). Elsewhere AVX512_BF16 alone does not
    qualify: measured slower with oneDNN held to it on a Xeon, and not measured on AMD Zen 4 (family 25).
    """
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return True
    identity = cpu_vendor_family()
    return (
        "avx512_bf16" in flags
        and identity is not None
        and identity[0] == "AuthenticAMD"
        and identity[1] >= AMD_ZEN5_FAMILY
    )


def nvidia_smi_query(field: str) -> str | None:
    """The first GPU's ``field`` as ``nvidia-smi --query-gpu=FIELD`` prints it ("NVIDIA H200" for ``name``,
    "9.0" for ``compute_cap``); None where nvidia-smi is missing, fails or prints nothing."""
    try:
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return lines[0] if result.returncode == 0 and lines else None


def is_x86_64() -> bool:
    """Whether this is an x86-64 machine (where TensorFlow's oneDNN switch exists)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def onednn_is_faster(traits: ModelTraits) -> bool:
    """Whether TensorFlow's oneDNN kernels train a network with ``traits`` faster than Eigen on this CPU.

    They do everywhere except for wide full-resolution 2D networks on CPUs without AVX-512 (measured on
    AVX2 EPYC; CPUs with AVX-512 keep oneDNN).
    """
    wide_2d = traits.full_resolution_2d and (traits.width or 0) >= EIGEN_MIN_FILTERS
    return not (wide_2d and "avx512f" not in cpu_flags())


def xla_is_faster_on_cpu(traits: ModelTraits) -> bool:
    """Whether XLA ``jit_compile`` trains a network with ``traits`` faster on TensorFlow CPU in fp32.

    It does exactly where Eigen kernels are chosen (XLA fuses the element-wise work around its own
    convolutions); where oneDNN is chosen XLA replaces its kernels and loses.
    """
    return not onednn_is_faster(traits)

"""The shared timing harness (benchmarks/torch_ports/harness.py): devices, precision, torch.compile, record.

What a one-off GPU run depends on is checked here on the CPU: the option checks (``--device cuda`` without
CUDA is one error line and exit status 2), a compiled step (backend "eager": dynamo's tracing without
code generation, fast) reporting its compile-inclusive ``first_step_s``, every port tracing into a single
graph (a graph break would leave part of a network uncompiled), CascadeNet's compiled CNNs around its
eager complex-valued data consistency, and bfloat16 autocast with CascadeNet's float32 FFTs. The CUDA
tests at the end run only where torch sees a GPU.
"""

import argparse
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import CASCADENET_ASCEND_TINY
from tests.torch_ports.conftest import PORTS
from tests.torch_ports.helpers import run_command_line

# Per port: command-line options for a small network that runs in a second (besides the timing ones).
SMALL = {
    "unet": ["--preset", "tiny"],
    "genesis": ["--preset", "tiny"],
    "cascadenet": ["--size", "16", "16", "--n-cascades", "2", "--n-convs", "2", "--filters", "4"],
    "amoebanet": "--input-shape 32 32 3 --classes 10 --num-cells 3 --filters 8 --stem-filters 4".split(),
    "deeplab": "--input-size 33 33 --backbone xception41 --width 0.0625 --middle-units 1".split(),
}
# The same networks as ``build`` arguments, for the tests that hold the model themselves.
SMALL_CONFIGS = {
    "unet": {"input_shape": (32, 32, 1), "filters": 4, "depth": 2},
    "genesis": {"input_shape": (16, 16, 8, 1), "filters": 2, "depth": 3},
    "cascadenet": {"input_shape": (16, 16, 2), "n_cascades": 2, "n_convs": 2, "filters": 4},
    "amoebanet": {"input_shape": (32, 32, 3), "classes": 10, "num_cells": 3, "filters": 8, "stem_filters": 4},
    "deeplab": {"input_shape": (33, 33, 3), "backbone": "xception41", "width": 0.0625, "middle_units": 1},
}
FAST = ["--batch-size", "2", "--steps", "1", "--warmup", "1", "--threads", "1"]
# The fields every record had before devices and compilation were added.
RECORD_FIELDS = {
    "model",
    "framework",
    "precision",
    "channels_last",
    "threads",
    "batch",
    "input_shape",
    "parameters",
    "step_time_ms",
    "step_time_p90_ms",
    "samples_per_sec",
    "date",
}


@pytest.fixture
def torch(load_port):
    """torch, skipping without it; dynamo's caches and recompile limit are reset around each test."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = torch._dynamo.config
    limit_name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    limit = getattr(config, limit_name)
    torch._dynamo.reset()
    yield torch
    torch._dynamo.reset()
    setattr(config, limit_name, limit)


def channels_first_shapes(name: str, config: dict) -> list[tuple[int, ...]]:
    """The port's input shapes without the batch axis, channels first, for a ``SMALL_CONFIGS`` entry."""
    shape = tuple(config["input_shape"])
    if name == "cascadenet":
        return [(shape[-1], *shape[:-1])] * 3
    return [(shape[-1], *shape[:-1])]


def inputs_for(torch, name: str, config: dict, batch: int = 2) -> list:
    """Uniform [0, 1) inputs of the port's shapes, as the harness feeds them."""
    return [torch.rand(batch, *shape) for shape in channels_first_shapes(name, config)]


def counting_backend(graphs: list):
    """A torch.compile backend that appends each graph it is given to ``graphs`` and runs it as traced."""

    def backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    return backend


# ----------------------------------------------------------------------------------------------------------
# Option checks
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cuda_without_cuda_is_one_error_line_and_exit_2(torch, name):
    """A script run, as on the GPU machine: no traceback, nothing on stdout, one line on stderr."""
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    command = [sys.executable, str(PORTS / f"{name}.py"), *FAST, *SMALL[name], "--device", "cuda"]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cuda" in lines[0] and "no CUDA device" in lines[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--compile-mode", "max-autotune"], "need --compile"),
        (["--compile-backend", "eager"], "need --compile"),
        (["--compile", "--compile-backend", "eager", "--compile-mode", "default"], "inductor backend only"),
        (["--warmup", "-1"], "--warmup >= 0"),
    ],
)
def test_inconsistent_options_exit_2_before_building(torch, load_port, capsys, extra, message):
    port = load_port("deeplab")
    with pytest.raises(SystemExit) as exit_info:
        port.main(["--batch-size", "1", *extra])  # the reference DeepLab: would take seconds to build
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_time_training_refuses_cuda_without_cuda(torch, harness, load_port):
    """Called directly (not through ``parse_args``), the harness raises instead of failing on ``.to``."""
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    unet = load_port("unet")
    parser = harness.add_timing_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--batch-size", "1", "--device", "cuda"])
    with pytest.raises(ValueError, match="no CUDA device"):
        harness.time_training(unet.build(**SMALL_CONFIGS["unet"]), [(1, 32, 32)], args, "unet")


# ----------------------------------------------------------------------------------------------------------
# The record
# ----------------------------------------------------------------------------------------------------------


def test_cpu_record_keeps_the_old_fields_and_adds_device_and_compile(torch, load_port, capsys):
    record = run_command_line(load_port("unet"), capsys, [*FAST, *SMALL["unet"]])
    assert RECORD_FIELDS <= set(record)
    assert record["device"] == "cpu" and record["compile"] is False and record["compile_mode"] is None
    assert record["torch_version"] == torch.__version__
    assert record["framework"] == f"torch {torch.__version__}"
    assert record["gpu"] is None and record["peak_memory_mib"] is None and record["cuda_version"] is None
    assert record["first_step_s"] > 0 and record["warmup"] == 1 and record["steps"] == 1
    assert record["step_time_ms"] > 0


def test_pipelined_steps_are_timed_as_one_block(torch, load_port, capsys, monkeypatch):
    """The steps gpu_check compares with Keras' fit: --steps more steps between two clock readings (a fake
    clock that advances one second a reading: synchronised steps take 1 s each, the block 1 s in all)."""
    harness = load_port("harness")
    readings = iter(range(1000))
    monkeypatch.setattr(harness.time, "perf_counter", lambda: float(next(readings)))
    steps = []
    real_step = torch.optim.Adam.step
    monkeypatch.setattr(
        torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k)
    )
    record = run_command_line(load_port("unet"), capsys, ["--batch-size", "2", "--steps", "4", "--warmup", "1",
                                                           "--threads", "1", *SMALL["unet"]])  # fmt: skip
    assert len(steps) == 1 + 4 + 4  # warm-up, timed one by one, pipelined
    assert record["step_time_ms"] == 1000.0 and record["pipelined_step_time_ms"] == 250.0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_compiled_step_runs_and_reports_first_step_s(torch, load_port, capsys, name):
    """torch.compile with the "eager" backend: dynamo traces the model (and CascadeNet's CNNs) every step."""
    argv = [*FAST, *SMALL[name], "--compile", "--compile-backend", "eager"]
    record = run_command_line(load_port(name), capsys, argv)
    assert record["compile"] is True and record["compile_backend"] == "eager"
    assert record["compile_mode"] is None  # torch's default mode
    assert record["first_step_s"] > 0 and record["step_time_ms"] > 0
    if name == "cascadenet":
        assert record["compile_scope"] == "cnn"


def test_first_step_is_timed_apart_from_the_timed_steps(torch, harness, load_port):
    """The compile cost lands in first_step_s (a warm-up step), not in the median of the timed steps."""
    unet = load_port("unet")
    parser = harness.add_timing_arguments(argparse.ArgumentParser())
    argv = "--batch-size 2 --steps 3 --warmup 1 --threads 1 --compile --compile-backend aot_eager".split()
    args = parser.parse_args(argv)
    record = harness.time_training(unet.build(**SMALL_CONFIGS["unet"]), [(1, 32, 32)], args, "unet")
    # Tracing forward and backward graphs takes far longer than running the tiny network once.
    assert record["first_step_s"] * 1000 > 3 * record["step_time_ms"]


@pytest.mark.parametrize(
    "failing_step, warmup, phase",
    [(1, 2, "first step"), (2, 2, "warm-up"), (3, 2, "timed steps"), (1, 0, "first step")],
)
def test_a_failing_step_gives_an_error_record_and_exit_1(
    torch, harness, load_port, capsys, failing_step, warmup, phase
):
    """Out of memory or a compiler error on the GPU: still one JSON line (with the error), then status 1."""
    unet = load_port("unet")
    calls = []

    def forward(model, inputs):
        if torch.is_grad_enabled():  # a training step (the shape probe runs without gradients)
            calls.append(1)
            if len(calls) == failing_step:
                raise RuntimeError("CUDA out of memory (simulated)")
        return model(*inputs)

    args = harness.add_timing_arguments(argparse.ArgumentParser()).parse_args(
        ["--batch-size", "1", "--steps", "2", "--warmup", str(warmup), "--threads", "1"]
    )
    record = harness.time_training(unet.build(**SMALL_CONFIGS["unet"]), [(1, 32, 32)], args, "unet", forward)
    assert record["error"] == "RuntimeError: CUDA out of memory (simulated)" and record["failed_at"] == phase
    assert record["step_time_ms"] is None and record["samples_per_sec"] is None
    assert (record["first_step_s"] is None) == (failing_step == 1)
    assert RECORD_FIELDS <= set(record)
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        harness.print_record(record)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["failed_at"] == phase


# ----------------------------------------------------------------------------------------------------------
# torch.compile: whole graphs, and CascadeNet's complex-valued parts
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_port_traces_into_one_graph_without_breaks(torch, load_port, name):
    """A graph break (in CascadeNet's cascade loop, one skips the whole forward) would leave code eager."""
    config = SMALL_CONFIGS[name]
    model = load_port(name).build(**config).train()
    explanation = torch._dynamo.explain(model)(*inputs_for(torch, name, config))
    assert explanation.graph_count == 1 and explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize(
    "config, expected_graphs",
    [
        # 10 cascades: 10 distinct CNNs through nn.Sequential.forward, past dynamo's default limit of 8
        (
            {
                "input_shape": (4, 8, 8, 2),
                "dynamic": True,
                "data_sharing": True,
                "n_cascades": 10,
                "n_convs": 2,
                "filters": 4,
            },
            10,
        ),
        # one CNN shared by 3 cascades: traced for an input that needs no gradient (cascade 1), then for one
        # that does
        (CASCADENET_ASCEND_TINY, 2),
    ],
    ids=["dynamic-10-cascades", "ascend-shared"],
)
def test_cascadenet_compile_cnns_compiles_every_cnn_and_keeps_dc_eager(
    torch, load_port, config, expected_graphs
):
    cascadenet = load_port("cascadenet")
    torch.manual_seed(0)
    model = cascadenet.build(**config).train()
    reference = cascadenet.build(**config).train()
    reference.load_state_dict(model.state_dict())
    graphs = []
    model.compile_cnns(lambda module: torch.compile(module, backend=counting_backend(graphs)))
    inputs = [torch.rand(2, *shape) for shape in model.input_shapes()]
    for _ in range(2):  # the second step reuses the graphs
        torch.manual_seed(1)
        out = model(*inputs)
        out.square().mean().backward()
    assert len(graphs) == expected_graphs
    for graph in graphs:  # convolutions only: no FFT or complex op was traced
        targets = {str(node.target) for node in graph.graph.nodes if node.op == "call_function"}
        assert not any("fft" in target or "complex" in target for target in targets)
    torch.manual_seed(1)
    expected = reference(*inputs)
    expected.square().mean().backward()
    torch.testing.assert_close(out, expected)
    for (name, got), (_, want) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        torch.testing.assert_close(got.grad, 2 * want.grad, msg=name)  # two steps accumulated vs one
    assert model.compiled_cnns and len(list(model.parameters())) == len(list(reference.parameters()))


def test_cascadenet_compile_scope_model_compiles_the_whole_2d_model(torch, load_port, capsys):
    argv = [*FAST, *SMALL["cascadenet"], "--compile", "--compile-backend", "eager"]
    argv += ["--compile-scope", "model"]
    record = run_command_line(load_port("cascadenet"), capsys, argv)
    assert record["compile_scope"] == "model" and record["step_time_ms"] > 0


# ----------------------------------------------------------------------------------------------------------
# bfloat16 autocast with CascadeNet's FFTs
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"input_shape": (16, 12, 2), "n_cascades": 2, "n_convs": 3, "filters": 8},
        {
            "input_shape": (4, 8, 12, 2),
            "dynamic": True,
            "data_sharing": True,
            "n_cascades": 2,
            "n_convs": 3,
            "filters": 4,
        },
    ],
    ids=["2d", "dynamic-sharing"],
)
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels-last"])
def test_cascadenet_bf16_autocast_keeps_ffts_and_data_consistency_float32(
    torch, load_port, config, channels_last
):
    """Convolutions in bfloat16, FFT and DC in float32: the output is float32 and exactly data consistent."""
    cascadenet = load_port("cascadenet")
    model = cascadenet.build(**config).train()
    image, kspace, mask = (torch.rand(2, *shape) for shape in model.input_shapes())
    mask = (mask > 0.5).float()
    mask[:, 1] = mask[:, 0]
    if channels_last:
        fmt = torch.channels_last if image.dim() == 4 else torch.channels_last_3d
        model = model.to(memory_format=fmt)
        image, kspace, mask = (t.contiguous(memory_format=fmt) for t in (image, kspace, mask))
    with torch.no_grad():
        full = model(image, kspace, mask)
    convs = []
    hook_type = torch.nn.Conv2d if image.dim() == 4 else torch.nn.Conv3d
    for module in model.modules():
        if isinstance(module, hook_type):
            module.register_forward_hook(lambda m, i, o: convs.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(image, kspace, mask)
        loss = torch.mean((out.float() - 0.5) ** 2)
    loss.backward()
    assert convs and set(convs) == {torch.bfloat16}
    assert out.dtype == torch.float32 and out.shape == image.shape
    # Noise-free DC replaces sampled k-space by the measurement, in float32 whatever the CNN's precision.
    k_out = torch.fft.fft2(torch.complex(out[:, 0], out[:, 1]).detach(), norm="ortho")
    k0 = torch.complex(kspace[:, 0], kspace[:, 1])
    sampled = mask[:, 0] > 0
    torch.testing.assert_close(k_out[sampled], k0[sampled], atol=1e-5, rtol=1e-5)
    assert float((out.detach() - full).abs().max()) < 0.05 * float(full.abs().max())  # bf16 rounding only
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("dynamic", [False, True], ids=["2d", "dynamic"])
def test_cascadenet_command_line_bf16_channels_last_compiled(torch, load_port, capsys, dynamic):
    argv = [
        *FAST,
        "--filters",
        "4",
        "--n-cascades",
        "2",
        "--n-convs",
        "2",
        "--precision",
        "bf16",
        "--channels-last",
        "--compile",
        "--compile-backend",
        "eager",
    ]
    argv += ["--dynamic", "--frames", "4", "--size", "8", "8"] if dynamic else ["--size", "16", "16"]
    record = run_command_line(load_port("cascadenet"), capsys, argv)
    assert record["precision"] == "bf16" and record["channels_last"] is True and record["compile"] is True
    assert record["model"] == ("cascadenet-dynamic" if dynamic else "cascadenet")


@pytest.mark.large
def test_cascadenet_inductor_on_cpu_bf16_channels_last(torch, load_port, capsys):
    """Inductor's real code generation (a C++ compiler on the CPU) for the compiled CNNs; tens of seconds."""
    argv = [*FAST, *SMALL["cascadenet"], "--precision", "bf16", "--channels-last", "--compile"]
    record = run_command_line(load_port("cascadenet"), capsys, argv)
    assert record["compile_backend"] == "inductor" and record["step_time_ms"] > 0


# ----------------------------------------------------------------------------------------------------------
# CUDA (only where torch sees a GPU)
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "inductor"])
def test_cuda_bf16_channels_last(torch, load_port, capsys, name, compiled):
    """Every port on the GPU: inputs, target and model on the device, bf16 autocast, channels-last."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    argv = [*FAST, *SMALL[name], "--device", "cuda", "--precision", "bf16", "--channels-last"]
    record = run_command_line(load_port(name), capsys, argv + (["--compile"] if compiled else []))
    assert record["device"] == "cuda" and record["gpu"] == torch.cuda.get_device_name()
    assert record["peak_memory_mib"] > 0 and record["compile"] is compiled
    json.dumps(record)  # plain JSON values only


def test_operator_counter_counts_operators_and_views(torch, harness):
    """Three operators, one of them a view; the backward pass of a product is counted too."""
    x = torch.ones(3, requires_grad=True)
    with harness.OperatorCounter() as counter:
        y = (x * 2 + 1).view(3, 1)
    assert (counter.count, counter.views) == (3, 1)  # mul, add, view
    with harness.OperatorCounter() as backward:
        y.sum().backward()
    assert backward.count > 0 and torch.equal(x.grad, torch.full((3,), 2.0))


def test_count_ops_adds_the_operator_count_of_one_step(torch, harness, load_port, capsys):
    record = run_command_line(load_port("unet"), capsys, [*FAST, *SMALL["unet"], "--count-ops"])
    assert record["aten_ops_per_step"] > record["aten_views_per_step"] > 0
    plain = run_command_line(load_port("unet"), capsys, [*FAST, *SMALL["unet"]])
    assert plain["aten_ops_per_step"] is None and plain["aten_views_per_step"] is None

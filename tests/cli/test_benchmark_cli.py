"""``keras-zoo benchmark``: one JSON line per mode with figures consistent with the model built."""

import json
import os

import keras
import pytest

from keras_zoo.cli import benchmark, train
from keras_zoo.cli.tasks import reference_batch
from keras_zoo.flops import forward_flops
from keras_zoo.layers import implementations
from keras_zoo.registry import get_model
from keras_zoo.runtime import traits

pytestmark = pytest.mark.backend_agnostic


def _records(capsys, argv):
    assert benchmark.main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_train_and_infer_records_describe_the_run(capsys):
    argv = ["--model", "unet", "--preset", "tiny", "--batch-size", "3", "--steps", "2", "--warmup", "1"]
    train, infer = _records(capsys, [*argv, "--mode", "both"])
    assert (train["mode"], infer["mode"]) == ("train", "infer")
    for record in (train, infer):
        assert record["model"] == "unet" and record["batch"] == 3 and record["steps"] == 2
        assert record["input_shape"] == [[32, 32, 1]]
        assert record["parameters"] == get_model("unet", preset="tiny").count_params()
        assert 0 < record["step_time_ms"] <= record["step_time_p90_ms"] * 1.0001
        # samples/s is batch x steps / summed step time; with two steps the median is their mean
        assert record["samples_per_sec"] == pytest.approx(3000 / record["step_time_ms"], rel=1e-3)
        assert record["peak_host_bytes"] > 0 and "keras" in record["versions"]
        assert record["layers"] == implementations()
        assert record["first_step_s"] > 0
        assert record["overrides"] == {}
        # the machine facts the runtime's choices read travel with every line
        identity = traits.cpu_vendor_family()
        assert record["host"]["cpu_vendor_family"] == (list(identity) if identity else None)
        assert record["host"]["cpu_flags"] == traits.cpu_flags() and record["host"]["cpu_count"] > 0
        if keras.config.backend() == "tensorflow":
            assert record["host"]["tf_enable_onednn_opts"] == os.environ.get("TF_ENABLE_ONEDNN_OPTS")
        else:
            assert "tf_enable_onednn_opts" not in record["host"]
    forward = forward_flops(get_model("unet", preset="tiny"), batch_size=3)
    assert (train["model_flops_per_step"], infer["model_flops_per_step"]) == (3 * forward, forward)
    # training is judged at the pipelined fit step, inference at its own step
    assert train["fit_step_time_ms"] > 0 and "fit_step_time_ms" not in infer
    assert train["fit_samples_per_sec"] == pytest.approx(3000 / train["fit_step_time_ms"], rel=1e-3)
    assert train["model_gflops_per_sec"] == pytest.approx(
        3 * forward / train["fit_step_time_ms"] / 1e6, rel=1e-2, abs=0.01
    )
    assert infer["model_gflops_per_sec"] == pytest.approx(
        forward / infer["step_time_ms"] / 1e6, rel=1e-2, abs=0.01
    )


def test_roofline_is_the_slower_of_compute_and_memory_at_the_given_peaks(capsys):
    from keras_zoo.flops import training_step_bytes

    argv = ["--model", "unet", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--fit-epochs", "0"]
    (record,) = _records(capsys, [*argv, "--peak-gflops", "1000", "--peak-gbps", "2"])
    assert "fit_step_time_ms" not in record
    moved = training_step_bytes(get_model("unet", preset="tiny"), record["batch"])
    assert record["model_bytes_per_step"] == moved
    assert record["memory_roofline_ms"] == pytest.approx(moved / 2e6, rel=1e-3)
    compute_ms = record["model_flops_per_step"] / 1e9
    assert record["roofline_ms"] == pytest.approx(max(compute_ms, moved / 2e6), rel=1e-3)
    assert record["roofline_fraction"] == pytest.approx(
        record["roofline_ms"] / record["step_time_ms"], rel=1e-2
    )
    assert benchmark.main([*argv, "--peak-gbps", "-1"]) == 2
    assert "--peak-gbps must be > 0" in capsys.readouterr().err


def test_peak_gflops_adds_model_flops_utilisation(capsys):
    argv = ["--model", "unet", "--preset", "tiny", "--steps", "1", "--warmup", "0", "--peak-gflops", "250"]
    (record,) = _records(capsys, argv)
    assert record["mfu"] == pytest.approx(record["model_gflops_per_sec"] / 250, abs=1e-4)
    assert benchmark.main([*argv[:-1], "0"]) == 2
    assert "--peak-gflops must be > 0" in capsys.readouterr().err


def test_set_overrides_the_preset(capsys):
    argv = [
        "--model",
        "unet",
        "--preset",
        "tiny",
        "--set",
        "filters=2",
        "--set",
        "dropout=0.1",
        "--steps",
        "1",
    ]
    (record,) = _records(capsys, [*argv, "--fit-epochs", "0"])
    assert record["parameters"] == get_model("unet", preset="tiny", filters=2).count_params()
    assert record["overrides"] == {"filters": 2, "dropout": 0.1}
    assert record["batch"] == reference_batch("unet")


@pytest.mark.structure  # argument precedence, judged by parameter counts: the same on every backend
def test_deprecated_config_json_still_overrides_and_set_wins_over_it(capsys):
    argv = ["--model", "unet", "--preset", "tiny", "--steps", "1", "--fit-epochs", "0"]
    (record,) = _records(capsys, [*argv, "--config", '{"filters": 2}'])
    assert record["parameters"] == get_model("unet", preset="tiny", filters=2).count_params()
    (record,) = _records(capsys, [*argv, "--config", '{"filters": 2}', "--set", "filters=3"])
    assert record["parameters"] == get_model("unet", preset="tiny", filters=3).count_params()
    assert "deprecated" in benchmark.build_parser().format_help()


@pytest.mark.parametrize("item", ["filters", "filters=[2"])
def test_bad_set_is_a_one_line_error(capsys, item):
    assert benchmark.main(["--model", "unet", "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --set {item!r}") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("size", ["0", "-3"])
def test_a_batch_size_below_one_is_a_one_line_error(capsys, size):
    """0 was replaced by the reference batch without a word, -3 ended in NumPy's traceback."""
    assert benchmark.main(["--model", "unet", "--preset", "tiny", "--batch-size", size]) == 2
    assert capsys.readouterr().err.strip() == f"error: --batch-size must be >= 1, got {size}"


@pytest.mark.parametrize("config", ["{not json", "[1, 2]"])
def test_bad_config_is_a_one_line_error(capsys, config):
    assert benchmark.main(["--model", "unet", "--config", config]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --config") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "model, preset, overrides",
    [
        ("unet", "default", {}),
        ("unet", "tiny", {}),
        ("unet", "tiny", {"filters": 48}),
        ("cascadenet", "ascend", {}),  # the factory's 64 filters: a wide full-resolution 2D network
        ("cascadenet", "dynamic", {}),
        ("cascadenet", "tiny", {}),
    ],
)
def test_traits_are_those_train_py_derives_for_the_preset(model, preset, overrides):
    """The kernel and jit choices of a benchmark follow the same network traits as ``train.py --preset``."""
    flags = [f"--{key}={value}" for key, value in overrides.items()]
    args, task = train.parse_args(["--model", model, "--preset", preset, *flags])
    arguments = benchmark._preset_arguments(model, preset, overrides)
    assert benchmark._traits(model, arguments) == task.traits(args)


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="XLA is chosen per network on TF CPU")
@pytest.mark.parametrize("filters, jit", [(48, "True"), (8, "False")])
def test_a_preset_gets_the_jit_choice_train_py_makes(capsys, monkeypatch, filters, jit):
    """On an AVX2 CPU a wide full-resolution 2D network trains with XLA (docs/benchmarks.md, "oneDNN or
    Eigen"), also when it is benchmarked from a preset."""
    monkeypatch.setattr(traits, "cpu_flags", lambda: ["avx2", "fma"])
    argv = ["--model", "unet", "--preset", "tiny", "--set", f"filters={filters}", "--precision", "fp32"]
    (record,) = _records(capsys, [*argv, "--steps", "1", "--warmup", "0", "--fit-epochs", "0"])
    assert record["jit"] == jit

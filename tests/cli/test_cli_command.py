"""The one CLI skeleton (``keras_zoo.cli.command``): exit statuses, one-line errors, Ctrl-C, overrides, quiet
TensorFlow start-up, and ``keras-zoo --help`` / ``--version``."""

import argparse
import os

import pytest

from keras_zoo import __version__
from keras_zoo.cli import command
from keras_zoo.cli import main as cli_main
from keras_zoo.errors import ConfigError

pytestmark = pytest.mark.backend_agnostic


def _parser():
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--debug", action="store_true")
    return parser


def _run(body, argv, **kwargs):
    return command.run_command(_parser().parse_args, body, argv, **kwargs)


def test_body_status_and_parsed_arguments():
    assert _run(lambda args: args.n + 3, ["--n", "4"]) == 7


def test_user_error_is_one_line_and_exit_2(capsys):
    def body(args):
        raise ConfigError("--n: too large")

    assert _run(body, []) == 2
    err = capsys.readouterr().err
    assert err == "error: --n: too large\n"


def test_debug_prints_the_traceback_before_the_line(capsys):
    def body(args):
        raise ConfigError("--n: too large")

    assert _run(body, ["--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "error: --n: too large"


def test_usage_error_exits_2_and_help_exits_0(capsys):
    assert _run(lambda args: 0, ["--n", "x"]) == 2
    assert "invalid int value: 'x'" in capsys.readouterr().err
    assert _run(lambda args: 5, ["--help"]) == 0
    assert "usage: demo" in capsys.readouterr().out


def test_sys_exit_with_a_message_is_printed_and_exits_1(capsys):
    def body(args):
        raise SystemExit("cannot go on")

    assert _run(body, []) == 1
    assert capsys.readouterr().err == "cannot go on\n"


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def body(args):
        raise KeyboardInterrupt

    assert _run(body, ["--n", "9"], interrupted=lambda args: f"n was {args.n}") == 130
    assert capsys.readouterr().err == "interrupted; n was 9\n"
    assert _run(body, []) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_parsing_passes_none_to_the_hint(capsys):
    def parse(argv):
        raise KeyboardInterrupt

    seen = []
    status = command.run_command(parse, lambda parsed: 0, [], interrupted=lambda p: seen.append(p) or "")
    assert status == 130 and seen == [None] and capsys.readouterr().err == "interrupted\n"


def test_other_exceptions_keep_their_traceback():
    def body(args):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        _run(body, [])


def test_overrides_are_yaml_values():
    assert command.parse_overrides(["filters=16", "input_shape=[32, 32, 1]", "batch_norm=true", "k = x"]) == {
        "filters": 16,
        "input_shape": [32, 32, 1],
        "batch_norm": True,
        "k": "x",  # YAML strips the blank
    }


@pytest.mark.parametrize("item, message", [("filters", "KEY=VALUE"), ("=3", "KEY=VALUE"), ("a=[1", "YAML")])
def test_bad_override_names_the_flag_and_item(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        command.parse_overrides([item], flag="--set")
    assert str(info.value).startswith(f"--set {item!r}")


def test_quiet_native_logs_keeps_a_level_the_user_chose(monkeypatch):
    monkeypatch.delitem(command.sys.modules, "tensorflow", raising=False)
    environ = {}
    assert command.quiet_native_logs(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_ZOO_TF_LOG_DEFAULT": "1"}
    assert command.quiet_native_logs(environ)  # a child process inheriting the level set here
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert not command.quiet_native_logs(environ) and environ == {"TF_CPP_MIN_LOG_LEVEL": "0"}


# Lines TensorFlow 2.21 wrote at import on a CPU machine, and ones that must stay.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796417457.949680   11938 port.cc:153] oneDNN custom operations are on. You may see ...\n",
    "I0000 00:00:1796417457.950020   11938 cudart_stub.cc:31] Could not find cuda drivers on your machine\n",
    "W1204 20:49:04.123456   11938 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...\n",
]
KEPT = [
    "E0000 00:00:1796417477.474132   12022 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n",
    "/x.py:3: UserWarning: something the user should read\n",
    "INFO keras_zoo.train: data: synthetic\n",
]


def test_startup_noise_is_absl_info_and_warning_lines_only():
    assert all(command.is_startup_noise(line) for line in NOISE)
    assert not any(command.is_startup_noise(line) for line in KEPT)


def test_filtered_stderr_drops_noise_written_to_the_file_descriptor(capfd):
    with command.filtered_stderr():
        for line in [NOISE[0], KEPT[0], NOISE[1], KEPT[1]]:
            os.write(2, line.encode())
    assert capfd.readouterr().err == KEPT[0] + KEPT[1]


def test_tensorflow_loaded_after_a_lookup_still_starts_quietly():
    """Under JAX or torch, keras_zoo asks whether TensorFlow is installed long before a tfrecord reader imports
    it: the import hook filtered the first lookup, not the import, and the start-up lines came through."""
    import subprocess
    import sys

    script = (
        "import importlib.util, os\n"
        "from keras_zoo.cli.command import quiet_native_logs\n"
        "assert quiet_native_logs()\n"
        "assert importlib.util.find_spec('tensorflow') is not None\n"
        "import tensorflow\n"
        "os.write(2, b'E0000 00:00:1.0 1 kept.cc:1] an error line\\n')\n"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TF_CPP") and k != "KERAS_ZOO_TF_LOG_DEFAULT"
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    noise = [line for line in result.stderr.splitlines() if command.is_startup_noise(line)]
    assert noise == [] and "an error line" in result.stderr


def test_top_level_help_describes_every_subcommand(capsys):
    assert cli_main.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli_main.SUBCOMMANDS:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split()) > 3, line  # the name and a description
    assert "evaluate" in out


def test_version_and_unknown_command(capsys):
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr().out == f"keras-zoo {__version__}\n"
    assert cli_main.main(["fly"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown command 'fly'" in err and "Traceback" not in err
    assert cli_main.main([]) == 2


@pytest.mark.parametrize("name", ["list", "info", "summary", "benchmark", "prepare", "export", "train"])
def test_every_subcommand_help_exits_0(capsys, name):
    assert cli_main.main([name, "--help"]) == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("command_line", [["list"], ["info", "unet"], ["train", "--model", "unet"]])
def test_a_keras_backend_typo_is_one_line_and_exit_2(command_line):
    """Keras would raise on import ("Unable to import backend : jaxx"), a traceback and exit 1."""
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "jaxx"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_zoo.cli.main", *command_line], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: KERAS_BACKEND=jaxx: keras_zoo runs on tensorflow, jax, torch"
    ]


def test_a_backend_variable_is_checked_unless_the_command_line_names_the_backend(monkeypatch, capsys):
    import sys

    monkeypatch.setenv("KERAS_BACKEND", "jaxx")
    monkeypatch.delitem(sys.modules, "keras")  # as in a fresh process: Keras not loaded yet
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend")
    assert command.run_command(parser.parse_args, lambda args: 0, []) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: KERAS_BACKEND=jaxx: keras_zoo runs on tensorflow, jax, torch"
    )
    assert command.run_command(parser.parse_args, lambda args: 0, ["--backend", "jax"]) == 0
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert command.run_command(parser.parse_args, lambda args: 0, []) == 0

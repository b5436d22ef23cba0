"""The one skeleton every ``keras-zoo`` command runs in.

:func:`run_command` is the single place that prepares the process (TensorFlow's native start-up log lines
off unless the user set ``TF_CPP_MIN_LOG_LEVEL``; INFO logging), parses the command line once, runs the
command, and turns what goes wrong into an exit status:

- a :class:`~keras_zoo.errors.KerasZooError` (a user's mistake): one ``error: <message>`` line, status 2
  (``--debug`` prints the traceback first);
- an argparse usage error: argparse's usage and error lines, status 2; ``--help``: status 0;
- Ctrl-C: one ``interrupted; ...`` line (what the command can say about resuming), status 130.

Anything else is a bug and keeps its traceback. The module imports neither Keras nor a backend.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd program

BACKENDS = ("tensorflow", "jax", "torch")  # the Keras backends keras_zoo runs on

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
LOG_MARKER_VARIABLE = "KERAS_ZOO_TF_LOG_DEFAULT"  # "1": the level was set here, not by the user
QUIET_LEVEL = "2"  # TensorFlow's C++ logging: errors only
QUIETED_IMPORTS = ("tensorflow",)

# Start-up lines that TensorFlow's libraries write through absl before they read TF_CPP_MIN_LOG_LEVEL
# (TensorFlow 2.21: "oneDNN custom operations are on", "Could not find cuda drivers"), each library once:
# absl's banner, and its INFO/WARNING lines ("I0000 00:00:1796417457.949680   11938 port.cc:153] ...").
_ABSL_BANNER = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called")
_ABSL_INFO_OR_WARNING = re.compile(r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")

Parsed = TypeVar("Parsed")


def quiet_native_logs(environ: MutableMapping[str, str] | None = None) -> bool:
    """Turns TensorFlow's C++ start-up log lines off unless the user set ``TF_CPP_MIN_LOG_LEVEL``.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors only) and, for the lines TensorFlow's libraries log through absl
    before they read that variable, filters the process's stderr while TensorFlow is first imported:
    absl's INFO and WARNING lines and its "before absl::InitializeLog()" banner are dropped, everything
    else (errors, Python warnings) is written through. Has to run before TensorFlow loads; does nothing
    when it already has. A level set here is marked (``KERAS_ZOO_TF_LOG_DEFAULT=1``), so that child
    processes, which inherit it, still count it as no choice of the user's.

    Args:
        environ: the environment to change (``os.environ`` when None; tests pass a dict, and then no
            import filter is installed).

    Returns:
        Whether the start-up lines are quieted (False: the user chose a level, or TensorFlow is loaded).
    """
    process = environ is None
    environ = os.environ if environ is None else environ
    user_set = LOG_LEVEL_VARIABLE in environ and environ.get(LOG_MARKER_VARIABLE) != "1"
    if user_set or "tensorflow" in sys.modules:
        return False
    environ[LOG_LEVEL_VARIABLE] = QUIET_LEVEL
    environ[LOG_MARKER_VARIABLE] = "1"
    if process and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport(QUIETED_IMPORTS))
    return True


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of absl's start-up INFO/WARNING lines or its InitializeLog banner."""
    return bool(_ABSL_BANNER.match(line) or _ABSL_INFO_OR_WARNING.match(line))


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool] = is_startup_noise) -> Iterator[None]:
    """Captures file descriptor 2 (native libraries write there, not to ``sys.stderr``) and writes the
    captured lines that ``drop`` rejects back to it on exit."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not drop(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Import hook: the first import of one of ``names`` runs inside :func:`filtered_stderr`.

    It leaves ``sys.meta_path`` when that import runs, not when a module is only looked for
    (``importlib.util.find_spec("tensorflow")`` asks whether TensorFlow is installed, and under JAX or torch
    TensorFlow may load much later, for a tfrecord reader).
    """

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self._finding = False

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names or self._finding:
            return None
        self._finding = True  # the finders after this one find the real module
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self)
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _FilteredLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` inside :func:`filtered_stderr`, once ``hook`` is removed."""

    def __init__(self, loader, hook: _QuietImport):
        self.loader = loader
        self.hook = hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.hook.remove()  # one import only
        with filtered_stderr():
            self.loader.exec_module(module)

    def __getattr__(self, name: str):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


def setup_logging() -> None:
    """INFO logging to stderr as ``LEVEL logger: message``, unless logging is already configured."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def prepare_process() -> None:
    """What every command does before it parses: quiet native start-up logs, set up logging."""
    quiet_native_logs()
    setup_logging()


def command_argv(argv: list[str] | None) -> list[str]:
    """The command's arguments: ``argv``, or ``sys.argv[1:]`` when None."""
    return list(sys.argv[1:] if argv is None else argv)


def run_command(
    parse: Callable[[list[str]], Parsed],
    body: Callable[[Parsed], int],
    argv: list[str] | None = None,
    interrupted: Callable[[Parsed | None], str] | None = None,
    debug: bool | None = None,
) -> int:
    """Runs one command: prepares the process, parses ``argv`` once, runs ``body`` on the result.

    Args:
        parse: ``argv -> parsed`` (an argparse parser's ``parse_args``, or the train CLI's own parse).
        body: ``parsed -> exit status``.
        argv: the command's arguments; ``sys.argv[1:]`` when None.
        interrupted: ``parsed (None if Ctrl-C came while parsing) -> what to tell the user`` after
            ``interrupted; ``, e.g. how to resume; None: just ``interrupted``.
        debug: print tracebacks of user errors; None: whether ``--debug`` is in ``argv``.

    Returns:
        ``body``'s status; 2 for a user error or a usage error; 0 for ``--help``; 130 for Ctrl-C.
    """
    argv = command_argv(argv)
    debug = "--debug" in argv if debug is None else debug
    prepare_process()
    from keras_zoo.errors import KerasZooError

    parsed = None
    try:
        if "--backend" not in argv:  # the train command's --backend replaces the variable
            check_backend_variable()
        parsed = parse(argv)
        return body(parsed)
    except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
        return _exit_status(exc)
    except KerasZooError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        hint = interrupted(parsed) if interrupted is not None else ""
        print(f"interrupted; {hint}" if hint else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def check_backend_variable() -> None:
    """Refuses a ``KERAS_BACKEND`` that names no backend keras_zoo runs on, before Keras turns a typo into a
    traceback on import.

    Raises:
        ConfigError: naming the value and the backends.
    """
    from keras_zoo.errors import ConfigError

    value = os.environ.get("KERAS_BACKEND")
    if value is not None and "keras" not in sys.modules and value not in BACKENDS:
        raise ConfigError(f"KERAS_BACKEND={value}: keras_zoo runs on {', '.join(BACKENDS)}")


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0)
    print(exc.code, file=sys.stderr)  # sys.exit("message"): Python prints it and exits 1
    return 1


def parse_overrides(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` items as ``{key: value}``, each value read as YAML (``3``, ``0.5``, ``true``, ``[64, 64]``).

    Raises:
        ConfigError: an item without ``=`` or a key, or a value that is not valid YAML.
    """
    import yaml

    from keras_zoo.errors import ConfigError

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{flag} {item!r}: the value is not valid YAML") from None
    return overrides


def version() -> str:
    """keras_zoo's version."""
    from keras_zoo import __version__

    return __version__

"""Run folders that are never overwritten or shared, and outputs that ``--overwrite`` may replace.

A training run writes into one folder (``args.yaml``, ``checkpoints/``, ``history.csv``, ...). The policy:

- without ``--output`` each run gets a folder of its own, ``output/train/<YYYYMMDD-HHMMSS>-<model>``
  (timm's convention), made unique with ``-1``, ``-2``, ... (:func:`default_output`);
- a new run refuses a folder that is not empty; ``--resume`` continues the run in it, ``--overwrite`` moves
  the earlier run's files into a sibling ``<output>.old-<YYYYMMDD-HHMMSS>`` and never deletes them
  (:func:`prepare_run_folder`);
- ``<output>/.lock`` (owner pid, host, start time) keeps a second process out while a run is alive; the lock
  of a process that is gone is taken over with a warning (:class:`RunLock`);
- ``predict``/``export``/``summary`` read a run folder only when it is complete (:func:`require_complete_run`);
- a command replaces an existing output only when it is an output of the same kind, i.e. what that command
  writes (:func:`replace_output`).

Standard library only (plus :mod:`keras_zoo.errors`): the CLI calls this before importing Keras.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator

from keras_zoo.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
RUN_MARKERS = ("args.yaml", "checkpoints")  # what a training run writes first
STAMP = "%Y%m%d-%H%M%S"
# Entry of a SavedModel folder -> whether it is a folder (what ``model.export(format="tf_saved_model")`` writes).
SAVEDMODEL_ENTRIES = {
    "saved_model.pb": False,
    "fingerprint.pb": False,
    "keras_metadata.pb": False,
    "variables": True,
    "assets": True,
}
VARIABLES_FILE = re.compile(r"variables\.(index|data-\d{5}-of-\d{5})")
# ModelProto fields 2-8 (producer_name ... opset_import): the field after ir_version in a serialized model.
ONNX_SECOND_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}


# ----------------------------------------------------------------------------------------------- run folders


def default_output(model: str, root: str = "output", now: datetime.datetime | None = None) -> str:
    """Creates and returns ``<root>/train/<YYYYMMDD-HHMMSS>-<model>`` (``-1``, ``-2``, ... appended if taken).

    The folder is created here (``os.mkdir`` is atomic), so two runs started in the same second get two folders.

    Raises:
        ConfigError: ``root`` is a file or cannot be written.
    """
    now = now or datetime.datetime.now()
    parent = os.path.join(root, "train")
    _make_folder(parent)
    name = re.sub(r"[^\w.-]", "_", model)
    return _reserve_unique(os.path.join(parent, f"{now.strftime(STAMP)}-{name}"))


def prepare_run_folder(output: str, *, resume: bool, overwrite: bool) -> str | None:
    """Checks (and for a new run creates) ``output`` before a training run writes into it.

    A new run needs a missing or empty folder (a ``.lock`` does not count); ``overwrite`` moves the files of an
    earlier run into a new sibling ``<output>.old-<YYYYMMDD-HHMMSS>`` first. ``resume`` needs a run there.
    Works before or inside this process's :class:`RunLock` on ``output``.

    Returns:
        The folder the earlier run was moved to, or None when nothing was moved.

    Raises:
        ConfigError: ``output`` is a file or not writable, another live process holds its lock, a new run meets
            a non-empty folder without ``overwrite`` (or one that is not a run folder, even with it),
            ``resume`` finds no run, or ``resume`` and ``overwrite`` are both given.
    """
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite conflict: --resume continues the run that --overwrite moves aside"
        )
    _require_not_file(output)
    owner = _foreign_live_owner(output)
    if owner:
        raise _in_use(output, owner)
    if resume:
        if not os.path.isfile(os.path.join(output, "args.yaml")):
            raise ConfigError(
                f"--resume: {output} holds no training run (no args.yaml); drop --resume to start one"
            )
        _require_writable(output)
        return None
    _make_folder(output)
    _require_writable(output)
    contents = _contents(output)
    if not contents:
        return None
    if not overwrite:
        raise ConfigError(
            f"{output}: not empty; use --resume to continue the run in it, --overwrite to move the old run "
            "aside, or another --output"
        )
    if not any(os.path.exists(os.path.join(output, marker)) for marker in RUN_MARKERS):
        raise ConfigError(
            f"{output}: holds files of no training run (no args.yaml or checkpoints/); --overwrite moves aside "
            "only a run, choose another --output"
        )
    return _move_aside(output, contents)


def require_complete_run(folder: str) -> None:
    """Raises ConfigError unless ``folder`` holds a complete training run: its ``args.yaml`` is there (written
    at the start of a run) and no live process holds its lock (a lock left by a crashed run does not count).

    ``checkpoints/`` is not required: a run's ``args.yaml`` copied beside its weights is a run to read too.
    """
    owner = _foreign_live_owner(folder)
    if owner:
        raise ConfigError(
            f"{folder}: training in progress (pid {owner['pid']} on {owner['host']} since {owner['started']}); "
            "use its checkpoints once it has finished"
        )
    if not os.path.isfile(os.path.join(folder, "args.yaml")):
        raise ConfigError(f"{folder}: not a training run folder (no args.yaml)")


def _contents(folder: str) -> list[str]:
    """Names in ``folder`` other than the lock file, sorted."""
    return sorted(name for name in os.listdir(folder) if name != LOCK_NAME)


def _move_aside(output: str, names: list[str]) -> str:
    """Moves ``names`` from ``output`` into a new sibling ``<output>.old-<stamp>`` and returns its path."""
    aside = _reserve_unique(f"{os.path.abspath(output)}.old-{datetime.datetime.now().strftime(STAMP)}")
    for name in names:
        try:
            os.rename(os.path.join(output, name), os.path.join(aside, name))
        except OSError as exc:
            raise ConfigError(
                f"{output}: cannot move {name} to {aside} ({exc.strerror}); what was moved so far is there"
            ) from None
    log.warning("%s: the earlier run was moved to %s", output, aside)
    return aside


def _reserve_unique(base: str) -> str:
    """Creates and returns the first missing folder of ``base``, ``base-1``, ``base-2``, ..."""
    for n in itertools.count():
        candidate = base if n == 0 else f"{base}-{n}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise _unwritable(candidate, exc) from None


def _require_not_file(path: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ConfigError(f"{path}: is a file, not a folder; choose another --output")


def _make_folder(path: str) -> bool:
    """Creates ``path`` with its parents; returns True when it did not exist before."""
    _require_not_file(path)
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(path)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    return True


@contextlib.contextmanager
def made_folder(path: str) -> Iterator[str]:
    """``with made_folder(path):`` the folder ``path``, created (with its parents) when missing; one created
    here is removed again if the block leaves it empty, so a refused command leaves no folder behind.

    Raises:
        ConfigError: ``path`` is a file or cannot be created.
    """
    created = _make_folder(path)
    try:
        yield path
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when still empty


def _require_writable(folder: str) -> None:
    """Creates and removes a file in ``folder`` (``os.access`` misses read-only mounts and /proc)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    except OSError as exc:
        raise _unwritable(folder, exc) from None
    os.close(fd)
    os.remove(probe)


def _unwritable(path: str, exc: OSError) -> ConfigError:
    return ConfigError(f"{path}: cannot write there ({exc.strerror or exc}); choose another --output")


# ------------------------------------------------------------------------------------------------------ lock


class RunLock:
    """``with RunLock(folder):`` holds ``folder/.lock`` (JSON: pid, host, start time) for the block.

    The lock file is created atomically (a complete temporary file hard-linked to ``.lock``), so a reader sees
    no lock or a whole one. A lock whose process is gone (or whose pid now belongs to a newer process) is taken
    over with a warning; one of a live process, or of another host (its pid cannot be checked from here), is
    not. The lock is removed when the block ends, also on an exception or Ctrl-C; a folder that this lock
    created is removed too when it is still empty. A killed process leaves a stale lock, taken over next time.

    Raises (on entry):
        ConfigError: ``folder`` is in use by a live process, is a file, cannot be written, or holds a
            ``.lock`` that keras-zoo did not write.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._raw: bytes | None = None
        self._created = False

    def __enter__(self) -> RunLock:
        self._created = _make_folder(self.folder)
        try:
            self._raw = self._acquire()
        except BaseException:
            self._remove_created_folder()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        with contextlib.suppress(OSError):  # never hide the block's own exception
            if self._raw is not None and _read_raw(self.path) == self._raw:
                os.remove(self.path)
        self._raw = None
        self._remove_created_folder()

    def _acquire(self) -> bytes:
        raw = json.dumps(_owner_record()).encode()
        for _ in range(3):
            if _link_exclusive(self.path, raw):
                return raw
            found = _read_raw(self.path)
            if found is None:  # released in the meantime
                continue
            owner = _parse_lock(self.path, found)
            if _is_alive(owner):
                raise _in_use(self.folder, owner)
            log.warning(
                "%s: taking over the lock of pid %d (started %s), which is no longer running",
                self.folder,
                owner["pid"],
                owner["started"],
            )
            _remove_if_unchanged(self.path, found)
        raise ConfigError(f"{self.path}: could not take the lock; other processes keep taking it")

    def _remove_created_folder(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                os.rmdir(self.folder)  # only when still empty


def _owner_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "process_start": _process_start(os.getpid()),
    }


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state, ppid, ...), or None when unavailable (not Linux, gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the command name in parentheses may hold spaces


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks after boot (stat field 22): tells a reused pid apart."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _is_alive(owner: dict) -> bool:
    """Whether the process that wrote lock record ``owner`` still runs (assumed for another host)."""
    if owner["host"] != socket.gethostname() or os.name == "nt":  # Windows: os.kill(pid, 0) would end pid
        return True
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return True
    recorded = owner.get("process_start")
    return fields[0] != "Z" and (recorded is None or recorded == fields[19])


def _foreign_live_owner(folder: str) -> dict | None:
    """The lock record of ``folder`` when a live process other than this one holds it, else None."""
    raw = _read_raw(os.path.join(folder, LOCK_NAME))
    if raw is None:
        return None
    owner = _parse_lock(os.path.join(folder, LOCK_NAME), raw)
    ours = owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    return None if ours or not _is_alive(owner) else owner


def _parse_lock(path: str, raw: bytes) -> dict:
    """The lock record in ``raw``; ConfigError when it is not one keras-zoo wrote (then it is never removed)."""
    try:
        owner = json.loads(raw)
        valid = isinstance(owner, dict) and {"pid", "host", "started"} <= owner.keys()
        valid = valid and type(owner["pid"]) is int and 0 < owner["pid"] < 2**31
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{path}: not a keras-zoo lock file; remove it if no training run uses this folder")
    return owner


def _read_raw(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _link_exclusive(path: str, raw: bytes) -> bool:
    """Creates ``path`` holding ``raw`` atomically; False when ``path`` exists already."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=LOCK_NAME + ".", dir=os.path.dirname(path) or ".")
    except OSError as exc:
        raise _unwritable(os.path.dirname(path), exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)


def _remove_if_unchanged(path: str, expected: bytes) -> None:
    """Removes the stale lock ``path`` unless another process replaced it first (then that lock is put back)."""
    aside = f"{path}.stale-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read_raw(aside) != expected:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    os.remove(aside)


def _in_use(folder: str, owner: dict) -> ConfigError:
    return ConfigError(
        f"{folder}: is in use by pid {owner['pid']} on {owner['host']} since {owner['started']}; "
        "wait for that run to end or choose another --output"
    )


# --------------------------------------------------------------------------------------- replaced outputs


def _is_onnx_file(path: str) -> bool:
    """A regular file starting like a serialized ONNX ModelProto: ir_version (field 1), then field 2-8."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        return False
    with open(path, "rb") as f:
        head = f.read(3)
    return len(head) == 3 and head[0] == 0x08 and 0 < head[1] < 0x80 and head[2] in ONNX_SECOND_TAGS


def _is_savedmodel(path: str) -> bool:
    """A real folder holding ``saved_model.pb`` and nothing but SavedModel entries (variables: its files only)."""
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        return False
    names = os.listdir(path)
    if "saved_model.pb" not in names:
        return False
    for name in names:
        if name not in SAVEDMODEL_ENTRIES:
            return False
        mode = os.lstat(os.path.join(path, name)).st_mode
        if not (stat.S_ISDIR(mode) if SAVEDMODEL_ENTRIES[name] else stat.S_ISREG(mode)):
            return False
    variables = os.path.join(path, "variables")
    return not os.path.isdir(variables) or all(VARIABLES_FILE.fullmatch(n) for n in os.listdir(variables))


# kind -> (recogniser, what it is called in messages)
OUTPUT_KINDS = {
    "onnx": (_is_onnx_file, "an ONNX model file"),
    "savedmodel": (_is_savedmodel, "a SavedModel folder"),
}


def check_replaceable(path: str, kind: str, overwrite: bool) -> None:
    """Raises ConfigError unless ``path`` is free, or (with ``overwrite``) an output of ``kind`` to replace.

    ``kind`` is a key of :data:`OUTPUT_KINDS`. Call it before the work that produces the new output, so a
    refused ``--output`` costs nothing; :func:`replace_output` checks again.
    """
    recognise, what = OUTPUT_KINDS[kind]
    if not os.path.lexists(path):
        return
    if not recognise(path):
        raise ConfigError(
            f"{path}: exists and is not {what}; --overwrite replaces only {what}, choose another --output"
        )
    if not overwrite:
        raise ConfigError(f"{path}: exists; pass --overwrite to replace it")


def replace_output(new: str, path: str, kind: str, overwrite: bool) -> None:
    """Moves the finished output ``new`` to ``path``, replacing only an earlier output of the same ``kind``.

    A file is replaced by one atomic rename. A folder (SavedModel) is renamed into a new temporary sibling
    ``.replaced-*``, ``new`` is renamed into place (on failure the old folder is put back), and only then the
    moved folder, which was checked to be a SavedModel, is deleted: nothing is removed under a name the user
    gave, and at any moment the old or the new output is complete on disk. ``new`` must be on the same file
    system as ``path`` (write it into a temporary folder beside ``path``).

    Raises:
        ConfigError: as :func:`check_replaceable`; nothing is moved then.
    """
    check_replaceable(path, kind, overwrite)
    if not (os.path.lexists(path) and stat.S_ISDIR(os.lstat(path).st_mode)):
        os.replace(new, path)
        return
    trash = tempfile.mkdtemp(prefix=".replaced-", dir=os.path.dirname(os.path.abspath(path)))
    old = os.path.join(trash, os.path.basename(os.path.abspath(path)))
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        os.rmdir(trash)
        raise
    shutil.rmtree(trash)

"""Run folders are never overwritten or shared; --overwrite replaces only what the command itself wrote.

Every data-loss case compares the user's earlier files byte for byte afterwards (:func:`snapshot`)."""

import datetime
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from keras_zoo import run_folder
from keras_zoo.errors import ConfigError
from keras_zoo.run_folder import (
    RunLock,
    check_replaceable,
    default_output,
    prepare_run_folder,
    replace_output,
    require_complete_run,
)

NOW = datetime.datetime(2026, 12, 4, 20, 30, 5)
ONNX_BYTES = (
    b"\x08\x08\x12\x07tf2onnx\x1a\x061.17.0:\x02\x0a\x00"  # the head tf2onnx writes, then a tiny graph
)
HOLD_LOCK = "import sys\nfrom keras_zoo.run_folder import RunLock\nwith RunLock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()\n"  # fmt: skip


def snapshot(root) -> dict:
    """``{relative path: file bytes, or None for a folder}`` of everything under ``root``."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                tree[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return tree


def make_run(folder) -> dict:
    """A finished training run's folder (args.yaml, checkpoints with known bytes, history); returns its snapshot."""
    os.makedirs(folder / "checkpoints")
    (folder / "args.yaml").write_text("model: unet\nepochs: 3\n")
    (folder / "checkpoints" / "best.h5").write_bytes(bytes(range(256)) * 4)
    (folder / "checkpoints" / "last.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x01" * 100)
    (folder / "history.csv").write_text("epoch,loss\n0,0.7\n1,0.5\n")
    return snapshot(folder)


def make_savedmodel(folder, payload: bytes = b"graph") -> None:
    os.makedirs(folder / "variables")
    os.makedirs(folder / "assets")
    (folder / "saved_model.pb").write_bytes(payload)
    (folder / "fingerprint.pb").write_bytes(b"fp")
    (folder / "variables" / "variables.index").write_bytes(b"idx")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(payload * 3)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture
def other_process():
    """A live process of this host (not this one), stopped after the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc.pid
    proc.stdin.close()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def write_lock(folder, pid: int, host: str | None = None, process_start: str | None = None) -> bytes:
    record = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-12-04T20:00:00"}
    record["process_start"] = process_start or run_folder._process_start(pid)
    raw = json.dumps(record).encode()
    os.makedirs(folder, exist_ok=True)
    (folder / ".lock").write_bytes(raw)
    return raw


# ------------------------------------------------------------------------------------------- default_output


def test_default_output_is_timm_style_and_unique(tmp_path):
    root = tmp_path / "output"
    first = default_output("unet", root=str(root), now=NOW)
    assert first == str(root / "train" / "20261204-203005-unet") and os.path.isdir(first)
    # the same model in the same second (a sweep started by a script): a folder each, nothing shared
    assert default_output("unet", root=str(root), now=NOW) == first + "-1"
    assert default_output("unet", root=str(root), now=NOW) == first + "-2"
    assert default_output("genesis", root=str(root), now=NOW).endswith("20261204-203005-genesis")


def test_default_output_under_a_file_is_one_line_error(tmp_path):
    (tmp_path / "output").write_bytes(b"not a folder")
    with pytest.raises(ConfigError) as exc:
        default_output("unet", root=str(tmp_path / "output"), now=NOW)
    assert f"{tmp_path / 'output'}/train: cannot write there (Not a directory)" in one_line(exc)
    assert (tmp_path / "output").read_bytes() == b"not a folder"


# ----------------------------------------------------------------------------------------- prepare_run_folder


def test_new_run_gets_a_new_or_empty_folder(tmp_path):
    assert prepare_run_folder(str(tmp_path / "a" / "b"), resume=False, overwrite=False) is None
    assert os.listdir(tmp_path / "a" / "b") == []
    assert prepare_run_folder(str(tmp_path / "a" / "b"), resume=False, overwrite=True) is None


def test_new_run_refuses_an_earlier_run_and_keeps_it(tmp_path):
    before = make_run(tmp_path / "out")
    with pytest.raises(ConfigError) as exc:
        prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=False)
    message = one_line(exc)
    assert str(tmp_path / "out") in message and "--resume" in message and "--overwrite" in message
    assert snapshot(tmp_path / "out") == before


def test_new_run_refuses_a_folder_of_other_files_even_with_overwrite(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("\\chapter{One}")
    before = snapshot(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(ConfigError) as exc:
            prepare_run_folder(str(tmp_path / "home"), resume=False, overwrite=overwrite)
        assert "home" in one_line(exc)
    assert snapshot(tmp_path) == before


def test_overwrite_moves_the_earlier_run_aside(tmp_path):
    before = make_run(tmp_path / "out")
    aside = prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d")
    assert os.path.dirname(aside) == str(tmp_path) and os.path.basename(aside).startswith(f"out.old-{stamp}")
    assert snapshot(aside) == before  # every file kept, byte for byte
    assert os.listdir(tmp_path / "out") == []


def test_two_overwrites_keep_both_earlier_runs(tmp_path):
    first = make_run(tmp_path / "out")
    aside1 = prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
    (tmp_path / "out" / "args.yaml").write_text("model: genesis\n")
    second = snapshot(tmp_path / "out")
    aside2 = prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
    assert aside1 != aside2 and snapshot(aside1) == first and snapshot(aside2) == second


def test_overwrite_leaves_a_stale_lock_for_runlock_to_take(tmp_path):
    make_run(tmp_path / "out")
    raw = write_lock(tmp_path / "out", dead_pid())
    aside = prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
    assert ".lock" not in os.listdir(aside) and (tmp_path / "out" / ".lock").read_bytes() == raw


def test_resume_needs_an_earlier_run(tmp_path):
    with pytest.raises(ConfigError) as exc:
        prepare_run_folder(str(tmp_path / "missing"), resume=True, overwrite=False)
    assert "--resume" in one_line(exc) and not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError):
        prepare_run_folder(str(tmp_path / "empty"), resume=True, overwrite=False)
    before = make_run(tmp_path / "out")
    assert prepare_run_folder(str(tmp_path / "out"), resume=True, overwrite=False) is None
    assert snapshot(tmp_path / "out") == before


def test_resume_and_overwrite_conflict(tmp_path):
    before = make_run(tmp_path / "out")
    with pytest.raises(ConfigError) as exc:
        prepare_run_folder(str(tmp_path / "out"), resume=True, overwrite=True)
    assert "--resume and --overwrite" in one_line(exc)
    assert snapshot(tmp_path / "out") == before


def test_output_that_is_a_file_is_one_line_error(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"keep me")
    for resume, overwrite in ((False, False), (False, True), (True, False)):
        with pytest.raises(ConfigError) as exc:
            prepare_run_folder(str(tmp_path / "notes.txt"), resume=resume, overwrite=overwrite)
        assert "notes.txt: is a file" in one_line(exc)
    assert (tmp_path / "notes.txt").read_bytes() == b"keep me"


@pytest.mark.parametrize("path", ["/proc/keras-zoo-run", "/proc/self/keras-zoo-run"])
def test_output_under_proc_is_one_line_error(path):
    with pytest.raises(ConfigError) as exc:
        prepare_run_folder(path, resume=False, overwrite=False)
    assert path in one_line(exc) and "--output" in str(exc.value)


def test_read_only_output_is_one_line_error(tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as root: chmod does not make a folder read-only")
        for output in (tmp_path / "ro", tmp_path / "ro" / "run"):
            with pytest.raises(ConfigError) as exc:
                prepare_run_folder(str(output), resume=False, overwrite=False)
            assert str(output) in one_line(exc)
    finally:
        os.chmod(tmp_path / "ro", 0o755)


def test_read_only_file_system_is_one_line_error(tmp_path, monkeypatch):
    """As root, chmod cannot make a folder read-only; a read-only mount answers EROFS to every write."""

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(run_folder.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(run_folder.os, "makedirs", read_only)
    for output in (tmp_path / "out", tmp_path / "new"):
        with pytest.raises(ConfigError) as exc:
            prepare_run_folder(str(output), resume=False, overwrite=False)
        assert f"{output}: cannot write there (Read-only file system)" in one_line(exc)
    with pytest.raises(ConfigError, match="Read-only file system"), RunLock(str(tmp_path / "out")):
        pass
    assert os.listdir(tmp_path) == ["out"]


def test_overwrite_refuses_a_run_in_use_and_moves_nothing(tmp_path, other_process):
    before = make_run(tmp_path / "out")
    raw = write_lock(tmp_path / "out", other_process)
    with pytest.raises(ConfigError) as exc:
        prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
    assert f"in use by pid {other_process}" in one_line(exc)
    assert snapshot(tmp_path / "out") == {**before, ".lock": raw}
    assert os.listdir(tmp_path) == ["out"]


def test_prepare_inside_own_lock_ignores_it(tmp_path):
    before = make_run(tmp_path / "out")
    with RunLock(str(tmp_path / "out")):
        aside = prepare_run_folder(str(tmp_path / "out"), resume=False, overwrite=True)
        assert os.listdir(tmp_path / "out") == [".lock"]
    assert snapshot(aside) == before and os.listdir(tmp_path / "out") == []


# ------------------------------------------------------------------------------------------------- RunLock


def test_lock_records_owner_and_is_removed_on_exit(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        owner = json.loads((tmp_path / ".lock").read_bytes())
        assert lock.path == str(tmp_path / ".lock")
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert (
            abs(datetime.datetime.fromisoformat(owner["started"]) - datetime.datetime.now()).total_seconds()
            < 60
        )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_lock_is_removed_on_exceptions(tmp_path, error):
    (tmp_path / "args.yaml").write_text("model: unet\n")
    with pytest.raises(error), RunLock(str(tmp_path)):
        raise error()
    assert os.listdir(tmp_path) == ["args.yaml"]
    with RunLock(str(tmp_path)):  # free again
        pass


def test_second_lock_in_the_same_process_is_refused(tmp_path):
    with RunLock(str(tmp_path)):
        raw = (tmp_path / ".lock").read_bytes()
        with pytest.raises(ConfigError) as exc, RunLock(str(tmp_path)):
            pass
        assert f"is in use by pid {os.getpid()}" in one_line(exc)
        assert (tmp_path / ".lock").read_bytes() == raw  # the refused lock left the owner's alone


def test_lock_held_by_another_process(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        for _ in range(2):
            with pytest.raises(ConfigError) as exc, RunLock(str(tmp_path)):
                pass
            assert f"{tmp_path}: is in use by pid {proc.pid}" in one_line(exc)
        with pytest.raises(ConfigError, match="training in progress"):
            require_complete_run(str(tmp_path))
    finally:
        proc.stdin.close()
        assert proc.wait() == 0
    assert os.listdir(tmp_path) == []  # the owner removed its lock on exit
    with RunLock(str(tmp_path)):
        pass


def test_only_one_of_several_processes_started_together_gets_the_lock(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        deadline = time.monotonic() + 30
        while sum(p.poll() is not None for p in procs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        losers = [p for p in procs if p.poll() is not None]
        (winner,) = [p for p in procs if p.poll() is None]  # holds the lock until its stdin closes
        assert winner.stdout.readline().strip() == "locked"
        for loser in losers:
            assert loser.returncode == 1 and f"is in use by pid {winner.pid}" in loser.stderr.read()
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    assert os.listdir(tmp_path) == []


def test_stale_lock_of_a_finished_process_is_taken_over(tmp_path, caplog):
    pid = dead_pid()
    write_lock(tmp_path, pid)
    with caplog.at_level(logging.WARNING, logger="keras_zoo.run_folder"), RunLock(str(tmp_path)):
        assert json.loads((tmp_path / ".lock").read_bytes())["pid"] == os.getpid()
    assert f"taking over the lock of pid {pid}" in caplog.text
    assert os.listdir(tmp_path) == []


def test_stale_lock_of_a_reused_pid_is_taken_over(tmp_path, caplog, other_process):
    """The pid is alive again, but as a process started after the lock was written: the owner is gone."""
    if run_folder._process_start(other_process) is None:
        pytest.skip("needs /proc to tell process start times")
    write_lock(tmp_path, other_process, process_start="1")
    with caplog.at_level(logging.WARNING, logger="keras_zoo.run_folder"), RunLock(str(tmp_path)):
        pass
    assert f"taking over the lock of pid {other_process}" in caplog.text


def test_lock_of_another_host_is_respected(tmp_path):
    raw = write_lock(tmp_path, dead_pid(), host="other-node-7")
    with pytest.raises(ConfigError) as exc, RunLock(str(tmp_path)):
        pass
    assert "on other-node-7" in one_line(exc) and (tmp_path / ".lock").read_bytes() == raw


def test_a_lock_file_keras_zoo_did_not_write_is_never_removed(tmp_path):
    (tmp_path / ".lock").write_bytes(b"user's own .lock file")
    with pytest.raises(ConfigError) as exc, RunLock(str(tmp_path)):
        pass
    assert "not a keras-zoo lock file" in one_line(exc)
    assert snapshot(tmp_path) == {".lock": b"user's own .lock file"}


def test_lock_creates_and_removes_only_its_own_empty_folder(tmp_path):
    with RunLock(str(tmp_path / "new")):
        assert os.listdir(tmp_path / "new") == [".lock"]
    assert not (tmp_path / "new").exists()
    with RunLock(str(tmp_path / "kept")):
        (tmp_path / "kept" / "args.yaml").write_text("model: unet\n")
    assert os.listdir(tmp_path / "kept") == ["args.yaml"]
    (tmp_path / "empty").mkdir()
    with RunLock(str(tmp_path / "empty")):
        pass
    assert (tmp_path / "empty").is_dir()


def test_lock_on_a_file_or_under_proc_is_one_line_error(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"keep me")
    for path in (str(tmp_path / "notes.txt"), "/proc/keras-zoo-run"):
        with pytest.raises(ConfigError) as exc, RunLock(path):
            pass
        assert path in one_line(exc)
    assert snapshot(tmp_path) == {"notes.txt": b"keep me"}


# ---------------------------------------------------------------------------------------- require_complete_run


def test_complete_run_is_accepted_also_after_a_crash(tmp_path):
    make_run(tmp_path / "out")
    require_complete_run(str(tmp_path / "out"))
    write_lock(tmp_path / "out", dead_pid())  # the lock a killed run leaves behind
    require_complete_run(str(tmp_path / "out"))
    (tmp_path / "copied").mkdir()  # a run's args.yaml copied beside its best checkpoint
    (tmp_path / "copied" / "args.yaml").write_text("model: unet\n")
    (tmp_path / "copied" / "best.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    require_complete_run(str(tmp_path / "copied"))


def test_incomplete_or_busy_run_is_refused(tmp_path, other_process):
    make_run(tmp_path / "out")
    os.remove(tmp_path / "out" / "args.yaml")
    with pytest.raises(ConfigError) as exc:
        require_complete_run(str(tmp_path / "out"))
    assert "no args.yaml" in one_line(exc)
    with pytest.raises(ConfigError, match="no args.yaml"):
        require_complete_run(str(tmp_path / "missing"))
    make_run(tmp_path / "busy")
    write_lock(tmp_path / "busy", other_process)
    with pytest.raises(ConfigError) as exc:
        require_complete_run(str(tmp_path / "busy"))
    assert f"training in progress (pid {other_process}" in one_line(exc)


# ------------------------------------------------------------------------------------------- replace_output


def test_replace_writes_a_new_output(tmp_path):
    (tmp_path / "new.onnx").write_bytes(ONNX_BYTES)
    replace_output(str(tmp_path / "new.onnx"), str(tmp_path / "model.onnx"), "onnx", overwrite=False)
    assert snapshot(tmp_path) == {"model.onnx": ONNX_BYTES}


def test_existing_output_needs_overwrite_and_is_kept_without_it(tmp_path):
    (tmp_path / "model.onnx").write_bytes(ONNX_BYTES)
    make_savedmodel(tmp_path / "saved")
    (tmp_path / "new").write_bytes(b"new")
    before = snapshot(tmp_path)
    for path, kind in (("model.onnx", "onnx"), ("saved", "savedmodel")):
        with pytest.raises(ConfigError) as exc:
            replace_output(str(tmp_path / "new"), str(tmp_path / path), kind, overwrite=False)
        assert "exists; pass --overwrite" in one_line(exc)
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_an_onnx_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(ONNX_BYTES)
    (tmp_path / "new.onnx").write_bytes(ONNX_BYTES + b"\x42\x00")
    replace_output(str(tmp_path / "new.onnx"), str(tmp_path / "model.onnx"), "onnx", overwrite=True)
    assert snapshot(tmp_path) == {"model.onnx": ONNX_BYTES + b"\x42\x00"}


def test_overwrite_replaces_a_savedmodel_folder_whole(tmp_path):
    make_savedmodel(tmp_path / "saved", b"old")
    make_savedmodel(tmp_path / "scratch" / "saved", b"new")
    expected = snapshot(tmp_path / "scratch" / "saved")
    replace_output(str(tmp_path / "scratch" / "saved"), str(tmp_path / "saved"), "savedmodel", overwrite=True)
    assert snapshot(tmp_path / "saved") == expected
    assert sorted(os.listdir(tmp_path)) == ["saved", "scratch"]  # no .replaced-* left over


@pytest.mark.parametrize("kind", ["onnx", "savedmodel"])
def test_overwrite_refuses_a_training_run_folder(tmp_path, kind):
    before = make_run(tmp_path / "out")
    (tmp_path / "new").write_bytes(ONNX_BYTES)
    with pytest.raises(ConfigError) as exc:
        replace_output(str(tmp_path / "new"), str(tmp_path / "out"), kind, overwrite=True)
    assert str(tmp_path / "out") in one_line(exc) and "choose another --output" in str(exc.value)
    assert snapshot(tmp_path / "out") == before and (tmp_path / "new").read_bytes() == ONNX_BYTES


def test_overwrite_refuses_files_of_another_kind(tmp_path):
    (tmp_path / "notes.onnx").write_text("my notes, named .onnx by mistake")
    (tmp_path / "model.onnx").write_bytes(ONNX_BYTES)
    make_savedmodel(tmp_path / "saved")
    (tmp_path / "saved" / "README.md").write_text("my notes about this model")
    os.symlink(tmp_path / "model.onnx", tmp_path / "link.onnx")
    before = snapshot(tmp_path)
    refused = [
        ("notes.onnx", "onnx"),
        ("model.onnx", "savedmodel"),
        ("saved", "onnx"),
        ("saved", "savedmodel"),
    ]
    refused.append(("link.onnx", "onnx"))
    for path, kind in refused:
        with pytest.raises(ConfigError, match="exists and is not"):
            check_replaceable(str(tmp_path / path), kind, overwrite=True)
    assert snapshot(tmp_path) == before


def test_failed_replace_puts_the_old_savedmodel_back(tmp_path):
    make_savedmodel(tmp_path / "saved")
    before = snapshot(tmp_path)
    with pytest.raises(FileNotFoundError):
        replace_output(str(tmp_path / "never-written"), str(tmp_path / "saved"), "savedmodel", overwrite=True)
    assert snapshot(tmp_path) == before

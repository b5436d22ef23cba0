"""Nothing lost: runs killed with SIGKILL (also mid-checkpoint) resume to the same weights; a full disk keeps
the previous checkpoint.

The CI test trains the toy task of tests/cli/test_train_cli.py in subprocesses (``tests/run_toy_train.py
--deterministic --seed 0``; a TensorFlow start-up per process is all a U-Net would add at this size); the
large tests train the tiny U-Net recipe (``python train.py --model unet ...``). Each run is killed at random
moments (after a checkpoint and while one is being written), resumed with ``--resume`` until it finishes, and
its final weights and optimizer state are compared bitwise with those of an uninterrupted run (CPU,
deterministic ops).
"""

from __future__ import annotations

import errno
import glob
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from keras_zoo.callbacks import read_checkpoint_state
from keras_zoo.weights import read_h5_weights

REPO = pathlib.Path(__file__).resolve().parents[1]
TOY = [str(REPO / "tests" / "run_toy_train.py"), "--steps-per-epoch", "150", "--batch-size", "4",
       "--deterministic", "--seed", "0", "--verbose", "0", "--device", "cpu"]  # fmt: skip
TINY_UNET = [
    str(REPO / "train.py"), "--model", "unet", "--filters", "2", "--input-size", "32", "32", "--steps-per-epoch", "3",
    "--batch-size", "2", "--deterministic", "--seed", "0", "--verbose", "0", "--device", "cpu",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    env.setdefault("KERAS_BACKEND", "tensorflow")
    return env


def _start(recipe: list[str], output: pathlib.Path, epochs: int, resume: bool) -> subprocess.Popen:
    argv = [sys.executable, *recipe, "--epochs", str(epochs), "--output", str(output)]
    if resume:
        argv.append("--resume")
    return subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _mtime(path: pathlib.Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _kill_at_random_moment(
    proc: subprocess.Popen, checkpoints: pathlib.Path, rng: random.Random, mid_checkpoint: bool
) -> str:
    """SIGKILLs ``proc`` while it is writing a checkpoint or shortly after one; returns what happened."""
    last = checkpoints / "last.h5"
    before = _mtime(last)
    while proc.poll() is None:
        if mid_checkpoint and glob.glob(str(checkpoints / ".*.tmp")):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed mid-checkpoint"
        if not mid_checkpoint and _mtime(last) != before:
            time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed after a checkpoint"
        time.sleep(0.002)
    return f"finished (exit {proc.returncode})"


def _run_with_kills(recipe: list[str], output: pathlib.Path, epochs: int, kills: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    events = []
    for attempt in range(kills + 20):
        resume = (output / "checkpoints/last.h5").exists()
        proc = _start(recipe, output, epochs, resume)
        if attempt < kills:
            events.append(
                _kill_at_random_moment(proc, output / "checkpoints", rng, mid_checkpoint=attempt % 2 == 1)
            )
        else:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            events.append("finished")
            return events
        last = output / "checkpoints/last.h5"
        if last.exists():  # whatever the kill interrupted, last.h5 is a complete checkpoint
            state = read_checkpoint_state(str(last))
            assert 1 <= state.epoch <= epochs
            with h5py.File(last, "r") as f:
                assert "keras_zoo_state" in f
        if proc.returncode == 0:
            return events
    raise AssertionError(f"run never finished: {events}")


def _assert_same_weights(a: pathlib.Path, b: pathlib.Path) -> None:
    wa, wb = read_h5_weights(a), read_h5_weights(b)
    assert list(wa) == list(wb)
    for name in wa:
        for x, y in zip(wa[name], wb[name]):
            np.testing.assert_array_equal(x, y, err_msg=name)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:  # optimizer state too
        oa, ob = fa["keras_zoo_state/optimizer"], fb["keras_zoo_state/optimizer"]
        assert sorted(oa) == sorted(ob)
        for key in oa:
            np.testing.assert_array_equal(oa[key][()], ob[key][()], err_msg=f"optimizer {key}")


def _check_crash_resume(
    recipe: list[str], tmp_path: pathlib.Path, epochs: int, kills: int, seed: int
) -> list[str]:
    straight = _start(recipe, tmp_path / "straight", epochs, resume=False)
    events = _run_with_kills(recipe, tmp_path / "killed", epochs, kills, seed)
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err.decode()[-2000:]
    assert read_checkpoint_state(str(tmp_path / "killed/checkpoints/last.h5")).epoch == epochs
    _assert_same_weights(tmp_path / "straight/checkpoints/last.h5", tmp_path / "killed/checkpoints/last.h5")
    return events


def test_killed_runs_resume_to_the_uninterrupted_weights(tmp_path):
    events = _check_crash_resume(TOY, tmp_path, epochs=3, kills=2, seed=0)
    # A mid-checkpoint kill can miss its window (the write is faster than the 2 ms polling) and the run then
    # finishes on its own; at least one kill must have happened, and the weights were compared bitwise above.
    assert events[0].startswith("killed") and events[-1].startswith("finished"), events


@pytest.mark.large
def test_unet_many_random_kills(tmp_path):
    events = _check_crash_resume([*TINY_UNET, "--dropout", "0"], tmp_path, epochs=6, kills=5, seed=1)
    assert events.count("killed mid-checkpoint") >= 1, events


@pytest.mark.large
@pytest.mark.xfail(
    strict=True,
    reason="Dropout's SeedGenerator state is not stored in the checkpoint: a resumed run draws other dropout "
    "masks (max abs weight difference ~4e-4 after 2 epochs); bitwise with --dropout 0",
)
def test_unet_with_dropout_resumes_bitwise(tmp_path):
    _check_crash_resume(TINY_UNET, tmp_path, epochs=3, kills=1, seed=2)


def test_disk_full_keeps_previous_checkpoint_and_exits_2(tmp_path, capsys, monkeypatch):
    from keras_zoo.callbacks import checkpoint
    from keras_zoo.cli import train
    from tests.cli.test_train_cli import register_toy

    register_toy(monkeypatch.setitem)
    argv = ["--model", "toy", "--output", str(tmp_path / "out"), "--verbose", "0"]
    assert train.main([*argv, "--epochs", "1"]) == 0
    last = tmp_path / "out/checkpoints/last.h5"
    good = last.read_bytes()

    def disk_full(group, model):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_h5_weights_group", disk_full)
    assert train.main([*argv, "--epochs", "3", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "No space left on device" in err and "previous files kept" in err and "checkpoints" in err
    assert last.read_bytes() == good
    assert read_checkpoint_state(str(last)).epoch == 1
    assert not glob.glob(str(tmp_path / "out/checkpoints/.*.tmp"))

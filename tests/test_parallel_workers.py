"""The suite's worker count under ``-n auto`` (pytest-xdist), chosen in tests/conftest.py."""

import os

import pytest

from tests import conftest


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (3, 3), (16, conftest.MAX_WORKERS)])
def test_auto_workers_follow_the_usable_cores_up_to_the_cap(monkeypatch, cores, workers):
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert conftest.pytest_xdist_auto_num_workers(config=None) == workers


def test_environment_variable_overrides_the_count(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "7")
    assert conftest.pytest_xdist_auto_num_workers(config=None) == 7

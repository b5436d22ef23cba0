"""Error types raised for user mistakes.

Every error a user can cause (a bad path, a corrupt file, an option that does not fit) is raised as a
subclass of :class:`KerasZooError` with a one-line message that names the file or option and the problem.
The CLI prints that line and exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class KerasZooError(Exception):
    """Base class of the errors caused by input, configuration or files a user supplied."""


class DataError(KerasZooError, ValueError):
    """A data file or folder is missing, unreadable or does not hold what the reader expects."""


class ConfigError(KerasZooError, ValueError):
    """An option or argument value is invalid, or two options conflict."""


class WeightsError(KerasZooError, ValueError):
    """A weight or checkpoint file is missing, unreadable or belongs to another architecture."""


def data_error(path: str | os.PathLike, problem: str) -> DataError:
    """Returns a :class:`DataError` whose message is ``"<path>: <problem>"``."""
    return DataError(f"{os.fspath(path)}: {problem}")


def require_file(path: str | os.PathLike, what: str = "file") -> str:
    """Returns ``path`` as a string after checking that it is an existing, non-empty file.

    Raises:
        DataError: naming the path when it is missing, a folder, or empty.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise data_error(path, f"{what} not found")
    if os.path.isdir(path):
        raise data_error(path, f"expected a {what}, found a folder")
    if os.path.getsize(path) == 0:
        raise data_error(path, f"{what} is empty (0 bytes)")
    return path


def require_dir(path: str | os.PathLike, what: str = "folder") -> str:
    """Returns ``path`` as a string after checking that it is an existing folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise data_error(path, f"{what} not found")
    if not os.path.isdir(path):
        raise data_error(path, f"expected a {what}, found a file")
    return path

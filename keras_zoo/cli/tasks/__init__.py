"""Training recipes per network, looked up by the registry name.

Every module of this package but :mod:`~keras_zoo.cli.tasks.base` holds one :class:`Task` subclass whose
``name`` is a registered model; they are found by listing the package, so adding a network's recipe is
adding its module. Importing them loads neither Keras nor the dataset readers.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import pkgutil

from keras_zoo.cli.tasks.base import Data, Task
from keras_zoo.errors import ConfigError


@functools.cache
def _task_classes() -> dict[str, type[Task]]:
    found: dict[str, type[Task]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, Task) and value is not Task and value.name:
                if value.__module__ == module.__name__:
                    found[value.name] = value
    return found


def task_names() -> list[str]:
    """Names accepted by ``--model``."""
    return sorted(_task_classes())


def get_task(name: str) -> Task:
    """Returns a fresh :class:`Task` for ``name``."""
    classes = _task_classes()
    if name not in classes:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(sorted(classes))}")
    return classes[name]()


def reference_args(name: str) -> argparse.Namespace:
    """The train CLI's arguments for ``--model name`` alone: the reference recipe, defaults resolved."""
    from keras_zoo.cli.train import task_parser

    task = get_task(name)
    args = task_parser(task).parse_args(["--model", name])
    task.resolve_defaults(args)
    return args


def reference_batch(name: str) -> int:
    """The reference recipe's batch size of ``name`` (e.g. 2 for U-Net, 64 for AmoebaNet-D)."""
    return int(reference_args(name).batch_size)


__all__ = ["Data", "Task", "get_task", "reference_args", "reference_batch", "task_names"]

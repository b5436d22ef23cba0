"""Training recipes per network, looked up by the registry name."""

from __future__ import annotations

import importlib

from keras_zoo.cli.tasks.base import Data, Task
from keras_zoo.errors import ConfigError

_TASKS = {
    "unet": "keras_zoo.cli.tasks.unet:UNetTask",
    "genesis": "keras_zoo.cli.tasks.genesis:GenesisTask",
    "cascadenet": "keras_zoo.cli.tasks.cascadenet:CascadeNetTask",
    "deeplabv3plus": "keras_zoo.cli.tasks.deeplab:DeepLabTask",
    "amoebanet": "keras_zoo.cli.tasks.amoebanet:AmoebaNetTask",
}


def task_names() -> list[str]:
    """Names accepted by ``--model``."""
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """Returns a fresh :class:`Task` for ``name``."""
    if name not in _TASKS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(task_names())}")
    module, cls = _TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Data", "Task", "get_task", "task_names"]

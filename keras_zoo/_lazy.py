"""Package attributes that import their module on first use (PEP 562), so package imports stay light."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(namespace: dict, package: str, sources: dict[str, str]) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names live in other modules.

    Args:
        namespace: the package's ``globals()``; a loaded name is cached there, and ``__dir__`` lists its
            ``__all__``.
        package: the package's name, for the AttributeError message.
        sources: attribute name -> module that defines it.
    """

    def __getattr__(name: str):
        if name in sources:
            value = getattr(importlib.import_module(sources[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return list(namespace["__all__"])

    return __getattr__, __dir__

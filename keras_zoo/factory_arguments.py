"""A model factory's keyword arguments checked against its type hints, so that a value of the wrong type is
named at once (``filters="8"`` would otherwise fail deep inside Keras: "'<' not supported between 'str'
and 'int'")."""

from __future__ import annotations

import numbers
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from keras_zoo.errors import ConfigError


def check_factory_arguments(name: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Raises ConfigError for the first argument whose value does not fit the factory's type hint.

    Checked hints: ``int`` (not bool), ``float`` (any real number), ``bool``, ``str``, ``Sequence[...]`` of
    those (a string is not a sequence here) and unions of them with None; other hints (``os.PathLike``,
    callables) are not checked.

    Args:
        name: the network's registry name, for the message.
        factory: the model factory.
        kwargs: the keyword arguments it will be called with.
    """
    try:
        hints = typing.get_type_hints(factory)
    except Exception:  # noqa: BLE001 - hints naming what only type checkers import: nothing to check
        return
    for key, value in kwargs.items():
        expected = _expected(hints[key], value) if key in hints else None
        if expected is not None:
            raise ConfigError(f"{name}: {key} must be {expected}, got {value!r}")


def _expected(hint: Any, value: Any) -> str | None:
    """What ``value`` should be for ``hint`` when it does not fit, else None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        wanted = [_expected(arg, value) for arg in args if arg is not type(None)]
        if None in wanted:
            return None
        return " or ".join(wanted) + (" or None" if type(None) in args else "")
    if hint is bool:
        return None if isinstance(value, bool) or type(value).__name__ == "bool_" else "true or false"
    if hint is int:
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "an integer"
    if hint is float:
        return None if isinstance(value, numbers.Real) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is Sequence and args:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            return "a list"
        items = [_expected(args[0], item) for item in value]
        problem = next((item for item in items if item is not None), None)
        return None if problem is None else f"a list of which each is {problem}"
    return None

"""The model registry: one table feeds ``get_model``, the CLI's ``--model`` choices and the README table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from keras_zoo.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered network.

    Attributes:
        name: registry name, e.g. ``"unet"``.
        factory: function building the ``keras.Model`` from keyword arguments.
        description: one line for listings.
        presets: named keyword-argument sets; ``"default"`` is the reference configuration and ``"tiny"``
            a small configuration that builds in seconds (used by the smoke tests).
        reference_params: the reference's parameter count at the ``"default"`` preset, as the reference
            states it: all weights including batch-norm statistics (``count_params()``), except AmoebaNet-D,
            whose reference states trainable weights only.
    """

    name: str
    factory: Callable[..., Any]
    description: str
    presets: dict[str, dict[str, Any]]
    reference_params: int | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    description: str,
    presets: dict[str, dict[str, Any]] | None = None,
    reference_params: int | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model factory under ``name``."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = ModelEntry(
            name=name,
            factory=factory,
            description=description,
            presets={"default": {}, **(presets or {})},
            reference_params=reference_params,
        )
        return factory

    return decorate


def _load_all() -> None:
    import keras_zoo.models  # noqa: F401  (registers every model on import)


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """Returns the :class:`ModelEntry` of ``name``; raises ConfigError naming the choices if unknown."""
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_model(name: str, preset: str | None = None, **config: Any):
    """Builds a registered model.

    Args:
        name: registry name (see :func:`list_models`).
        preset: optional preset name (``"default"``, ``"tiny"``, ...); ``config`` overrides its values.
        **config: keyword arguments of the model's factory.

    Returns:
        A functional ``keras.Model``.
    """
    entry = get_entry(name)
    kwargs: dict[str, Any] = {}
    if preset is not None:
        if preset not in entry.presets:
            raise ConfigError(
                f"model {name!r} has no preset {preset!r}; choose one of {sorted(entry.presets)}"
            )
        kwargs.update(entry.presets[preset])
    kwargs.update(config)
    return entry.factory(**kwargs)

"""The model registry: one table feeds ``get_model``, the CLI's ``--model`` choices and the README table.

Every module of :mod:`keras_zoo.models` is imported on first lookup (found by listing the package, not by
importing it here, so this module and the models do not import each other); a module registers its network
with :func:`register_model` and further architectures of the same network (e.g. a transfer-learning
target) with :func:`register_variant`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

from keras_zoo.errors import ConfigError
from keras_zoo.factory_arguments import check_factory_arguments


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
        variants: further factories of the same network, by name (e.g. genesis' ``"segmenter"``); they
            take the same kind of keyword arguments and build models that load the network's weights; the
            models they build carry their new head's layer names as ``model.head_layers``.
    """

    name: str
    factory: Callable[..., Any]
    description: str
    presets: dict[str, dict[str, Any]]
    reference_params: int | None = None
    variants: dict[str, Callable[..., Any]] = dataclasses.field(default_factory=dict)

    @property
    def weights_loader(self) -> Callable[..., Any] | None:
        """The network's own loader of pretrained files (reference formats), or None: Keras files only."""
        return _WEIGHTS_LOADERS.get(self.name)

    def builder(self, variant: str | None = None) -> Callable[..., Any]:
        """The factory of ``variant`` (None: the network itself); ConfigError naming the choices if unknown."""
        if variant is None:
            return self.factory
        if variant not in self.variants:
            choices = ", ".join(sorted(self.variants)) or "none"
            raise ConfigError(f"model {self.name!r} has no variant {variant!r}; variants: {choices}")
        return self.variants[variant]


_REGISTRY: dict[str, ModelEntry] = {}
_WEIGHTS_LOADERS: dict[str, Callable[..., Any]] = {}


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


def register_variant(
    name: str, variant: str, head_layers: Sequence[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory`` as architecture ``variant`` of the registered network ``name``.

    The network's module registers it after the network itself (later in the same module).

    Args:
        name: the registered network.
        variant: the variant's name.
        head_layers: names of the layers the variant adds on top of the network (its new head). Every
            model the factory builds carries them as ``model.head_layers``; :mod:`keras_zoo.weights` fills
            them only from a file layer of the same name (a fine-tuned variant's file), never from the
            network's pretraining head of the same shape, and reports them as ``new_head`` otherwise.
    """
    heads = tuple(head_layers)

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(factory)
        def build(*args: Any, **kwargs: Any) -> Any:
            model = factory(*args, **kwargs)
            model.head_layers = heads
            return model

        _REGISTRY[name].variants[variant] = build
        return build

    return decorate


def register_weights_loader(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``loader(model, path, **options) -> LoadReport | None`` for network ``name``.

    The loader reads the network's reference formats (and Keras files); :func:`keras_zoo.weights.load_pretrained`
    dispatches to it.
    """

    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        _WEIGHTS_LOADERS[name] = loader
        return loader

    return decorate


_MODELS_PACKAGE = "keras_zoo.models"


def _load_all() -> None:
    """Imports every module of :mod:`keras_zoo.models` once (each registers its network)."""
    package = importlib.import_module(_MODELS_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{_MODELS_PACKAGE}.{module.name}")


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


def get_model(name: str, preset: str | None = None, variant: str | None = None, **config: Any):
    """Builds a registered model.

    Args:
        name: registry name (see :func:`list_models`).
        preset: optional preset name (``"default"``, ``"tiny"``, ...); ``config`` overrides its values.
        variant: optional architecture variant of the network (see :attr:`ModelEntry.variants`).
        **config: keyword arguments of the model's factory.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ConfigError: an unknown model or preset, or an argument whose type does not fit the factory's hint.
    """
    entry = get_entry(name)
    factory = entry.builder(variant)
    kwargs: dict[str, Any] = {}
    if preset is not None:
        if preset not in entry.presets:
            raise ConfigError(
                f"model {name!r} has no preset {preset!r}; choose one of {sorted(entry.presets)}"
            )
        kwargs.update(entry.presets[preset])
    kwargs.update(config)
    check_factory_arguments(name, factory, kwargs)
    return factory(**kwargs)

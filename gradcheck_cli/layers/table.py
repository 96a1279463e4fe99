"""The name tables of layers and losses and the decorators that fill them. The built-in families
import only this; the lookup (plugins, instantiation, contracts) is registry.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LAYERS: dict[str, type] = {}
LOSSES: dict[str, type] = {}

def register_layer(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make a layer available under ``name`` in configs and the CLI."""

    def deco(cls: type[T]) -> type[T]:
        LAYERS[name] = cls
        return cls

    return deco


def register_loss(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make a loss available under ``name``."""

    def deco(cls: type[T]) -> type[T]:
        LOSSES[name] = cls
        return cls

    return deco


def registered_name(cls: type) -> str | None:
    """The registry name of a built-in layer or loss class (None for any other class)."""
    for table in (LAYERS, LOSSES):
        for name, known in table.items():
            if known is cls:
                return name
    return None

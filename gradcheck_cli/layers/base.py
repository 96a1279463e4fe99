"""The layer and loss protocols, and the small base classes the built-ins share.

A layer is anything with ``params``/``grads`` dicts (same keys and shapes), ``forward(x)`` that
caches what it needs, and ``backward(dout)`` that writes ``grads`` and returns ``dx``. A loss has
``forward(pred, target) -> scalar`` and ``backward() -> dpred``. User plugins follow the same
protocols without inheriting from anything.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


@runtime_checkable
class LayerProtocol(Protocol):
    params: dict[str, Array]
    grads: dict[str, Array]

    def forward(self, x: Array) -> Array: ...

    def backward(self, dout: Array) -> Array: ...


@runtime_checkable
class LossProtocol(Protocol):
    def forward(self, pred: Array, target: Array) -> Any: ...

    def backward(self) -> Array: ...


class Layer:
    """Base of the built-in layers: formulas for ``gradcheck list`` and empty params/grads."""

    forward_formula: ClassVar[str] = ""
    backward_formula: ClassVar[str] = ""
    #: True when output row i depends on input row i only (no batch statistics). Built-in layers
    #: inherit True (those with batch statistics say False); a user subclass inherits it only from
    #: a user class that declares it (see __init_subclass__). The engine verifies it either way.
    row_independent: ClassVar[bool] = True
    #: True when forward/backward work on complex arrays for the complex-step method
    #: (comparisons, max and sign on the real part; no abs/maximum/astype(float) on the data).
    complex_safe: ClassVar[bool] = True
    #: Why a layer is not complex safe (shown to users when complex_safe is False).
    complex_note: ClassVar[str] = ""
    #: True when the layer has no parameters and its output has its input's shape.
    shape_preserving: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class outside gradcheck_cli does not inherit ``row_independent = True`` from a
        built-in: it is a promise about its own forward, so it must make it itself."""
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("gradcheck_cli."):
            owner = next(c for c in cls.__mro__ if "row_independent" in vars(c))
            if owner.__module__.startswith("gradcheck_cli."):
                cls.row_independent = False

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """(parameter count, per-sample output shape) from the spec alone, so a check that is too
        big is refused before anything is allocated; None when unknown (measured after building)."""
        return (0, tuple(input_shape)) if cls.shape_preserving else None

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dout: Array) -> Array:
        raise NotImplementedError


class Loss:
    """Base of the built-in losses."""

    forward_formula: ClassVar[str] = ""
    backward_formula: ClassVar[str] = ""
    #: Target kinds this loss accepts ("classes", "values").
    target_kinds: ClassVar[tuple[str, ...]] = ("values",)
    #: As for Layer: works on complex predictions (complex-step method).
    complex_safe: ClassVar[bool] = True
    complex_note: ClassVar[str] = ""

    def forward(self, pred: Array, target: Array) -> Any:
        raise NotImplementedError

    def backward(self) -> Array:
        raise NotImplementedError


def positive_int(value: object, name: str) -> int:
    """Validate a layer argument that must be a positive integer."""
    from gradcheck_cli.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"'{name}' must be a positive integer, got {value!r}")
    return int(value)


def real_number(value: object, name: str) -> float:
    """Validate a layer argument that must be a real number."""
    from gradcheck_cli.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"'{name}' must be a number, got {value!r}")
    return float(value)

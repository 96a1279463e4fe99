"""Frozen records: a spec model's values, validated elsewhere, without pydantic.

The built-in default network is validated by the pydantic models when its snapshot is written
(spec/builtin.py); the default `gradcheck run` reads it back into these records, which answer the
read API the checker uses of the models (attributes, ``model_copy``, ``model_dump``,
``model_extra``) and share their methods (``chosen_mode``, ``resolved``, ``args``) through the
mixins both inherit. A record is made only from what a model produced, never from user input.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcheck_cli.defaults import ModeChoice, Resolving


class LayerArgs:
    """``args`` of a layer or loss spec: its own arguments (the keys beyond ``type`` and ``fn``)."""

    if TYPE_CHECKING:  # what it reads (not an annotation pydantic would collect)
        model_extra: dict[str, Any] | None

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Record:
    """A model's fields as attributes (frozen); ``hidden`` fields are left out of dumps, as the
    model's ``exclude=True`` fields are; ``extra`` is the model's ``model_extra``."""

    _fields: tuple[str, ...]
    _extra: dict[str, Any] | None
    _hidden: frozenset[str]

    def __init__(
        self, values: dict[str, Any], extra: dict[str, Any] | None = None,
        hidden: Iterable[str] = (),
    ) -> None:  # fmt: skip
        self.__dict__.update(values)
        self.__dict__["_fields"] = tuple(values)
        self.__dict__["_extra"] = dict(extra) if extra is not None else None
        self.__dict__["_hidden"] = frozenset(hidden)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    @property
    def model_extra(self) -> dict[str, Any] | None:
        return dict(self._extra) if self._extra is not None else None

    def _values(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in self._fields}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        values = {**self._values(), **(update or {})}
        return type(self)(values, self._extra, self._hidden)

    def model_dump(
        self, *, mode: str = "python", include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None, exclude_none: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        keep = set(include) if include is not None else None
        drop = set(exclude or ()) | self._hidden
        out: dict[str, Any] = {}
        for name, value in [*self._values().items(), *(self._extra or {}).items()]:
            if name in drop or (keep is not None and name not in keep):
                continue
            if exclude_none and value is None:
                continue
            out[name] = _dump(value, mode, exclude_none)
        return out

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Record)
            and (self._values(), self._extra) == (other._values(), other._extra)
        )

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._values().items())
        return f"{type(self).__name__}({fields})"


def _dump(value: Any, mode: str, exclude_none: bool) -> Any:
    """A value as pydantic's ``model_dump`` gives it (``mode="json"``: lists and strings)."""
    if isinstance(value, Record):
        return value.model_dump(mode=mode, exclude_none=exclude_none)
    if isinstance(value, (list, tuple)):
        items = [_dump(v, mode, exclude_none) for v in value]
        return items if mode == "json" or isinstance(value, list) else tuple(items)
    if isinstance(value, Path) and mode == "json":
        return str(value)
    return value


class SpecRecord(ModeChoice, Record):
    """A config's ``check:`` section (options.CheckSpec)."""


class OptionsRecord(Resolving, Record):
    """Check options (options.CheckOptions)."""


class LayerRecord(LayerArgs, Record):
    """A layer or loss (spec.config.LayerSpec, LossSpec)."""


#: The record class standing for each model class, by the model's name.
RECORDS: dict[str, type[Record]] = {
    "CheckSpec": SpecRecord,
    "CheckOptions": OptionsRecord,
    "LayerSpec": LayerRecord,
    "LossSpec": LayerRecord,
}

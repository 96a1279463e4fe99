"""What each built-in layer and loss is, read from the class itself: its arguments (with defaults),
its docstring and formulas. One source for `gradcheck list`, `gradcheck list NAME` and the config
JSON Schema, so none of them can drift from what a config accepts."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

#: Constructor parameters the engine fills in (never written in a config).
CONTEXT = ("input_shape", "rng", "dtype", "base_dir")

_JSON_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "None": {"type": "null"},
}


@dataclass(frozen=True)
class Arg:
    name: str
    annotation: str
    required: bool
    default: Any = None

    def text(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"


@dataclass(frozen=True)
class Info:
    """One built-in as a user meets it."""

    name: str
    kind: str  # "layer" | "loss"
    doc: str
    args: tuple[Arg, ...]
    forward: str
    backward: str
    #: Arguments that hold nested layer specs (``residual``'s ``layers``).
    sublayers: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return self.doc.split("\n", 1)[0]


def describe(name: str, cls: type, kind: str) -> Info:
    """The :class:`Info` of a registered class."""
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        params = []
    args = tuple(
        Arg(
            p.name,
            p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", ""),
            p.default is p.empty,
            None if p.default is p.empty else p.default,
        )
        for p in params
        if p.name not in CONTEXT and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return Info(
        name,
        kind,
        inspect.cleandoc(cls.__doc__ or ""),
        args,
        getattr(cls, "forward_formula", ""),
        getattr(cls, "backward_formula", ""),
        tuple(getattr(cls, "sublayer_args", ())),
    )


def catalog(layers: dict[str, type], losses: dict[str, type]) -> list[Info]:
    return [describe(n, c, "layer") for n, c in sorted(layers.items())] + [
        describe(n, c, "loss") for n, c in sorted(losses.items())
    ]


def arg_schema(arg: Arg) -> dict[str, Any]:
    """A JSON Schema for one argument, from its annotation (``int | list[int]``…); unknown
    annotations accept anything rather than guess."""
    options = []
    for part in (p.strip() for p in arg.annotation.split("|")):
        base = part.split("[", 1)[0]
        if base in _JSON_TYPES:
            options.append(_JSON_TYPES[base])
        elif base in ("list", "tuple", "Sequence"):
            options.append({"type": "array"})
        elif base in ("dict", "Mapping"):
            options.append({"type": "object"})
        else:
            return {}
    if not options:
        return {}
    return options[0] if len(options) == 1 else {"anyOf": options}


def spec_schema(info: Info, layer_ref: str) -> dict[str, Any]:
    """The schema of ``{type: NAME, arg: value, …}`` for one built-in: its own arguments only."""
    props: dict[str, Any] = {"type": {"const": info.name}}
    for arg in info.args:
        schema = arg_schema(arg)
        if arg.name in info.sublayers:
            schema = {"type": "array", "items": {"$ref": layer_ref}}
        if not arg.required:
            schema = {**schema, "default": arg.default}
        props[arg.name] = schema
    return {
        "type": "object",
        "title": info.name,
        "description": info.summary,
        "properties": props,
        "required": ["type", *[a.name for a in info.args if a.required]],
        "additionalProperties": False,
    }

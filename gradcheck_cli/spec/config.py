"""YAML/JSON config → validated, frozen spec. Every error names the file and the field path."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.options import CheckOptions, CheckSpec
from gradcheck_cli.safety.inputs import read_bytes
from gradcheck_cli.spec import builtin
from gradcheck_cli.spec.reading import load_yaml_text as load_yaml_text  # re-exported
from gradcheck_cli.spec.reading import read_data as read_data  # re-exported
from gradcheck_cli.spec.records import LayerArgs
from gradcheck_cli.spec.trust import code_refs, names_code, refuse_code, refuse_context_args

#: Most axes an input may have (NumPy allows 64; gradcheck stacks copies on one more axis, and
#: no layer needs more than a handful).
MAX_DIMS = 32
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class _Strict(BaseModel):
    # Strict types: YAML/JSON already give real ints, floats and bools, and lax coercion is
    # silently wrong in places (it would turn `shape: [true, 3]` into [1, 3]).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataSpec(_Strict):
    """An array: random normal of ``shape`` from the seed, inline ``values``, or a ``.npy`` file."""

    shape: list[int] | None = None
    values: list[Any] | None = None
    file: str | None = None
    #: Integer ids in [0, integers) (e.g. for an embedding): random from the seed with ``shape``,
    #: or the given values/file, checked to be such ids. The input gradient is then not checked.
    integers: int | None = Field(default=None, ge=1, le=2**62)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("shape", "values", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of shape, values, file (got {', '.join(given) or 'none'})"
            )
        if self.shape is not None and (not self.shape or any(d < 1 for d in self.shape)):
            raise ValueError(f"shape must be a non-empty list of positive sizes, got {self.shape}")
        if self.shape is not None and max(self.shape) > 2**62:
            raise ValueError(f"shape sizes must be below 2**62, got {max(self.shape)}")
        if self.shape is not None and len(self.shape) > MAX_DIMS:
            raise ValueError(f"shape has {len(self.shape)} axes, more than the {MAX_DIMS} allowed")
        return self


class TargetSpec(_Strict):
    """What the loss compares against: class labels, regression values, or nothing."""

    kind: Literal["classes", "values", "none"] = "none"
    classes: int | None = Field(default=None, ge=1)
    values: list[Any] | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TargetSpec:
        if self.values is not None and self.file is not None:
            raise ValueError("give at most one of values, file")
        if self.kind == "none" and (self.values is not None or self.file is not None):
            raise ValueError("kind 'none' takes no values or file")
        return self


class LayerSpec(LayerArgs, BaseModel):
    """One layer: ``type`` plus the layer's own arguments (passed as keyword arguments)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    type: str = Field(min_length=1)
    #: Code: a function pair / loss function "file.py:NAME" (gradcheck_cli/functions/check.py);
    #: ``type`` then holds the same reference, so whatever refuses plugin types refuses it too.
    fn: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            refuse_context_args(data)
        if isinstance(data, dict) and isinstance(data.get("fn"), str) and "type" not in data:
            return {**data, "type": data["fn"]}
        return {"type": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _fn(self) -> LayerSpec:
        if self.fn is not None and self.type != self.fn:
            raise ValueError("give type (a layer class) or fn (functions), not both")
        if self.fn is not None and not names_code(self.fn):
            raise ValueError(f"fn must look like 'file.py:NAME', got {self.fn!r}")
        return self


class LossSpec(LayerSpec):
    """The loss: ``type`` plus its arguments."""


class Config(_Strict):
    """A network spec: where the input and target come from, the layers, the loss, the check."""

    name: str = Field(default="network", min_length=1, max_length=200)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    dtype: Literal["float64", "float32"] = "float64"
    input: DataSpec
    target: TargetSpec = TargetSpec()
    layers: list[LayerSpec] = Field(min_length=1)
    loss: LossSpec | None = None
    check: CheckSpec = CheckSpec()
    #: Folder that plugin and data paths are relative to (the config file's folder).
    base_dir: Path = Field(default=Path("."), exclude=True)
    #: The file this came from, for messages.
    source: str | None = Field(default=None, exclude=True)
    #: Loaded with ``no_plugins``: building it imports nothing (spec/trust.py ``refusing_code``).
    no_plugins: bool = Field(default=False, exclude=True)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        # The name is shown in terminals, JUnit XML and HTML: a control character (an escape
        # sequence that recolours or clears the screen) or a lone surrogate (not encodable as
        # UTF-8) has no business there.
        bad = _UNPRINTABLE.search(name)
        if bad:
            raise ValueError(
                f"the name holds the unprintable character {bad.group()!r} at position "
                f"{bad.start()}; use plain text"
            )
        return name


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for "did you mean" on unknown keys)."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            for c in candidates:  # list[LayerSpec]
                inner = getattr(c, "__args__", ())
                model = next(
                    (i for i in inner if isinstance(i, type) and issubclass(i, BaseModel)), None
                )
                if model:
                    break
        if model is None:
            return None
    return model if isinstance(model, type) else None


def _explain(err: ValidationError, file: str) -> ConfigError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    field = _loc(loc)
    msg = str(first["msg"]).removeprefix("Value error, ")
    hint = None
    if first["type"] == "extra_forbidden":
        model = _model_at(loc)
        known = [n for n, f in model.model_fields.items() if not f.exclude] if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg = f"unknown key '{loc[-1]}'"
        hint = (f"did you mean '{close[0]}'? " if close else "") + (
            f"allowed keys: {', '.join(known)}" if known else ""
        )
    elif first["type"] == "missing":
        msg = "this field is required"
        given = first.get("input")
        if isinstance(given, dict):
            close = difflib.get_close_matches(str(loc[-1]), [str(k) for k in given], n=1)
            if close:
                hint = f"did you mean '{loc[-1]}' where it says '{close[0]}'?"
    elif first["type"] == "literal_error":
        msg = f"{msg}, got {first['input']!r}"
        allowed = re.findall(r"'([^']*)'", str(first.get("ctx", {}).get("expected", "")))
        close = difflib.get_close_matches(str(first["input"]), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
    elif first["type"] != "value_error" and "input" in first and not isinstance(first["input"], (dict, list)):
        msg = f"{msg} (got {first['input']!r})"
    msg = re.sub(r" or instance of \w+", " (a mapping)", msg)
    more = len(err.errors()) - 1
    if more:
        msg += f"  (+{more} more problem{'s' if more > 1 else ''})"
    return ConfigError(msg, file=file, field=field or "(top level)", hint=hint)


def plugin_fields(cfg: Config) -> list[tuple[str, str]]:
    """(field, reference) for every layer or loss in ``cfg`` that names user code (any depth)."""
    return code_refs(cfg.model_dump(include={"layers", "loss"}, exclude_none=True))


def refuse_plugins(cfg: Config) -> None:
    """``refuse_code`` for a validated config."""
    refuse_code(plugin_fields(cfg), cfg.source)


def parse_config(data: Any, *, source: str = "<config>", base_dir: Path = Path(".")) -> Config:
    """Validate an already-parsed mapping."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"the config must be a mapping of keys (name, input, layers, ...), but it is {kind}",
            file=source,
        )
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        raise _explain(err, source) from None
    return cfg.model_copy(update={"base_dir": base_dir, "source": source, "no_plugins": False})


def load_config(path: str | Path, *, no_plugins: bool = False) -> Config:
    """Read and validate a config file. Plugin and data paths are relative to its folder.
    ``no_plugins``: refuse a config that names code anywhere in its layers or loss — walked on
    the raw data, before validation (and so before anything could be imported)."""
    p = Path(path)
    data = read_data(p)  # registers p as an input of the run (safety/inputs.py)
    if no_plugins and isinstance(data, dict):
        refuse_code(code_refs({k: data[k] for k in ("layers", "loss") if k in data}), str(p))
    cfg = parse_config(data, source=str(p), base_dir=p.parent)
    return cfg.model_copy(update={"no_plugins": True}) if no_plugins else cfg


def default_config_path() -> Path:
    """The built-in default network (a copy of configs/seed_mlp.yaml shipped in the package)."""
    return builtin.BUILTIN_CONFIG


def builtin_snapshot() -> dict[str, Any]:
    """What the built-in config validates to, for spec/builtin.py: the config (with no file or
    folder of this machine in it), the options a check of it runs with when nothing is given,
    and the SHA-256 of the YAML they came from. ``write_builtin_snapshot`` stores it."""
    path = builtin.BUILTIN_CONFIG
    cfg = load_config(path)
    opts = CheckOptions.build(cfg.check, seed=cfg.seed)
    portable = cfg.model_copy(update={"base_dir": Path("."), "source": None})
    return {
        "sha256": builtin.digest(read_bytes(path)),
        "config": builtin.encode(portable),
        "options": builtin.encode(opts),
    }


def write_builtin_snapshot() -> Path:
    """Write :func:`builtin_snapshot` where spec/builtin.py reads it (after editing the YAML:
    ``python -c "from gradcheck_cli.spec.config import write_builtin_snapshot as w; w()"``)."""
    import json

    text = json.dumps(builtin_snapshot(), indent=1) + "\n"
    builtin.SNAPSHOT.write_text(text, "utf-8")
    return builtin.SNAPSHOT

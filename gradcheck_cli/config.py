"""YAML/JSON config → validated, frozen spec. Every error names the file and the field path."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gradcheck_cli.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """An array: random normal of ``shape`` from the seed, inline ``values``, or a ``.npy`` file."""

    shape: list[int] | None = None
    values: list[Any] | None = None
    file: str | None = None
    #: Integer ids in [0, integers) (e.g. for an embedding): random from the seed with ``shape``,
    #: or the given values/file, checked to be such ids. The input gradient is then not checked.
    integers: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("shape", "values", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of shape, values, file (got {', '.join(given) or 'none'})"
            )
        if self.shape is not None and (not self.shape or any(d < 1 for d in self.shape)):
            raise ValueError(f"shape must be a non-empty list of positive sizes, got {self.shape}")
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


class LayerSpec(BaseModel):
    """One layer: ``type`` plus the layer's own arguments (passed as keyword arguments)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"type": data} if isinstance(data, str) else data

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LossSpec(LayerSpec):
    """The loss: ``type`` plus its arguments."""


class CheckSpec(_Strict):
    """How to check: step size, tolerances, whether to check the input gradient too, and how
    much (mode: full / sample / directional / auto; samples and probes per tensor)."""

    eps: float | None = Field(default=None, gt=0, le=1.0)
    rtol: float | None = Field(default=None, ge=0, le=1.0)
    atol: float | None = Field(default=None, ge=0)
    inputs: bool = True
    method: Literal["central", "forward", "five-point", "complex"] = "central"
    strict: bool = False
    mode: Literal["full", "sample", "directional", "auto"] | None = None
    samples: int | None = Field(default=None, ge=1)
    probes: int | None = Field(default=None, ge=1)
    budget: float | None = Field(default=None, gt=0)
    #: Parameter-name glob patterns (``*.W``, ``0.*``, ``input``); see gradcheck_cli/selection.py.
    include: list[str] | None = None
    exclude: list[str] | None = None


class Config(_Strict):
    """A network spec: where the input and target come from, the layers, the loss, the check."""

    name: str = "network"
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
    msg = first["msg"]
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
    elif first["type"] == "literal_error":
        msg = f"{msg}, got {first['input']!r}"
    elif "input" in first and not isinstance(first["input"], (dict, list)):
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    if more:
        msg += f"  (+{more} more problem{'s' if more > 1 else ''})"
    return ConfigError(msg, file=file, field=field or "(top level)", hint=hint)


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
    return cfg.model_copy(update={"base_dir": base_dir, "source": source})


def read_data(path: Path) -> Any:
    """Parse a YAML or JSON file (safe loading only), with line/column on syntax errors."""
    if not path.exists():
        raise ConfigError("file not found", file=path)
    if path.is_dir():
        raise ConfigError("is a directory, not a config file", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{at}: {exc.problem}", file=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=path) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file. Plugin and data paths are relative to its folder."""
    p = Path(path)
    return parse_config(read_data(p), source=str(p), base_dir=p.parent)


def default_config_path() -> Path:
    """The built-in default network (a copy of configs/seed_mlp.yaml shipped in the package)."""
    return Path(__file__).parent / "data" / "seed_mlp.yaml"

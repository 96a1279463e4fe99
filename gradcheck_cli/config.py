"""YAML/JSON config → validated, frozen spec. Every error names the file and the field path."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.options import CheckSpec
from gradcheck_cli.outputs import note_input
from gradcheck_cli.trust import code_refs, refuse_code, refuse_context_args

#: Config files larger than this are refused before reading: a hand-written spec is a few KB;
#: inline ``values`` beyond this belong in a ``.npy`` file (``file:``).
MAX_CONFIG_BYTES = 2 * 2**20
#: Nodes (mappings, lists, scalars) a parsed config may hold once YAML aliases are expanded:
#: stops "billion laughs" alias bombs before validation walks them.
MAX_CONFIG_NODES = 2_000_000
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


class LayerSpec(BaseModel):
    """One layer: ``type`` plus the layer's own arguments (passed as keyword arguments)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    type: str = Field(min_length=1)
    #: Code: a function pair / loss function "file.py:NAME" (gradcheck_cli/function_check.py);
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
        if self.fn is not None and ":" not in self.fn:
            raise ValueError(f"fn must look like 'file.py:NAME', got {self.fn!r}")
        return self

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


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
    return cfg.model_copy(update={"base_dir": base_dir, "source": source})


class _StrictKeys(yaml.constructor.SafeConstructor):
    """Refuses duplicate keys, and counts what merge keys (``<<``) expand to: PyYAML before
    6.0.3 expands nested merges exponentially (700 bytes → minutes and > 1 GB), so the count
    stops it at MAX_CONFIG_NODES whatever version is installed (mixed into the loaders below)."""

    _merged = 0

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        self._merged += len(node.value)
        if self._merged > MAX_CONFIG_NODES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"merge keys (<<) expand past {MAX_CONFIG_NODES:,} entries",
                node.start_mark,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a key is fine
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: construct_mapping below says so with its line
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


class _Loader(_StrictKeys, yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python tags: data only) that refuses duplicate keys and reads
    ``1e-5`` as a float, as YAML 1.2 and JSON do (YAML 1.1 needs ``1.0e-5``, else a string)."""


#: The same with libyaml's parser where PyYAML has it: the pure-Python parser needs ~10 s per MB.
_FastLoader: Any = _Loader
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(_StrictKeys, yaml.CSafeLoader):
        """``_Loader`` with libyaml's parser (same constructor and resolvers)."""

    _FastLoader = _CLoader


for _cls in dict.fromkeys((_Loader, _FastLoader)):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


def load_yaml_text(text: str) -> Any:
    """Parse a YAML snippet (e.g. a --arg value) the way configs are read: safely, 1e-5 a float."""
    return yaml.load(text, Loader=_Loader)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key '{key}'")
        out[key] = value
    return out


def _count_nodes(data: Any, limit: int) -> int:
    """Nodes in ``data`` with shared (aliased) parts counted each time they are used; raises on a
    cycle or once past ``limit``. Iterative, so deep nesting cannot overflow the stack."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            active.discard(key)
            total = 1 + sum(
                sizes.get(id(c), 1) if isinstance(c, (dict, list)) else 1 for c in children
            )
            sizes[key] = total
            if total > limit:
                raise OverflowError(total)
            continue
        if key in sizes:
            continue
        if key in active:
            raise RecursionError("cyclic")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
    return sizes.get(id(data), 1)


def _read_text(path: Path) -> str:
    try:
        if not path.exists():
            raise ConfigError("file not found", file=path)
        if path.is_dir():
            raise ConfigError("is a directory, not a config file", file=path)
        if not path.is_file():
            raise ConfigError(
                "is not a regular file (a device, pipe or socket cannot be a config)", file=path
            )
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"file is {size / 2**20:.1f} MB, larger than the {MAX_CONFIG_BYTES // 2**20} MB "
                "a config may be; refused before reading",
                file=path,
                hint="keep big arrays out of the config: save them with numpy.save and "
                "point to them with 'file: x.npy'",
            )
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    if len(raw) > MAX_CONFIG_BYTES:  # grew while we looked
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES // 2**20} MB", file=path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}, line {line}: {raw[exc.start : exc.start + 1]!r})",
            file=path,
            hint="save the file as UTF-8",
        ) from None


def read_data(path: Path) -> Any:
    """Parse a YAML or JSON file (safe loading only), with line/column on syntax errors.

    Nothing in a config can construct a Python object or run code: YAML is read with a
    ``SafeLoader`` (``!!python/...`` tags are errors), JSON with ``json.loads``."""
    text = _read_text(path)
    if not text.strip():
        return None  # parse_config: "... but it is empty" (JSON would say "Expecting value")
    try:
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text, object_pairs_hook=_no_duplicates)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path
                ) from None
            except ValueError as exc:  # a duplicate key
                raise ConfigError(f"invalid JSON: {exc}", file=path) from None
        else:
            try:
                data = yaml.load(text, Loader=_FastLoader)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark
                at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = exc.problem or ""
                hint = None
                if "could not determine a constructor for the tag" in problem:
                    tag = problem.rpartition("tag ")[2].replace("tag:yaml.org,2002:", "!!")
                    problem = f"the tag {tag} is not allowed"
                    hint = (
                        "configs are plain data (YAML safe loading): tags that would build "
                        "Python objects or run code are refused"
                    )
                raise ConfigError(f"invalid YAML{at}: {problem}", file=path, hint=hint) from None
            except yaml.YAMLError as exc:
                raise ConfigError(f"invalid YAML: {exc}", file=path) from None
        _count_nodes(data, MAX_CONFIG_NODES)
    except RecursionError as exc:
        what = (
            "refers to itself (a cyclic alias)" if str(exc) == "cyclic" else "is nested too deeply"
        )
        raise ConfigError(f"the document {what}", file=path) from None
    except OverflowError as exc:
        raise ConfigError(
            f"the document expands to {exc.args[0]:,}+ values (YAML aliases included), more "
            f"than the {MAX_CONFIG_NODES:,} a config may hold",
            file=path,
            hint="big arrays belong in a .npy file ('file: x.npy')",
        ) from None
    return data


def load_config(path: str | Path, *, no_plugins: bool = False) -> Config:
    """Read and validate a config file. Plugin and data paths are relative to its folder.
    ``no_plugins``: refuse a config that names code anywhere in its layers or loss — walked on
    the raw data, before validation (and so before anything could be imported)."""
    p = Path(path)
    note_input(p)
    data = read_data(p)
    if no_plugins and isinstance(data, dict):
        refuse_code(code_refs({k: data[k] for k in ("layers", "loss") if k in data}), str(p))
    return parse_config(data, source=str(p), base_dir=p.parent)


def default_config_path() -> Path:
    """The built-in default network (a copy of configs/seed_mlp.yaml shipped in the package)."""
    return Path(__file__).parent / "data" / "seed_mlp.yaml"

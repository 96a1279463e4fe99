"""A config file → plain data, safely and within limits: YAML (safe loading, no duplicate keys,
merge keys and aliases counted) or JSON, with line and column on syntax errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.safety.inputs import read_bytes

#: Config files larger than this are refused before reading: a hand-written spec is a few KB;
#: inline ``values`` beyond this belong in a ``.npy`` file (``file:``).
MAX_CONFIG_BYTES = 2 * 2**20
#: Nodes (mappings, lists, scalars) a parsed config may hold once YAML aliases are expanded:
#: stops "billion laughs" alias bombs before validation walks them.
MAX_CONFIG_NODES = 2_000_000


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
        raw = read_bytes(path, MAX_CONFIG_BYTES)  # registers the config as an input
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

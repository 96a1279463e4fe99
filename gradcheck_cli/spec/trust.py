"""What a config may not do: name code where --no-plugins is given, or set the values the engine
injects into layer constructors. Plain-data walks, no imports (config.py, cli.py and registry.py
use them)."""

from __future__ import annotations

import re
from typing import Any

from gradcheck_cli.errors import ConfigError

#: Values the engine gives a layer's constructor (when it names them); never set from a config,
#: ``--arg`` or the API's layer arguments: ``base_dir`` would move the plugin loader, and
#: ``input_shape`` would bypass the memory estimate.
CONTEXT_NAMES = ("input_shape", "rng", "dtype", "base_dir")
#: Keys whose value names code wherever they appear in a layer or loss entry (``type`` when it is
#: a plugin reference; ``fn`` always).
CODE_KEYS = ("type", "fn")
_PLUGIN_REF = re.compile(r"^\S+:[A-Za-z_][A-Za-z0-9_.]*$")


def refuse_context_args(args: dict[Any, Any], field: str | None = None) -> None:
    """A layer's arguments may not set what the engine injects (CONTEXT_NAMES)."""
    for name in CONTEXT_NAMES:
        if name in args:
            message = (
                f"'{name}' is set by gradcheck (from the input, the seed and the config's "
                "folder), not by a layer argument"
            )
            if field is None:  # inside pydantic validation: it adds the field path
                raise ValueError(message)
            raise ConfigError(
                message,
                field=f"{field}.{name}" if field else name,
                hint="drop it; input.shape and the top-level dtype set the shapes and precision",
            )


def is_code_ref(value: Any) -> bool:
    """A string that names code: 'file.py:Class', 'pkg.mod:Class', 'dir/f.py:name'."""
    return isinstance(value, str) and bool(_PLUGIN_REF.match(value.strip()))


def code_refs(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, value) for every place in a raw layer/loss spec that names code, at any depth:
    a ``type`` that is a plugin reference, any ``fn`` key, and any string anywhere below that looks
    like a plugin reference (sub-layer shorthands of ``residual`` and of built-ins to come).
    One iterative walk over plain data: nothing is imported or validated."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f"{here}.{key}" if here else str(key)
                if key == "fn" or (key == "type" and isinstance(value, str) and ":" in value):
                    found.append((sub, str(value)))
                else:
                    stack.append((sub, value))
        elif isinstance(node, list):
            stack.extend((f"{here}[{i}]", v) for i, v in enumerate(node))
        elif is_code_ref(node):
            found.append((here, str(node)))
    return sorted(found)


def refuse_code(found: list[tuple[str, str]], file: str | None = None) -> None:
    """The ``--no-plugins`` rule: anything that names user code is refused before any import."""
    if found:
        field, ref = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(
            f"names the plugin '{ref}'{more}, and --no-plugins refuses code from configs",
            file=file,
            field=field,
            hint="use built-in layers only, or drop --no-plugins if you trust this code",
        )

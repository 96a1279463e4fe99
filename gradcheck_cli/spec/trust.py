"""What a config may not do: name code where --no-plugins is given, or set the values the engine
injects into layer constructors. Plain-data walks, no imports (config.py, cli.py and registry.py
use them).

``names_code`` is the one rule for "this string names code": the plugin loader
(``layers.registry.is_plugin``, the function finder) imports exactly the strings it accepts, and
the ``--no-plugins`` walk (``code_refs``) refuses exactly those, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from gradcheck_cli.errors import ConfigError

_T = TypeVar("_T")
#: Set while a ``--no-plugins`` config or command is built: the loader then imports nothing.
_refusing: ContextVar[bool] = ContextVar("gradcheck_refusing_code", default=False)

#: Values the engine gives a layer's constructor (when it names them); never set from a config,
#: ``--arg`` or the API's layer arguments: ``base_dir`` would move the plugin loader, and
#: ``input_shape`` would bypass the memory estimate.
CONTEXT_NAMES = ("input_shape", "rng", "dtype", "base_dir")
#: Keys whose value names code wherever they appear in a layer or loss entry (``type`` when it is
#: a plugin reference; ``fn`` always).
CODE_KEYS = ("type", "fn")


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


def names_code(value: Any) -> bool:
    """Whether ``value`` names code — the loader's own rule: any string holding a ':' is a
    reference 'module:NAME' ('file.py:Class', 'pkg.mod:Class', 'sub dir/f.py:Évil', ...) that
    the loader would import. Built-in layer and loss names never hold one."""
    return isinstance(value, str) and ":" in value


def code_refs(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, value) for every place in a raw layer/loss spec that names code, at any depth:
    any ``fn`` key, and any string (value or key) that ``names_code`` accepts — a ``type``, the
    sub-layer shorthands of ``residual``, a loss, and whatever constructor argument of a built-in
    to come holds nested layer specs. One iterative walk over plain data: nothing is imported or
    validated."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f"{here}.{key}" if here else str(key)
                if key == "fn" or names_code(key):
                    found.append((sub, str(value) if key == "fn" else str(key)))
                stack.append((sub, value))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{here}[{i}]", v) for i, v in enumerate(node))
        elif names_code(node):
            found.append((here, str(node)))
    return sorted(set(found))


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


@contextmanager
def refusing_code(on: bool = True) -> Iterator[None]:
    """While active (``--no-plugins``) the plugin loader imports nothing (``check_import``): the
    last line behind the walks above, which name the field before anything is built."""
    token = _refusing.set(_refusing.get() or on)
    try:
        yield
    finally:
        _refusing.reset(token)


def refusing(on: bool, job: Callable[[], _T]) -> Callable[[], _T]:
    """``job`` run inside ``refusing_code(on)`` (for the commands' job functions)."""

    def run() -> _T:
        with refusing_code(on):
            return job()

    return run


def check_import(ref: str) -> None:
    """Called by the loader before it imports ``ref``: refused under ``refusing_code``."""
    if _refusing.get():
        raise ConfigError(
            f"'{ref}' names code, and --no-plugins refuses to import it",
            hint="use built-in layers only, or drop --no-plugins if you trust this code",
        )

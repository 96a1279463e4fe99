"""What a function reference names: ``file.py:NAME``, ``pkg.mod:NAME`` and attribute paths
``file.py:obj.method``, ``pkg.mod:obj.method``, ``pkg.mod:Class.staticmethod``.

The part after the colon is walked attribute by attribute from the module; the last part is looked
up in a :class:`Space` (the module, or the object that holds it), where a pair's other half
(``affine_backward`` next to ``affine_forward``) is found too.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradcheck_cli.errors import ConfigError, PluginError

_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", type(fn).__name__))


@dataclass(frozen=True)
class Space:
    """Where names are looked up: a module, or an object / class reached by an attribute path."""

    obj: Any
    where: str  # for messages: "layers.py", "module scipy.optimize", "model.py:loss"
    module: Any = None  # the module the path started from (dotted names are walked from it)
    root: str = ""  # the module's label

    def get(self, name: str) -> Callable[..., Any] | None:
        """The function (or method) ``name``, or None; a class is not a function."""
        try:
            value = getattr(self.obj, name, None)
        except Exception:  # a property that raises: not a function
            return None
        return value if callable(value) and not inspect.isclass(value) else None

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The public functions here, for finding pairs and for "did you mean"."""
        if inspect.ismodule(self.obj):
            names = list(vars(self.obj))
        else:
            names = [n for n in dir(self.obj) if not n.startswith("__")]
        out: dict[str, Callable[..., Any]] = {}
        for n in names:
            if n.startswith("_"):
                continue
            fn = self.get(n)
            if fn is not None:
                out[n] = fn
        return out

    def pick(self, name: str) -> Callable[..., Any]:
        """``name`` here (``obj.method`` walked from the module), or a PluginError with hints."""
        if "." in name and self.module is not None:
            space, last = walk(self.module, self.root, name)
            return space.pick(last)
        fn = self.get(name)
        if fn is not None:
            return fn
        raise self.miss(name)

    def miss(self, name: str, hint: str = "") -> PluginError:
        funcs = self.functions()
        close = difflib.get_close_matches(name, funcs, n=1)
        if inspect.isclass(getattr(self.obj, name, None)):
            hint += f"'{name}' is a class: check a layer class with `gradcheck layer`, or name "
            hint += f"a method of an object: {self.where}:obj.method; "
        hint += f"did you mean '{close[0]}'? " if close else ""
        hint += f"functions found: {', '.join(sorted(funcs)) or 'none'}"
        return PluginError(f"no function '{name}' in {self.where}", hint=hint)


def walk(module: Any, label: str, path: str) -> tuple[Space, str]:
    """Follow ``obj.attr…`` from ``module`` to the object holding the last name: (its Space, the
    last name)."""
    *owners, last = path.split(".")
    obj, where = module, label
    for i, part in enumerate(owners):
        try:
            nxt = getattr(obj, part)
        except AttributeError:
            nxt = None
        except Exception as exc:  # a property of the user's that raises
            raise PluginError(
                f"reading {where}.{part} raised {type(exc).__name__}: {exc}"
            ) from None
        if nxt is None:
            here = ".".join(owners[:i]) or "the module"
            names = sorted(n for n in dir(obj) if not n.startswith("_"))
            close = difflib.get_close_matches(part, names, n=1)
            raise PluginError(
                f"no '{part}' in {where}" + (f" ({here})" if i else ""),
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + "an attribute path names a module-level object and its method: "
                "file.py:obj.method, pkg.mod:Class.staticmethod",
            )
        obj = nxt
        where = f"{label}:{'.'.join(owners[: i + 1])}"
    return Space(obj, where, module, label), last


def load(ref: str, base_dir: Path) -> tuple[Space, str]:
    """``FILE.py:PATH`` or ``pkg.mod:PATH`` → (the Space that holds PATH's last name, that name).
    The module is loaded by the one plugin loader (paths relative to ``base_dir``)."""
    from gradcheck_cli.layers.registry import (
        _load_module,  # the one plugin loader (paths, stdout, errors)
    )

    module_ref, _, path = ref.rpartition(":")
    if not module_ref or not _PATH.match(path):
        raise ConfigError(
            f"'{ref}' must look like 'file.py:NAME', 'pkg.module:NAME' or an attribute path "
            "'file.py:obj.method'"
        )
    if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
        file = (base_dir / module_ref).resolve()
        if not file.is_file():
            raise PluginError(
                f"no file {file}",
                hint=f"'{module_ref}' is read relative to {base_dir.resolve()}",
            )
    module = _load_module(module_ref, base_dir)
    label = module_ref if module_ref.endswith(".py") else f"module {module_ref}"
    return walk(module, label, path)


def space_of(fn: Callable[..., Any]) -> Space | None:
    """Where a callable given from Python sits, so its backward can be found next to it: the
    object of a bound method, else its module."""
    import sys

    owner = getattr(fn, "__self__", None)
    if owner is not None and not inspect.ismodule(owner):
        return Space(owner, type(owner).__name__)
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    if module is None:
        return None
    label = f"module {module.__name__}"
    return Space(module, label, module, label)


def extra_args(
    ref: str | Callable[..., Any], base_dir: Path, seed: int, field: str
) -> dict[str, Any]:
    """Call ``--args-from``'s function once (with ``seed=`` when it takes a ``seed``) and return
    the dict of arguments it builds (objects, datasets, seeded samplers)."""
    from gradcheck_cli.errors import GradcheckError, user_code_error
    from gradcheck_cli.safety.isolation import user_code

    if callable(ref):
        fn, label = ref, _name(ref)
    else:
        space, last = load(ref, base_dir)
        fn, label = space.pick(last), ref
    try:
        takes_seed = "seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_seed = False
    try:
        with user_code(f"calling {label}"):
            result = fn(seed=seed) if takes_seed else fn()
    except GradcheckError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise user_code_error(exc, f"{field} {label}") from exc
    if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
        raise ConfigError(
            f"{label} returned {type(result).__name__}, not a dict of arguments by name",
            field=field,
            hint="return e.g. {'dataset': dataset, 'bn_param': {'mode': 'train'}}",
        )
    return result

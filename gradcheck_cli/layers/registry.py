"""Names → layer and loss classes, plus user plugins given as "file.py:Class" or "pkg.mod:Class"."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gradcheck_cli.errors import (
    ConfigError,
    GradcheckError,
    PluginError,
    user_code_error,
)
from gradcheck_cli.layers.table import LAYERS as LAYERS
from gradcheck_cli.layers.table import LOSSES as LOSSES
from gradcheck_cli.layers.table import registered_name as registered_name
from gradcheck_cli.safety.inputs import note_input
from gradcheck_cli.safety.isolation import user_code
from gradcheck_cli.spec.trust import CONTEXT_NAMES, check_import, names_code

_modules: dict[str, ModuleType] = {}


def is_plugin(type_name: str) -> bool:
    """A plugin reference: ``names_code``, the rule ``--no-plugins`` refuses by (spec/trust.py)."""
    return names_code(type_name)


def _miss(kind: str, name: str, table: dict[str, type]) -> ConfigError:
    close = difflib.get_close_matches(name, table, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    hint += f"available {'losses' if kind == 'loss' else kind + 's'}: {', '.join(sorted(table))}; or a plugin 'file.py:Class'"
    return ConfigError(f"unknown {kind} '{name}'", hint=hint)


def resolve(type_name: str, kind: str, base_dir: Path) -> type:
    """Find the class for a built-in name or a plugin reference. kind is "layer" or "loss"."""
    table = LAYERS if kind == "layer" else LOSSES
    if not is_plugin(type_name):
        if type_name not in table:
            raise _miss(kind, type_name, table)
        return table[type_name]
    module_ref, _, class_name = type_name.rpartition(":")
    if not module_ref or not class_name:
        raise ConfigError(
            f"plugin reference '{type_name}' must look like 'file.py:Class' or 'pkg.module:Class'"
        )
    module = _load_module(module_ref, base_dir)
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        found = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and v.__module__ == module.__name__
        )
        close = difflib.get_close_matches(class_name, found, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        hint += f"classes found: {', '.join(found) or 'none'}"
        raise PluginError(f"no class '{class_name}' in {module_ref}", hint=hint)
    return cls


def _module_name(path: Path) -> str:
    """A module name unique to the resolved plugin file: two projects' ``layers.py`` never share
    one module (or one ``sys.modules`` entry)."""
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    return f"_gradcheck_plugin_{stem}_{digest}"


def _local_names(folder: Path) -> set[str]:
    """Top-level module names that ``folder`` provides (``helper.py``, ``pkg/``)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return set()
    names = {p.stem for p in entries if p.suffix == ".py" and p.stem.isidentifier()}
    names |= {p.name for p in entries if p.name.isidentifier() and p.is_dir()}
    return names


@contextmanager
def _own_imports(folder: Path) -> Iterator[None]:
    """While a plugin loads, its sibling imports (``from helper import x``) resolve to its own
    folder: modules of the same names loaded for another config are set aside, and the ones
    loaded now are taken out of ``sys.modules`` afterwards (the plugin keeps its references), so
    the next config's ``helper`` is its own."""
    names = _local_names(folder)

    def local(mod: str) -> bool:
        return mod.partition(".")[0] in names

    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if local(m)}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for m in [m for m in sys.modules if local(m)]:
            note_input(getattr(sys.modules[m], "__file__", None))  # outputs never overwrite it
            del sys.modules[m]
        sys.modules.update(saved)


def _load_module(ref: str, base_dir: Path) -> ModuleType:
    check_import(ref)  # --no-plugins: nothing is imported, whatever walk missed it
    is_file = ref.endswith(".py") or "/" in ref or "\\" in ref
    path = (base_dir / ref).resolve() if is_file else None
    key = str(path) if path else f"{base_dir.resolve()}::{ref}"
    if key in _modules:
        return _modules[key]
    folder = path.parent if path else base_dir.resolve()
    search_dir = str(folder)
    try:
        if path is not None:
            if not path.is_file():
                raise PluginError(
                    f"plugin file not found: {path}",
                    hint="plugin paths are relative to the config file's folder",
                )
            note_input(path)
            name = _module_name(path)
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses and pickling look their module up here
            try:
                with _own_imports(folder), user_code(f"importing plugin '{ref}'"):
                    spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            with _own_imports(folder), user_code(f"importing plugin '{ref}'"):
                module = importlib.import_module(ref)
    except GradcheckError:
        raise
    except SyntaxError as exc:
        raise PluginError(
            f"syntax error in plugin {Path(exc.filename or ref).name}:{exc.lineno}: {exc.msg}"
        ) from exc
    except ModuleNotFoundError as exc:
        if exc.name == ref or ref.startswith(f"{exc.name}."):
            raise PluginError(
                f"cannot import plugin module '{ref}'",
                hint=f"it must be importable from {search_dir}, or name a file: 'my_layers.py:Class'",
            ) from exc
        raise user_code_error(exc, f"importing plugin '{ref}'") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise user_code_error(exc, f"importing plugin '{ref}'") from exc
    _modules[key] = module
    return module


def instantiate(cls: type, label: str, kwargs: dict[str, Any], **context: Any) -> Any:
    """Call ``cls(**kwargs)``, adding each context value (input_shape, rng, dtype, base_dir) whose
    name the constructor's signature names. A ``**kwargs`` constructor gets only ``kwargs``: it
    may forward them to a library that takes no ``dtype``. ``kwargs`` may not set a context
    name (the engine's values are not the config's to choose).

    Arguments the class does not take, or required ones missing, are config errors naming the
    accepted arguments; anything else the constructor raises is reported as the user's error.
    """
    for name in CONTEXT_NAMES:
        if name in kwargs:
            raise ConfigError(
                f"{label}: '{name}' is set by gradcheck, not by a layer argument",
                hint="drop it; input.shape and the top-level dtype set the shapes and precision",
            )
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # builtins without signatures: just try
        sig = None
    call = dict(kwargs)
    if sig is not None:
        params = sig.parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for name, value in context.items():
            if name in params and params[name].kind is not params[name].VAR_KEYWORD:
                call[name] = value
        accepted = [
            n for n in params if n not in context and params[n].kind is not params[n].VAR_KEYWORD
        ]
        if not var_kw:
            for name in kwargs:
                if name not in params:
                    close = difflib.get_close_matches(name, accepted, n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    raise ConfigError(
                        f"{label} takes no argument '{name}'",
                        hint=hint + f"accepted: {', '.join(accepted) or 'none'}",
                    )
        missing = [
            n
            for n, p in params.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in call
        ]
        if missing:
            raise ConfigError(
                f"{label} needs argument '{missing[0]}'", hint=f"accepted: {', '.join(accepted)}"
            )
    try:
        with user_code(f"constructing {label}"):
            return cls(**call)
    except GradcheckError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise user_code_error(exc, f"constructing {label}") from exc


def check_layer_contract(obj: Any, label: str) -> None:
    """A layer needs params and grads dicts, forward and backward methods."""
    missing = [a for a in ("forward", "backward") if not callable(getattr(obj, a, None))]
    missing += [a for a in ("params", "grads") if not isinstance(getattr(obj, a, None), dict)]
    if missing:
        raise PluginError(
            f"{label} does not follow the layer contract: missing {', '.join(missing)}",
            hint="a layer needs dicts 'params' and 'grads' (same keys) and methods "
            "forward(x) -> out and backward(dout) -> dx",
        )
    # The checker writes θ±ε into each params array in place: it must be a writable float array.
    for key, value in obj.params.items():
        problem = None
        if not isinstance(value, np.ndarray):
            problem = f"is a {type(value).__name__}, not a NumPy array"
        elif not np.issubdtype(value.dtype, np.inexact):
            problem = f"has dtype {value.dtype}; it must be floating point to be perturbed by ε"
        elif not value.flags.writeable:
            problem = "is read-only; the checker perturbs parameters in place"
        elif value.size == 0:
            problem = f"is empty (shape {value.shape}): there is nothing to check"
        if problem:
            raise PluginError(
                f"{label}: params['{key}'] {problem}",
                hint="params values must be non-empty, writable float arrays (e.g. np.zeros(n))",
            )


def check_loss_contract(obj: Any, label: str) -> None:
    missing = [a for a in ("forward", "backward") if not callable(getattr(obj, a, None))]
    if missing:
        raise PluginError(
            f"{label} does not follow the loss contract: missing {', '.join(missing)}",
            hint="a loss needs forward(pred, target) -> float and backward() -> dpred",
        )


def builtins() -> None:
    """Register the built-in layers and losses (once). By name, not by an import statement: the
    built-ins import this module (residual builds its inner layers here), and it must not import
    them back."""
    importlib.import_module("gradcheck_cli.layers.builtin")


builtins()

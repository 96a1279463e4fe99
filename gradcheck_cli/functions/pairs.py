"""Functions as layers: CS231n-style pairs, loss functions and SciPy-style f + grad.

    affine_forward(x, w, b) -> (out, cache)     affine_backward(dout, cache) -> (dx, dw, db)
    softmax_loss(x, y) -> (loss, dx)            f(x) -> float with grad(x) -> dx

The floating-point array arguments are differentiated, in signature order: the first array
argument is the layer input (report name: its argument name, e.g. ``x``), the other float arrays
are the layer's ``params`` (``w``, ``b``). Integer arrays (ids, labels, masks) are data. Other
arguments (``conv_param``, ``bn_param``, flags) are deep-copied for every call, so a forward that
writes into them (running averages) cannot make the check non-deterministic. The adapters below
turn a function into an ordinary layer, so the usual checker does the rest.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, PluginError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.spec.trust import names_code

#: Words that mark a forward function and, swapped, its backward: conv_forward_naive ↔ conv_backward_naive.
PAIR_WORDS = (("forward", "backward"), ("fwd", "bwd"))


@dataclass(frozen=True)
class Found:
    """What a reference names: a pair (forward/backward), a loss ``(loss, dx)``, or f with grad."""

    kind: str  # "pair" | "loss" | "f"
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    label: str  # the name as given, for report headers and messages


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", type(fn).__name__))


def backward_name(forward: str) -> str | None:
    """``conv_forward_naive`` → ``conv_backward_naive`` (the last forward word swapped), or None."""
    parts = forward.split("_")
    for fwd, bwd in PAIR_WORDS:
        if fwd in parts:
            i = len(parts) - 1 - parts[::-1].index(fwd)
            return "_".join([*parts[:i], bwd, *parts[i + 1 :]])
    return None


def _functions(module: Any) -> dict[str, Callable[..., Any]]:
    return {
        n: v
        for n, v in vars(module).items()
        if callable(v) and not inspect.isclass(v) and not n.startswith("_")
    }


def _load(ref: str, base_dir: Path) -> tuple[dict[str, Callable[..., Any]], str, str]:
    from gradcheck_cli.layers.registry import (
        _load_module,  # the one plugin loader (paths, stdout, errors)
    )

    module_ref, _, name = ref.rpartition(":")
    if not module_ref or not name:
        raise ConfigError(f"'{ref}' must look like 'file.py:NAME' or 'pkg.module:NAME'")
    return _functions(_load_module(module_ref, base_dir)), module_ref, name


def _pick(funcs: dict[str, Callable[..., Any]], name: str, where: str) -> Callable[..., Any]:
    if name in funcs:
        return funcs[name]
    close = difflib.get_close_matches(name, funcs, n=1)
    hint = (f"did you mean '{close[0]}'? " if close else "") + (
        f"functions found: {', '.join(sorted(funcs)) or 'none'}"
    )
    raise PluginError(f"no function '{name}' in {where}", hint=hint)


def find(
    ref: str | Callable[..., Any],
    *,
    backward: str | Callable[..., Any] | None = None,
    grad: str | Callable[..., Any] | None = None,
    base_dir: Path = Path("."),
) -> Found:
    """Resolve ``FILE.py:NAME`` (or a callable) to a pair, a loss function, or f with its grad.

    NAME may be ``affine`` (finds ``affine_forward``/``affine_backward``, also ``_naive``/``_fast``
    and other suffixes, and ``_fwd``/``_bwd``), a forward's full name, or a single function: a loss
    returning ``(loss, dx)``, or f when ``grad`` is given. ``backward`` names the backward."""
    funcs: dict[str, Callable[..., Any]] = {}
    if callable(ref):
        where, name = "the given functions", _name(ref)
        main: Callable[..., Any] | None = ref
        module = sys.modules.get(getattr(ref, "__module__", "") or "")
        if module is not None:  # its backward may sit next to it
            funcs, where = _functions(module), f"module {module.__name__}"
    else:
        funcs, where, name = _load(ref, base_dir)
        main = funcs.get(name)

    def other(r: str | Callable[..., Any]) -> Callable[..., Any]:
        if callable(r):
            return r
        if names_code(r):  # the loader's one rule (spec/trust.py)
            more, w, n = _load(r, base_dir)
            return _pick(more, n, w)
        return _pick(funcs, r, where)

    if grad is not None:
        return Found("f", _pick(funcs, name, where) if main is None else main, other(grad), name)
    if main is None:
        starts = [n for n in funcs if n.startswith(f"{name}_") and backward_name(n)]
        paired = [n for n in starts if backward is not None or backward_name(n) in funcs]
        if len(paired) > 1:
            raise ConfigError(
                f"'{name}' matches several forward functions in {where}: {', '.join(paired)}",
                hint=f"name one, e.g. '{where}:{paired[0]}'",
            )
        if not paired:
            close = difflib.get_close_matches(name, funcs, n=1)
            close += [] if close else difflib.get_close_matches(f"{name}_forward", funcs, n=1)
            lone = (
                f"{', '.join(starts)} has no backward: name it with --backward; " if starts else ""
            )
            raise PluginError(
                f"no function '{name}' nor a pair {name}_forward/{name}_backward in {where}",
                hint=lone
                + (f"did you mean '{close[0]}'? " if close else "")
                + f"functions found: {', '.join(sorted(funcs)) or 'none'}",
            )
        main, name = funcs[paired[0]], paired[0]
    if backward is not None:
        return Found("pair", main, other(backward), name)
    bname = backward_name(name)
    if bname is not None and bname in funcs:
        return Found("pair", main, funcs[bname], name)
    return Found("loss", main, None, name)


# -- arguments ------------------------------------------------------------------------------------


@dataclass
class Arguments:
    """How to call a function: its parameters in order, the arrays (float: differentiated; integer:
    data) and the other values (deep-copied per call). Names the function in every message."""

    fn_name: str
    order: list[inspect.Parameter]
    arrays: dict[str, Array] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def array_names(self) -> list[str]:
        return [p.name for p in self.order if p.name in self.arrays]

    @property
    def float_names(self) -> list[str]:
        return [n for n in self.array_names if np.issubdtype(self.arrays[n].dtype, np.inexact)]

    def call(self, fn: Callable[..., Any], arrays: Mapping[str, Array]) -> Any:
        pos: list[Any] = []
        kw: dict[str, Any] = {}
        skipped = False  # after an argument left to its default, pass the rest by keyword
        for p in self.order:
            if p.name in arrays:
                v = arrays[p.name]
            elif p.name in self.arrays:
                v = self.arrays[p.name]
            elif p.name in self.values:
                v = copy.deepcopy(self.values[p.name])
            else:
                skipped = True
                continue
            if p.kind is p.KEYWORD_ONLY or skipped:
                kw[p.name] = v
            else:
                pos.append(v)
        return fn(*pos, **kw)


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise PluginError(f"cannot read the signature of {_name(fn)}") from None
    return [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def arguments(
    fn: Callable[..., Any],
    *,
    shapes: Mapping[str, Any] | None = None,
    integers: Mapping[str, int] | None = None,
    values: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    seed: int = 0,
    dtype: str = "float64",
    fields: tuple[str, str, str, str] = ("--shape", "--integers", "--arg", "values"),
) -> Arguments:
    """Draw the arrays of ``fn``'s arguments from ``seed``: float arrays of ``shapes``, integer ids
    in [0, n) for ``integers`` (shape from ``shapes``, else the first float array's shape without
    its last axis: labels), ``values`` as given; ``args`` are the other arguments."""
    from gradcheck_cli.engine.network import rng_for

    order = parameters(fn)
    known = [p.name for p in order]
    shapes_d, ints_d = dict(shapes or {}), dict(integers or {})
    args_d, values_d = dict(args or {}), dict(values or {})
    for where, names in zip(fields, (shapes_d, ints_d, args_d, values_d), strict=True):
        for n in names:
            if n not in known:
                close = difflib.get_close_matches(n, known, n=1)
                raise ConfigError(
                    f"{_name(fn)} has no argument '{n}'",
                    field=where,
                    hint=(f"did you mean '{close[0]}'? " if close else "")
                    + f"its arguments: {', '.join(known)}",
                )
    out = Arguments(_name(fn), order)
    first_float: tuple[int, ...] | None = None
    for p in order:
        n = p.name
        if n in args_d:
            if n in shapes_d or n in values_d:
                raise ConfigError(f"'{n}' is given both as an array and in {fields[2]}", field=n)
            out.values[n] = args_d[n]
        elif n in values_d:
            out.arrays[n] = np.array(values_d[n], copy=True)
        elif n in ints_d:
            shape = shapes_d.get(n)
            if shape is None:
                if first_float is None or len(first_float) < 2:
                    raise ConfigError(
                        f"give the shape of the ids '{n}' of {_name(fn)}", field=f"{fields[0]} {n}"
                    )
                shape = first_float[:-1]
            rng = rng_for(seed, f"ids {n}")
            out.arrays[n] = rng.integers(0, int(ints_d[n]), tuple(shape))
        elif n in shapes_d:
            shape = tuple(int(d) for d in shapes_d[n])
            stream = "input" if not out.arrays else f"arg {n}"
            out.arrays[n] = rng_for(seed, stream).standard_normal(shape).astype(dtype)
        elif p.default is p.empty:
            raise ConfigError(
                f"{_name(fn)} needs a value for its argument '{n}'",
                field=fields[0],
                hint=f"an array: {fields[0]} {n}=4x3 (or {fields[1]} {n}=N for integer ids); "
                f"anything else: {fields[2]} {n}=JSON"
                if fields[0].startswith("--")
                else f"give it under {fields[0]} (an array) or {fields[2]}",
            )
        if n in out.arrays and first_float is None and out.arrays[n].dtype.kind in "fc":
            first_float = out.arrays[n].shape
    if not out.float_names:
        raise ConfigError(
            f"{_name(fn)} gets no floating-point array: there is nothing to differentiate",
            field=fields[0],
            hint=f"give the shapes of its array arguments: {fields[0]} {known[0]}=4x3",
        )
    return out

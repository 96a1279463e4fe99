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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, PluginError
from gradcheck_cli.functions.targets import Space, _name, load, space_of
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


def backward_name(forward: str) -> str | None:
    """``conv_forward_naive`` → ``conv_backward_naive`` (the last forward word swapped), or None."""
    parts = forward.split("_")
    for fwd, bwd in PAIR_WORDS:
        if fwd in parts:
            i = len(parts) - 1 - parts[::-1].index(fwd)
            return "_".join([*parts[:i], bwd, *parts[i + 1 :]])
    return None


_FORWARD_WORDS = {fwd for fwd, _ in PAIR_WORDS}


def forwards_for(name: str, funcs: Mapping[str, Any]) -> list[str]:
    """The forwards ``name`` means, most exact first: ``NAME_forward`` (or ``_fwd``) if there is
    one; else ``NAME_forward_SUFFIX`` (``_naive``, ``_fast``); else any ``NAME_…_forward…``
    (``rnn_step_forward`` for ``rnn`` only when there is no ``rnn_forward``)."""
    starts = [n for n in funcs if n.startswith(f"{name}_") and backward_name(n)]
    rest = {n: n[len(name) + 1 :] for n in starts}
    exact = [n for n in starts if rest[n] in _FORWARD_WORDS]
    suffixed = [n for n in starts if rest[n].split("_")[0] in _FORWARD_WORDS]
    return exact or suffixed or starts


def _forward(space: Space, name: str, given: bool) -> tuple[Callable[..., Any], str]:
    """The forward ``name`` (not itself a function) means in ``space``, and its label; ``given``:
    its backward is named separately, so the forward needs no backward next to it."""
    owners, _, last = name.rpartition(".")
    funcs = space.functions()
    tier = forwards_for(last, funcs)
    paired = [n for n in tier if given or backward_name(n) in funcs]
    if len(paired) > 1:
        raise ConfigError(
            f"'{last}' matches several forward functions in {space.where}: {', '.join(paired)}",
            hint=f"name one, e.g. '{space.where}:{paired[0]}'",
        )
    if paired:
        return funcs[paired[0]], f"{owners}.{paired[0]}" if owners else paired[0]
    if tier:
        raise PluginError(
            f"no pair {last}_forward/{last}_backward in {space.where}",
            hint=", ".join(f"{n} has no {backward_name(n)}" for n in tier)
            + ": name its backward with --backward (API: backward=)",
        )
    close = difflib.get_close_matches(f"{last}_forward", funcs, n=1)
    raise space.miss(last, hint=f"did you mean '{close[0]}'? " if close else "")


def find(
    ref: str | Callable[..., Any],
    *,
    backward: str | Callable[..., Any] | None = None,
    grad: str | Callable[..., Any] | None = None,
    base_dir: Path = Path("."),
) -> Found:
    """Resolve ``FILE.py:NAME`` (or ``pkg.mod:NAME``, an attribute path ``file.py:obj.method``,
    or a callable) to a pair, a loss function, or f with its grad.

    NAME may be ``affine`` (finds ``affine_forward``/``affine_backward``, else ``_naive``/``_fast``
    or another suffix, and ``_fwd``/``_bwd``; see :func:`forwards_for`), a forward's full name, or
    a single function: a loss returning ``(loss, dx)``, or f when ``grad`` is given. ``backward``
    names the backward: a name next to the forward, ``obj.method`` in its module, or a full
    reference."""
    space: Space | None
    main: Callable[..., Any] | None
    if callable(ref):
        name, main = _name(ref), ref
        space = space_of(ref)
    else:
        space, name = load(ref, base_dir)
        main = space.get(name)
        name = ref.rpartition(":")[2]

    def other(r: str | Callable[..., Any]) -> Callable[..., Any]:
        if callable(r):
            return r
        if names_code(r):  # the loader's one rule (spec/trust.py)
            more, n = load(r, base_dir)
            return more.pick(n)
        if space is None:
            raise PluginError(f"cannot find '{r}': give it as a function or 'file.py:NAME'")
        return space.pick(r)

    if main is None:
        assert space is not None  # a callable is its own main
        if grad is not None:
            raise space.miss(name.rpartition(".")[2])
        main, name = _forward(space, name, backward is not None)
    if grad is not None:
        return Found("f", main, other(grad), name)
    if backward is not None:
        return Found("pair", main, other(backward), name)
    funcs = space.functions() if space is not None else {}
    for bname in (backward_name(name.rpartition(".")[2]), backward_name(_name(main))):
        if bname is not None and bname in funcs:
            return Found("pair", main, funcs[bname], name)
    return Found("loss", main, None, name)


# -- arguments ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """How the places that give arguments are called in messages (CLI options, API keywords or
    config fields)."""

    shape: str
    integers: str
    args: str
    values: str
    data: str
    extra: str


CLI_FIELDS = Fields("--shape", "--integers", "--arg", "values", "--data", "--args-from")
API_FIELDS = Fields("shapes", "integers", "args", "values", "data", "args_from")


@dataclass
class Arguments:
    """How to call a function: its parameters in order, the arrays (float: differentiated; integer:
    ids), the fixed data (read-only arrays, never differentiated) and the other values (deep-copied
    per call). Names the function in every message."""

    fn_name: str
    order: list[inspect.Parameter]
    arrays: dict[str, Array] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Array] = field(default_factory=dict)

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
            elif p.name in self.data:
                v = self.data[p.name]
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
    data: Mapping[str, Array] | None = None,
    extra: Mapping[str, Any] | None = None,
    seed: int = 0,
    dtype: str = "float64",
    fields: Fields = CLI_FIELDS,
) -> Arguments:
    """Draw the arrays of ``fn``'s arguments from ``seed``: float arrays of ``shapes``, integer ids
    in [0, n) for ``integers`` (shape from ``shapes``, else the first float array's shape without
    its last axis: labels), ``values`` as given; ``data`` are fixed arrays (never differentiated),
    ``args`` and ``extra`` (what ``args_from`` built) the other arguments, deep-copied per call.
    Every argument left without a value is named in one error."""
    from gradcheck_cli.engine.network import rng_for

    order = parameters(fn)
    known = [p.name for p in order]
    shapes_d, ints_d, args_d = dict(shapes or {}), dict(integers or {}), dict(args or {})
    values_d, data_d, extra_d = dict(values or {}), dict(data or {}), dict(extra or {})
    given = [
        (fields.shape, shapes_d), (fields.integers, ints_d), (fields.args, args_d),
        (fields.values, values_d), (fields.data, data_d), (fields.extra, extra_d),
    ]  # fmt: skip
    seen: dict[str, str] = {}
    for where, names in given:
        for n in names:
            if n not in known:
                close = difflib.get_close_matches(n, known, n=1)
                raise ConfigError(
                    f"{_name(fn)} has no argument '{n}'",
                    field=where,
                    hint=(f"did you mean '{close[0]}'? " if close else "")
                    + f"its arguments: {', '.join(known)}",
                )
            other = seen.setdefault(n, where)
            if other != where and {other, where} != {fields.shape, fields.integers}:
                raise ConfigError(f"'{n}' is given both in {other} and in {where}", field=where)
    out = Arguments(_name(fn), order)
    first_float: tuple[int, ...] | None = None
    missing: list[inspect.Parameter] = []
    for p in order:
        n = p.name
        if n in args_d or n in extra_d:
            out.values[n] = args_d[n] if n in args_d else extra_d[n]
        elif n in data_d:
            out.data[n] = data_d[n]
        elif n in values_d:
            out.arrays[n] = np.array(values_d[n], copy=True)
        elif n in ints_d:
            shape = shapes_d.get(n)
            if shape is None:
                if first_float is None or len(first_float) < 2:
                    raise ConfigError(
                        f"give the shape of the ids '{n}' of {_name(fn)}",
                        field=f"{fields.shape} {n}",
                    )
                shape = first_float[:-1]
            rng = rng_for(seed, f"ids {n}")
            out.arrays[n] = rng.integers(0, int(ints_d[n]), tuple(shape))
        elif n in shapes_d:
            shape = tuple(int(d) for d in shapes_d[n])
            stream = "input" if not out.arrays else f"arg {n}"
            out.arrays[n] = rng_for(seed, stream).standard_normal(shape).astype(dtype)
        elif p.default is p.empty:
            missing.append(p)
        if n in out.arrays and first_float is None and out.arrays[n].dtype.kind in "fc":
            first_float = out.arrays[n].shape
    if missing:
        raise _missing(_name(fn), missing, fields)
    if not out.float_names:
        raise ConfigError(
            f"{_name(fn)} gets no floating-point array: there is nothing to differentiate",
            field=fields.shape,
            hint=f"give the shapes of its array arguments: {fields.shape} {known[0]}=4x3",
        )
    return out


def _missing(fname: str, missing: list[inspect.Parameter], fields: Fields) -> ConfigError:
    """One error naming every argument without a value, with a line to fill in."""
    names = [p.name for p in missing]
    what = (
        f"a value for its argument '{names[0]}'"
        if len(names) == 1
        else f"values for its arguments {', '.join(repr(n) for n in names)}"
    )
    if fields.shape.startswith("--"):
        line = " ".join(f"--shape {n}=…" for n in names)
        hint = (
            f"give them, e.g. {line} (float arrays: differentiated); ids: --integers NAME=N; "
            "fixed data (never differentiated): --data NAME=FILE.npy; anything else: "
            "--arg NAME=JSON"
        )
    else:
        hint = (
            f"give them under {fields.shape} (differentiated arrays), {fields.data} (fixed data) "
            f"or {fields.args} (anything else)"
        )
    return ConfigError(f"{fname} needs {what}", field=fields.shape, hint=hint)

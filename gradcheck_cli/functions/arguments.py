"""The body of ``gradcheck fn FILE.py:NAME``: parse ``--shape x=4x3``, ``--integers y=10``,
``--data X=X.npy``, ``--arg conv_param=JSON`` and ``--args-from file.py:NAME``, build the
function's network and preflight it; cli.py renders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.functions.adapters import FunctionNetwork
from gradcheck_cli.functions.check import function_network
from gradcheck_cli.functions.data import entries_bytes, load_entries
from gradcheck_cli.functions.pairs import arguments, find
from gradcheck_cli.functions.targets import extra_args
from gradcheck_cli.plan.limits import Limits, MemoryPlan, array_bytes, preflight
from gradcheck_cli.spec.config import load_yaml_text

_NAME = re.compile(r"^[A-Za-z_]\w*$")


def _split(item: str, option: str, example: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not _NAME.match(key) or not value.strip():
        raise ConfigError(f"{option} must look like {example}, got '{item}'", field=option)
    return key, value.strip()


def parse_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``["x=4x3x8x8", "b=2"]`` → ``{"x": (4, 3, 8, 8), "b": (2,)}``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        key, value = _split(item, "--shape", "NAME=4x3 (e.g. --shape x=4x3 --shape b=3)")
        try:
            dims = tuple(int(d) for d in value.lower().replace(",", "x").split("x"))
        except ValueError:
            dims = ()
        if not dims or any(d < 1 for d in dims):
            raise ConfigError(
                f"the shape of '{key}' must be positive sizes like 4x3, got '{value}'",
                field="--shape",
            )
        shapes[key] = dims
    return shapes


def parse_integers(items: list[str]) -> dict[str, int]:
    """``["y=10"]`` → ``{"y": 10}``: y holds random integer ids in [0, 10)."""
    out: dict[str, int] = {}
    for item in items:
        key, value = _split(item, "--integers", "NAME=N (ids in [0, N), e.g. --integers y=10)")
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(
                f"'{key}' needs a positive count of ids, got '{value}'", field="--integers"
            )
        out[key] = int(value)
    return out


def parse_args(items: list[str]) -> dict[str, Any]:
    """``['conv_param={"stride": 1, "pad": 1}']`` → a dict per name (JSON/YAML values, read safely)."""
    out: dict[str, Any] = {}
    for item in items:
        key, value = _split(item, "--arg", "NAME=JSON (e.g. --arg 'conv_param={\"stride\": 1}')")
        try:
            out[key] = load_yaml_text(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def parse_data(items: list[str]) -> dict[str, str]:
    """``["X=X.npy", "y=d.npz:y"]`` → ``{"X": "X.npy", "y": "d.npz:y"}`` (read by functions/data)."""
    out: dict[str, str] = {}
    for item in items:
        key, value = _split(item, "--data", "NAME=FILE (X=X.npy, y=data.npz:y or X=X.json)")
        out[key] = value
    return out


def prepare(
    ref: str,
    *,
    backward: str | None,
    grad: str | None,
    shape: list[str],
    integers: list[str],
    arg: list[str],
    seed: int,
    force: bool,
    how: dict[str, Any],
    data: list[str] | None = None,
    args_from: str | None = None,
) -> FunctionNetwork:
    """Find the function(s), draw the arrays, and refuse a check that is too big (``how``: the
    ``preflight`` plan of the check's method and mode, from ``suite.preflight_plan``)."""
    if ":" not in ref:
        raise ConfigError(
            f"'{ref}' must name a file and a function: FILE.py:NAME (e.g. layers.py:affine)",
            field="FUNCTION",
        )
    shapes, ids, values = parse_shapes(shape), parse_integers(integers), parse_args(arg)
    files = parse_data(data or [])
    limits = Limits.off() if force else Limits()
    plan = MemoryPlan(limits)
    for name, dims in shapes.items():
        plan.add(name, array_bytes(dims, "float64"), f"--shape {name}")
    for where, nbytes in entries_bytes(files, Path("."), "--data"):  # before reading any
        plan.add(where.replace("--data ", "data "), nbytes, where)
    found = find(ref, backward=backward, grad=grad, base_dir=Path("."))
    extra = extra_args(args_from, Path("."), seed, "--args-from") if args_from else None
    argv = arguments(
        found.forward, shapes=shapes, integers=ids, args=values, seed=seed,
        data=load_entries(files, Path("."), "--data"), extra=extra,
    )  # fmt: skip
    net = function_network(found, argv, seed)
    preflight(net, inputs=True, **how, limits=limits)
    return net


def replay_words(
    ref: str,
    backward: str | None,
    grad: str | None,
    shape: list[str],
    integers: list[str],
    arg: list[str],
    data: list[str] | None = None,
    args_from: str | None = None,
) -> list[str]:
    """The command words that rebuild the same check (cli.py adds seed, method, ε, mode)."""
    words = ["fn", ref]
    words += ["--backward", backward] if backward else []
    words += ["--grad", grad] if grad else []
    lists = (("--shape", shape), ("--integers", integers), ("--data", data or []), ("--arg", arg))
    for option, items in lists:
        words += [w for item in items for w in (option, item)]
    words += ["--args-from", args_from] if args_from else []
    return words

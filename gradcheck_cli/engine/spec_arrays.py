"""The arrays a config describes: counted from the spec before anything is drawn (``footprint``),
and the given ones loaded (``load_array``) through the readers that register them as inputs.

``footprint`` is the first thing ``build.build_network`` does, so ``run``, ``validate`` and
``sweep`` refuse the same config with the same numbers, before the input, the target or any
parameter exists: the input (its float64 draw included), each layer's parameters, output and
temporaries where the layer offers an estimate, the parameters of every ``fn:`` layer (their
shapes are in the spec whatever the layers before them output), and the target. Past a layer
whose output shape cannot be known without running it (a plugin without ``estimate``, a
function), the outputs, temporaries and the target are measured while building instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.errors import ConfigError, GradcheckError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.registry import resolve
from gradcheck_cli.plan.limits import (
    MemoryPlan,
    array_bytes,
    estimate_layer,
    estimate_workspace,
    refuse_probes,
)
from gradcheck_cli.safety.inputs import npy_header, read_array

if TYPE_CHECKING:
    from gradcheck_cli.spec.config import Config, DataSpec, TargetSpec


def _shape_of(spec: DataSpec | TargetSpec, cfg: Config) -> tuple[int, ...] | None:
    """The shape ``spec`` gives: ``shape``, a ``file``'s .npy header, or inline ``values``."""
    shape = getattr(spec, "shape", None)  # a DataSpec's (a TargetSpec has none)
    if shape is not None:
        return tuple(shape)
    if spec.file is not None:
        header = npy_header(Path(cfg.base_dir) / spec.file)
        return header[0] if header else None
    if spec.values is not None:
        try:
            return tuple(np.shape(spec.values))
        except (ValueError, TypeError):
            return None
    return None


def input_shape(cfg: Config) -> tuple[int, ...] | None:
    """The input's shape from the spec (None when a file cannot be read as .npy)."""
    return _shape_of(cfg.input, cfg)


def footprint(cfg: Config, plan: MemoryPlan, *, probes: int = 0, inputs: bool = True) -> None:
    """Add every array ``cfg`` describes to ``plan`` (which raises ``LimitError`` once over the
    limit), allocating nothing; then refuse ``probes`` directional probes of the largest tensor
    whose size the spec fixes (the input when ``inputs``, ``fn:`` parameters) as the check would
    (``limits.refuse_probes``). Layers are resolved as the build resolves them (a plugin is
    imported here, once); one that cannot be is the error the build would give, by field."""
    shape = input_shape(cfg)
    if shape is None:
        return
    n = shape[0] if shape else 1
    plan.add("input", array_bytes(shape, cfg.dtype), "input")
    if cfg.input.shape is not None and cfg.dtype != "float64":
        plan.peak("input draw (float64)", array_bytes(shape, "float64"), "input")
    sizes = [("input", math.prod(shape))] if inputs and cfg.input.integers is None else []
    _layers(cfg, plan, n, tuple(shape[1:]), sizes)
    refuse_probes(sizes, probes=probes, limits=plan.limits, source=cfg.source)


def _layers(
    cfg: Config, plan: MemoryPlan, n: int, per: tuple[int, ...] | None, sizes: list[Any]
) -> None:
    item = np.dtype(cfg.dtype).itemsize
    for i, spec in enumerate(cfg.layers):
        field = f"layers[{i}]"
        if spec.fn is not None:
            from gradcheck_cli.functions.adapters import param_shapes

            shapes = param_shapes(spec.args.get("params"), Path(cfg.base_dir))
            for name, dims in shapes:
                plan.add(f"layer {i} ({spec.type}) {name}", array_bytes(dims, cfg.dtype),
                         f"{field}.params.{name}")  # fmt: skip
                sizes.append((f"{i}.{spec.type.rpartition(':')[2]}.{name}", math.prod(dims)))
                if cfg.dtype != "float64":  # drawn in float64, then cast
                    plan.peak(f"layer {i} {name} draw (float64)", array_bytes(dims, "float64"),
                              f"{field}.params.{name}")  # fmt: skip
            # functions/pairs.arguments copies them while the drawn (or read) ones are held
            copies = sum(array_bytes(dims, cfg.dtype) for _, dims in shapes)
            plan.peak(f"layer {i} ({spec.type}) parameter copies", copies, f"{field}.params")
            per = None  # what a function outputs is known once it has run
            continue
        if per is None:
            continue  # nothing more to size until the build runs the layers
        try:
            cls = resolve(spec.type, "layer", cfg.base_dir)
        except GradcheckError as err:  # as the build reports it (a failed import is not retried)
            err.file = err.file or cfg.source
            err.field = err.field or field
            raise
        est = estimate_layer(cls, per, spec.args)
        if est is None:
            per = None
            continue
        n_params, out = est
        plan.add(f"layer {i} ({spec.type}) parameters", float(n_params) * item, field)
        work = estimate_workspace(cls, per, spec.args)
        if work:
            plan.peak(f"layer {i} temporaries", float(n) * work * item, field)
        per = tuple(out)
        plan.add(f"layer {i} output", array_bytes((n, *per), cfg.dtype), field)
    _target(cfg, plan, n, per)


def _target(cfg: Config, plan: MemoryPlan, n: int, out: tuple[int, ...] | None) -> None:
    tgt = cfg.target
    if cfg.loss is None and out is not None:  # the fixed upstream gradient g of L = Σ out⊙g
        plan.add("upstream gradient", array_bytes((n, *out), cfg.dtype), "layers")
    if cfg.loss is None or tgt.kind == "none":
        return
    given = _shape_of(tgt, cfg)
    if given is not None:
        plan.add("target", array_bytes(given, "float64"), "target")
    elif out is not None and tgt.kind == "classes":
        plan.add("target", 8.0 * n * math.prod(out[:-1]), "target")
    elif out is not None:
        plan.add("target", array_bytes((n, *out), cfg.dtype), "target")
        plan.peak("target draw (float64)", array_bytes((n, *out), "float64"), "target")


def load_array(spec: DataSpec | TargetSpec, cfg: Config, field: str) -> Array | None:
    """The array ``spec`` gives inline (``values``) or in a ``.npy`` file (``file``), as float64;
    None when it gives only a shape (drawn by the caller)."""
    if spec.values is not None:
        try:
            return np.array(spec.values, dtype=float)
        except OverflowError:
            raise ConfigError(
                "values must be numbers a float64 can hold (|v| < 1.8e308); an integer this "
                "large is not",
                file=cfg.source,
                field=f"{field}.values",
            ) from None
        except (ValueError, TypeError):
            raise ConfigError(
                "values must be a rectangular list of numbers",
                file=cfg.source,
                field=f"{field}.values",
            ) from None
    if spec.file is not None:
        path = Path(cfg.base_dir) / spec.file
        try:
            return np.asarray(read_array(path), dtype=float)
        except FileNotFoundError:
            raise ConfigError(
                f"file not found: {path}", file=cfg.source, field=f"{field}.file"
            ) from None
        except Exception as exc:
            raise ConfigError(
                f"cannot read {path} as a .npy array: {exc}", file=cfg.source, field=f"{field}.file"
            ) from None
    return None

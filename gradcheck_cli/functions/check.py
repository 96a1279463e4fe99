"""Check functions with the usual checker: ``check_function`` (API, CLI, pytest) and the
factories that let a config use a function pair as a layer and a loss function as its loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.checker import check_network
from gradcheck_cli.engine.network import rng_for
from gradcheck_cli.errors import ConfigError, PluginError
from gradcheck_cli.functions.adapters import (
    FunctionLayer,
    FunctionLoss,
    FunctionNetwork,
    ScalarFunctionLayer,
)
from gradcheck_cli.functions.data import entries_bytes, load_entries
from gradcheck_cli.functions.pairs import (
    API_FIELDS,
    Arguments,
    Fields,
    Found,
    arguments,
    find,
    parameters,
)
from gradcheck_cli.functions.targets import extra_args
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.safety.inputs import read_array

if TYPE_CHECKING:  # the package exports it, wherever the checker keeps it
    from gradcheck_cli import CheckResult

Fn = str | Callable[..., Any]


def function_network(found: Found, argv: Arguments, seed: int = 0) -> FunctionNetwork:
    """The network that checks ``found`` called with ``argv``: a pair with L = Σ out ⊙ g (g random
    from ``seed``, as for a layer), a loss function or f with L = the value it returns."""
    input_name = argv.array_names[0]
    x = argv.arrays[input_name]
    label = found.label
    if found.kind == "pair":
        layer: Any = FunctionLayer(found, argv, input_name)
    else:
        layer = ScalarFunctionLayer(found, argv, input_name)
    #: Integer ids as the input are data: not differentiated (read by the checker).
    layer.takes_ids = bool(np.issubdtype(x.dtype, np.integer))
    net = FunctionNetwork(layer, None, input_name, labels=[label], x=x, name=label)
    try:
        out = net.forward(np.array(x, copy=True))
    except PluginError as exc:
        exc.hint = exc.hint or _ids_hint(exc, argv)
        raise
    if found.kind == "pair":
        g = rng_for(seed, "upstream").standard_normal(out.shape).astype(out.dtype)
        net.loss, net.loss_label = WeightedSum(g), "Σ out⊙g"
    else:
        net.loss, net.loss_label = WeightedSum(np.ones(1)), label
    return net


def _ids_hint(exc: PluginError, argv: Arguments) -> str | None:
    """When a function indexed with a float array (labels drawn by ``--shape``): say how to give
    integer ids instead."""
    cause = exc.__cause__
    if not (isinstance(cause, (IndexError, TypeError)) and "integer" in str(cause)):
        return None
    # the last float array (``arguments`` refuses a function without one): the input is rarely
    # the labels, and it is named only when it is the one float array
    name = argv.float_names[-1]
    return (
        f"{name} is drawn as floats; labels and indices are integer ids: give them with "
        f"--integers {name}=N (ids in [0, N); API: integers={{'{name}': N}}) instead of --shape"
    )


def run_check(net: FunctionNetwork, *, seed: int, **options: Any) -> CheckResult:
    """The one call into the checker for functions (options as for ``check_network``), plus a
    note when failing gradients of equal shape look swapped."""
    result = check_network(net, seed=seed, **options)
    if result.passed or result.interrupted:
        return result
    notes = swapped(net, [p.name for p in result.failures], seed)
    return replace(result, notes=(*result.notes, *notes)) if notes else result


def swapped(net: FunctionNetwork, failing: list[str], seed: int) -> list[str]:
    """For failing arguments a, b of one shape: does the derivative of L along a random direction
    v of a match ⟨db, v⟩ rather than ⟨da, v⟩? Then the backward returned them in swapped order (a
    shape check cannot see that). A hint next to the verdict, never a verdict."""
    # a swap takes two failing tensors
    if len(failing) < 2:
        return []
    x, layer = net.x, net.layers[0]
    assert x is not None  # function_network gives the network its input
    arrays = {net.input_name: x, **layer.params}
    net.loss_value(np.array(x, copy=True))
    dx, grads = net.backward()
    # the check just ran this backward: FunctionLayer refuses gradients of a wrong shape and
    # Network.backward anything but arrays and a dict (exit 2), so both are here
    assert isinstance(dx, np.ndarray) and isinstance(grads[0], dict)
    analytic = {net.input_name: dx, **grads[0]}
    rng = rng_for(seed, "swap probe")
    notes = []
    for i, a in enumerate(failing):
        for b in failing[i + 1 :]:
            if arrays[a].shape != arrays[b].shape:  # (every failing tensor has a gradient here)
                continue
            v = rng.choice([-1.0, 1.0], size=arrays[a].shape)
            slope = _slope(net, arrays, a, v)
            along_a, along_b = float(np.vdot(analytic[a], v)), float(np.vdot(analytic[b], v))
            scale = abs(slope) + 1e-300
            if abs(slope - along_b) < 1e-4 * scale and abs(slope - along_a) > 1e-2 * scale:
                notes.append(
                    f"d{a} and d{b} look swapped: along a random direction of {a}, L changes as "
                    f"d{b} predicts ({along_b:.6g}; d{a} predicts {along_a:.6g}, measured "
                    f"{slope:.6g}). Return the gradients in the order of the arguments"
                )
    return notes


def _slope(
    net: FunctionNetwork, arrays: dict[str, Any], name: str, v: Any, h: float = 1e-6
) -> float:
    """Central difference of L along ``v`` in argument ``name`` (restored exactly afterwards)."""
    x = np.array(net.x, copy=True)
    arr = arrays[name] if name != net.input_name else x
    keep = arr.copy()
    values = []
    for sign in (1.0, -1.0):
        arr[...] = keep + sign * h * v
        values.append(float(np.real(net.loss_value(x))))
        arr[...] = keep
    net.loss_value(np.array(net.x, copy=True))
    return (values[0] - values[1]) / (2 * h)


def check_function(
    forward: Fn,
    backward: Fn | None = None,
    *,
    shapes: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    integers: Mapping[str, int] | None = None,
    values: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    args_from: Fn | None = None,
    grad: Fn | None = None,
    seed: int = 0,
    base_dir: str | Path = ".",
    **options: Any,
) -> CheckResult:
    """Check a function pair, a loss function ``(loss, dx)``, or f with its ``grad``.

    ``forward``/``backward``/``grad`` are callables or ``"file.py:NAME"`` (``"layers.py:affine"``
    finds ``affine_forward``/``affine_backward``). ``shapes`` gives each float array argument's
    shape (drawn from ``seed``), ``values`` gives arrays as they are, ``integers`` makes an argument
    integer ids in [0, n), ``data`` gives fixed data, never differentiated (arrays, or files
    ``"X.npy"``, ``"d.npz:X"``, ``"X.json"`` relative to ``base_dir``), ``args`` are the other
    arguments (deep-copied for every call), and ``args_from`` a function (or ``"file.py:NAME"``)
    returning a dict of more of them, called once (with ``seed=`` if it takes one). The first
    array argument is the input; report names are the argument names. ``options`` go to the checker
    (eps, rtol, atol, method, mode, include, exclude, …).

        check_function(affine_forward, affine_backward, shapes={"x": (4, 5), "w": (5, 3), "b": (3,)})
        check_function(softmax_loss, shapes={"x": (5, 10)}, integers={"y": 10})
        check_function(f, grad=df, shapes={"x": (10,)})
    """
    base = Path(base_dir)
    found = find(forward, backward=backward, grad=grad, base_dir=base)
    argv = arguments(
        found.forward,
        shapes=shapes,
        integers=integers,
        values=values,
        args=args,
        data=load_entries(dict(data or {}), base, "data"),
        extra=extra_args(args_from, base, seed, "args_from") if args_from is not None else None,
        seed=seed,
        fields=API_FIELDS,
    )
    return run_check(function_network(found, argv, seed), seed=seed, **options)


# -- configs --------------------------------------------------------------------------------------


def _param_array(
    value: Any, rng: np.random.Generator, dtype: str, base_dir: Path, field: str
) -> Any:
    """A params entry: a shape ``[48, 10]``, or ``{shape, scale}``, ``{values}`` or ``{file}``."""
    spec = {"shape": value} if isinstance(value, list) else value
    if not isinstance(spec, dict) or len(set(spec) & {"shape", "values", "file"}) != 1:
        raise ConfigError(
            "a parameter is a shape like [48, 10], or {shape: [...], scale: 0.1}, "
            "{values: [...]} or {file: w.npy}",
            field=field,
        )
    unknown = set(spec) - {"shape", "scale", "values", "file"}
    if unknown:
        raise ConfigError(f"unknown key '{sorted(unknown)[0]}'", field=field,
                          hint="allowed keys: shape, scale, values, file")  # fmt: skip
    if "shape" in spec:
        shape = spec["shape"]
        if not (isinstance(shape, list) and shape and all(type(d) is int and d > 0 for d in shape)):
            raise ConfigError(f"shape must be a list of positive sizes, got {shape!r}", field=field)
        scale = spec.get("scale", 1.0)
        if type(scale) not in (int, float) or not np.isfinite(scale):
            raise ConfigError(f"scale must be a number, got {scale!r}", field=f"{field}.scale")
        drawn = rng.standard_normal(tuple(shape))
        drawn *= scale  # in place: one array, as the memory estimate counts (engine/spec_arrays)
        return drawn.astype(dtype, copy=False)
    try:
        if "values" in spec:
            return np.array(spec["values"], dtype=dtype)
        return read_array(base_dir / str(spec["file"])).astype(dtype)  # an input of the run
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read this parameter: {exc}", field=field) from None


def layer_factory(ref: str, base_dir: Path, field: str) -> Callable[..., Any]:
    """What ``build.build_network`` instantiates for ``{fn: "file.py:NAME", params: …, args: …}``.
    The layer input is the forward's first argument not named in ``params`` or ``args``."""

    def build(
        *,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        dtype: str = "float64",
        params: dict[str, Any] | None = None,
        args: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        args_from: str | None = None,
        backward: str | None = None,
    ) -> FunctionLayer:
        found = find(ref, backward=backward, base_dir=base_dir)
        if found.kind != "pair":
            raise ConfigError(
                f"'{ref}' names no forward/backward pair (a layer needs NAME_forward and "
                "NAME_backward, or backward: NAME)",
                field=f"{field}.fn",
            )
        _mappings(field, params=params, args=args, data=data)
        fields = _fields(field)
        extra = _extra(args_from, base_dir, rng, field)
        taken = {**(params or {}), **(args or {}), **(data or {}), **extra}
        free = [p.name for p in parameters(found.forward) if p.name not in taken]
        if not free:
            raise ConfigError(
                f"{found.label}: every argument is in params, data, args or args_from; one must "
                "be the layer input",
                field=field,
            )
        arrays = {
            k: _param_array(v, rng, dtype, base_dir, f"{field}.params.{k}")
            for k, v in (params or {}).items()
        }
        argv = arguments(
            found.forward,
            values=arrays,
            args=args,
            data=load_entries(dict(data or {}), base_dir, f"{field}.data"),
            extra=extra,
            fields=fields,
            shapes={free[0]: (1, *input_shape)},
        )
        argv.arrays.pop(free[0])
        return FunctionLayer(found, argv, free[0])

    build.data_bytes = lambda args: _data_bytes(args, base_dir, field)  # type: ignore[attr-defined]
    return build


def _data_bytes(args: dict[str, Any], base_dir: Path, field: str) -> float:
    """Bytes of an entry's ``data:`` (from the files' headers), for the memory estimate before
    anything is read."""
    data = args.get("data")
    if not isinstance(data, dict):
        return 0.0
    return sum(b for _, b in entries_bytes(data, base_dir, f"{field}.data"))


def _fields(field: str) -> Fields:
    return Fields(
        *(f"{field}.{k}" for k in ("params", "integers", "args", "params", "data", "args_from"))
    )


def _mappings(field: str, **given: Any) -> None:
    for key, value in given.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"must be a mapping, got {type(value).__name__}", field=f"{field}.{key}"
            )


def _extra(ref: Any, base_dir: Path, rng: np.random.Generator | None, field: str) -> dict[str, Any]:
    """What ``args_from:`` builds; its ``seed`` comes from a jump of the entry's random stream,
    so the entry's parameters are drawn as they would be without it."""
    if ref is None:
        return {}
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(
            f"args_from must look like 'file.py:NAME', got {ref!r}", field=f"{field}.args_from"
        )
    seed = 0
    if rng is not None:
        jumped = getattr(rng.bit_generator, "jumped", None)
        seed = int(np.random.Generator(jumped()).integers(2**31)) if jumped else 0
    return extra_args(ref, base_dir, seed, f"{field}.args_from")


def loss_factory(ref: str, base_dir: Path, field: str) -> Callable[..., Any]:
    """What ``build.build_network`` instantiates for ``loss: {fn: "file.py:NAME", args: …}``:
    ``NAME(pred, target, **args) -> (loss, dpred)``."""

    def build(
        *,
        args: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        args_from: str | None = None,
    ) -> FunctionLoss:
        found = find(ref, base_dir=base_dir)
        if found.kind != "loss":
            raise ConfigError(
                f"'{ref}' is a forward/backward pair, not a loss function", field=f"{field}.fn"
            )
        _mappings(field, args=args, data=data)
        order = parameters(found.forward)
        extra = _extra(args_from, base_dir, None, field)
        given = [("args", args or {}), ("data", data or {}), ("args_from", extra)]
        for key, names in given:
            unknown = [k for k in names if k not in [p.name for p in order]]
            if unknown:
                raise ConfigError(
                    f"{found.label} has no argument '{unknown[0]}'",
                    field=f"{field}.{key}",
                    hint=f"its arguments: {', '.join(p.name for p in order)}",
                )
        twice = sorted(
            set(extra) & set(args or {}) | set(data or {}) & (set(extra) | set(args or {}))
        )
        if twice:
            raise ConfigError(
                f"'{twice[0]}' is given twice (in more than one of args, data, args_from)",
                field=field,
            )
        argv = Arguments(
            found.label,
            order,
            values={**extra, **(args or {})},
            data=load_entries(dict(data or {}), base_dir, f"{field}.data"),
        )
        return FunctionLoss(found, argv)

    build.data_bytes = lambda args: _data_bytes(args, base_dir, field)  # type: ignore[attr-defined]
    return build

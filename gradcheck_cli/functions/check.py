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
from gradcheck_cli.functions.pairs import Arguments, Found, arguments, find, parameters
from gradcheck_cli.layers.losses import WeightedSum

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
    floats = argv.float_names[1:] or argv.float_names  # the input is rarely the labels
    if not floats:
        return None
    name = floats[-1]
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
    x = net.x
    layer = net.layers[0]
    if x is None or not isinstance(net.loss, WeightedSum) or len(failing) < 2:
        return []
    arrays = {net.input_name: x, **layer.params}
    net.loss_value(np.array(x, copy=True))
    dx, grads = net.backward()
    if not isinstance(dx, np.ndarray) or not isinstance(grads[0], dict):
        return []
    analytic = {net.input_name: dx, **grads[0]}
    rng = rng_for(seed, "swap probe")
    notes = []
    for i, a in enumerate(failing):
        for b in failing[i + 1 :]:
            if a not in analytic or b not in analytic or arrays[a].shape != arrays[b].shape:
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
    grad: Fn | None = None,
    seed: int = 0,
    base_dir: str | Path = ".",
    **options: Any,
) -> CheckResult:
    """Check a function pair, a loss function ``(loss, dx)``, or f with its ``grad``.

    ``forward``/``backward``/``grad`` are callables or ``"file.py:NAME"`` (``"layers.py:affine"``
    finds ``affine_forward``/``affine_backward``). ``shapes`` gives each float array argument's
    shape (drawn from ``seed``), ``values`` gives arrays as they are, ``integers`` makes an argument
    integer ids in [0, n), ``args`` are the other arguments (deep-copied for every call). The first
    array argument is the input; report names are the argument names. ``options`` go to the checker
    (eps, rtol, atol, method, mode, include, exclude, …).

        check_function(affine_forward, affine_backward, shapes={"x": (4, 5), "w": (5, 3), "b": (3,)})
        check_function(softmax_loss, shapes={"x": (5, 10)}, integers={"y": 10})
        check_function(f, grad=df, shapes={"x": (10,)})
    """
    found = find(forward, backward=backward, grad=grad, base_dir=Path(base_dir))
    argv = arguments(
        found.forward,
        shapes=shapes,
        integers=integers,
        values=values,
        args=args,
        seed=seed,
        fields=("shapes", "integers", "args", "values"),
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
        return (scale * rng.standard_normal(tuple(shape))).astype(dtype)
    try:
        if "values" in spec:
            return np.array(spec["values"], dtype=dtype)
        return np.load(base_dir / str(spec["file"]), allow_pickle=False).astype(dtype)
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
        backward: str | None = None,
    ) -> FunctionLayer:
        found = find(ref, backward=backward, base_dir=base_dir)
        if found.kind != "pair":
            raise ConfigError(
                f"'{ref}' names no forward/backward pair (a layer needs NAME_forward and "
                "NAME_backward, or backward: NAME)",
                field=f"{field}.fn",
            )
        for key, given in (("params", params), ("args", args)):
            if given is not None and not isinstance(given, dict):
                raise ConfigError(
                    f"must be a mapping, got {type(given).__name__}", field=f"{field}.{key}"
                )
        fields = (f"{field}.params", f"{field}.integers", f"{field}.args", f"{field}.params")
        free = [
            p.name
            for p in parameters(found.forward)
            if p.name not in (params or {}) and p.name not in (args or {})
        ]
        if not free:
            raise ConfigError(
                f"{found.label}: every argument is in params or args; one must be the layer input",
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
            fields=fields,
            shapes={free[0]: (1, *input_shape)},
        )
        argv.arrays.pop(free[0])
        return FunctionLayer(found, argv, free[0])

    return build


def loss_factory(ref: str, base_dir: Path, field: str) -> Callable[..., Any]:
    """What ``build.build_network`` instantiates for ``loss: {fn: "file.py:NAME", args: …}``:
    ``NAME(pred, target, **args) -> (loss, dpred)``."""

    def build(*, args: dict[str, Any] | None = None) -> FunctionLoss:
        found = find(ref, base_dir=base_dir)
        if found.kind != "loss":
            raise ConfigError(
                f"'{ref}' is a forward/backward pair, not a loss function", field=f"{field}.fn"
            )
        if args is not None and not isinstance(args, dict):
            raise ConfigError(
                f"must be a mapping, got {type(args).__name__}", field=f"{field}.args"
            )
        order = parameters(found.forward)
        unknown = [k for k in args or {} if k not in [p.name for p in order]]
        if unknown:
            raise ConfigError(
                f"{found.label} has no argument '{unknown[0]}'",
                field=f"{field}.args",
                hint=f"its arguments: {', '.join(p.name for p in order)}",
            )
        return FunctionLoss(found, Arguments(found.label, order, values=dict(args or {})))

    return build

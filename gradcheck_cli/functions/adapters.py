"""Adapters that make functions ordinary layers and losses (see gradcheck_cli/functions/pairs.py).

- ``FunctionLayer``: a pair ``forward(x, w, b) -> (out, cache)``, ``backward(dout, cache) ->
  (dx, dw, db)``; params are the float array arguments after the input.
- ``ScalarFunctionLayer``: a loss function ``(loss, dx)`` or f with grad, as a layer whose output
  is ``[loss]`` (checked with L = 1·loss).
- ``FunctionLoss``: a loss function as the loss of a config network.

Contract problems (a forward that does not return ``(out, cache)``, gradients of the wrong count,
shape or order, a backward that changes its cache so a second call differs) are PluginErrors that
name the function: exit 2, not a verdict.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.engine.network import Network, ParamRef
from gradcheck_cli.errors import PluginError
from gradcheck_cli.functions.pairs import Arguments, Found
from gradcheck_cli.functions.targets import _name
from gradcheck_cli.layers.base import Array
from gradcheck_cli.safety.inputs import npy_header


def describe(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)}"
    return f"a {type(v).__name__}"


def _is_number(v: Any) -> bool:
    if isinstance(v, (bool, str, bytes)):
        return False
    try:
        return np.size(v) == 1 and np.issubdtype(np.asarray(v).dtype, np.number)
    except (TypeError, ValueError):
        return False


def _order(got: list[tuple[int, ...]], want: list[tuple[int, ...]], names: list[str]) -> list[str]:
    """Which argument each returned shape belongs to (first unused argument of that shape)."""
    free = list(range(len(want)))
    out = []
    for shape in got:
        j = next(j for j in free if want[j] == shape)
        free.remove(j)
        out.append(names[j])
    return out


def _data_hint(names: list[str], items: list[Any]) -> str | None:
    """When fewer gradients came back than float arrays went in, the others may be fixed data."""
    if not 0 < len(items) < len(names):
        return None
    rest = names[len(items) :]
    flags = " ".join(f"--data {n}=FILE.npy" for n in rest)
    return (
        f"if {', '.join(rest)} {'is' if len(rest) == 1 else 'are'} fixed data, not a variable, "
        f"give {'it' if len(rest) == 1 else 'them'} with {flags} (API: data=; configs: data:): "
        "data is never differentiated"
    )


def grads_from(
    result: Any, names: list[str], shapes: list[tuple[int, ...]], who: str, fname: str
) -> list[Array]:
    """The gradients ``who`` returned, one per differentiated argument ``names`` of ``fname``,
    checked for count, type, shape and order."""
    ds = ", ".join(f"d{n}" for n in names)
    expect = (
        f"{len(names)} array{'s' if len(names) > 1 else ''} ({ds}): the gradients of {fname}'s "
        "floating-point array arguments, in their order"
    )
    if isinstance(result, np.ndarray) and len(names) == 1:
        items: list[Any] = [result]
    elif isinstance(result, (tuple, list)):
        items = list(result)
    else:
        raise PluginError(
            f"{who} returned {describe(result)}, expected {expect}",
            hint=_data_hint(names, [result]) if isinstance(result, np.ndarray) else None,
        )
    if len(items) != len(names):
        raise PluginError(
            f"{who} returned {len(items)} values, expected {expect}", hint=_data_hint(names, items)
        )
    for n, it in zip(names, items, strict=True):
        if not isinstance(it, np.ndarray):
            raise PluginError(f"{who} returned {describe(it)} as d{n}, not a NumPy array")
    got = [tuple(it.shape) for it in items]
    if got != shapes:
        if sorted(got) == sorted(shapes):
            order = ", ".join(f"d{n}" for n in _order(got, shapes, names))
            raise PluginError(
                f"{who} returned the gradients in the order ({order}) — expected ({ds})",
                hint=f"return the gradients in the order of {fname}'s arguments",
            )
        i = next(i for i, (g, s) in enumerate(zip(got, shapes, strict=True)) if g != s)
        n = names[i]
        same = int(np.prod(got[i])) == int(np.prod(shapes[i]))
        raise PluginError(
            f"{who} returned d{n} of shape {got[i]}, expected {shapes[i]} (the shape of {n})",
            hint=f"reshape it back: d{n}.reshape({n}.shape)" if same else None,
        )
    return items


def _snapshot(cache: Any) -> Any:
    try:
        return copy.deepcopy(cache)
    except Exception:  # something that cannot be copied: no mutation check for it
        return _NOCOPY


_NOCOPY = object()


def changed(before: Any, after: Any, path: str = "cache") -> str | None:
    """Where ``after`` differs from the copy ``before`` (e.g. ``cache[2]``), or None."""
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)):
            return path
        if before.shape != after.shape or before.dtype != after.dtype:
            return path
        try:
            same = np.array_equal(before, after, equal_nan=before.dtype.kind in "fc")
        except TypeError:
            same = True
        return None if same else path
    if isinstance(before, dict) and isinstance(after, dict):
        if before.keys() != after.keys():
            return path
        keys = list(before)
        pairs: list[tuple[Any, Any, str]] = [(before[k], after[k], f"{path}[{k!r}]") for k in keys]
    elif isinstance(before, (list, tuple)) and type(before) is type(after):
        if len(before) != len(after):
            return path
        pairs = [(b, a, f"{path}[{i}]") for i, (b, a) in enumerate(zip(before, after, strict=True))]
    else:
        try:
            return None if bool(before == after) else path
        except Exception:
            return None
    for b, a, p in pairs:
        where = changed(b, a, p)
        if where:
            return where
    return None


class _FunctionBase:
    """Calls ``argv``'s function with the layer input under ``input_name`` and the params."""

    #: A function may use batch statistics: feed it the real batch, one perturbed copy per call.
    row_independent = False

    def __init__(self, found: Found, argv: Arguments, input_name: str) -> None:
        self.found = found
        self.argv = argv
        self.input_name = input_name
        self.fname = _name(found.forward)
        self.params: dict[str, Array] = {
            n: argv.arrays[n] for n in argv.float_names if n != input_name
        }
        self.grads: dict[str, Array] = {}
        self._diff: list[str] = []
        self._shapes: list[tuple[int, ...]] = []

    def _arrays(self, x: Array) -> dict[str, Array]:
        arrays = {self.input_name: x, **self.params}
        self._diff = [
            p.name
            for p in self.argv.order
            if p.name in arrays and np.issubdtype(arrays[p.name].dtype, np.inexact)
        ]
        self._shapes = [tuple(arrays[n].shape) for n in self._diff]
        self._x_shape = x.shape
        return arrays

    def _finish(self, grads: Sequence[Array], scale: Any = 1.0) -> Array:
        self.grads = {
            n: scale * g for n, g in zip(self._diff, grads, strict=True) if n in self.params
        }
        if self._diff and self._diff[0] == self.input_name:
            return np.asarray(scale * grads[0])
        return np.zeros(self._x_shape)  # integer ids: no gradient


class FunctionLayer(_FunctionBase):
    """A forward/backward function pair as a layer."""

    def __init__(self, found: Found, argv: Arguments, input_name: str) -> None:
        super().__init__(found, argv, input_name)
        assert found.backward is not None
        self.bname = _name(found.backward)
        self.cache: Any = None

    def forward(self, x: Array) -> Array:
        res = self.argv.call(self.found.forward, self._arrays(x))
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise PluginError(
                f"{self.fname} returned {describe(res)}, expected (out, cache)",
                hint="a forward returns its output and what its backward needs: return out, cache",
            )
        if not isinstance(res[0], np.ndarray):
            raise PluginError(
                f"{self.fname} returned (out, cache) with out {describe(res[0])}, not a NumPy array"
            )
        self.cache = res[1]
        return res[0]

    def backward(self, dout: Array) -> Array:
        assert self.found.backward is not None
        keep = dout.copy()
        before = _snapshot(self.cache)
        grads = self._grads(self.found.backward(dout, self.cache))
        where = None if before is _NOCOPY else changed(before, self.cache)
        if where is not None:
            again = self._grads(self.found.backward(keep, self.cache))
            differ = [
                n
                for n, a, b in zip(self._diff, grads, again, strict=True)
                if not np.array_equal(a, b, equal_nan=True)
            ]
            if differ:
                raise PluginError(
                    f"{self.bname} modifies its cache ({where} changed in place), so a second "
                    f"backward with the same dout gives a different d{differ[0]}",
                    hint="read the cache, never write into it (x -= …, cache['k'] = …): "
                    "compute new arrays instead",
                )
        return self._finish(grads)

    def _grads(self, res: Any) -> list[Array]:
        return grads_from(res, self._diff, self._shapes, self.bname, self.fname)


class ScalarFunctionLayer(_FunctionBase):
    """A loss function ``(loss, dx)`` (kind "loss") or f with its grad (kind "f") as a layer whose
    output is ``[loss]``; backward(dout) scales the gradients by ``dout[0]``."""

    def __init__(self, found: Found, argv: Arguments, input_name: str) -> None:
        super().__init__(found, argv, input_name)
        self._last: Any = None

    def forward(self, x: Array) -> Array:
        arrays = self._arrays(x)
        res = self.argv.call(self.found.forward, arrays)
        if self.found.kind == "f":
            loss, self._last = res, arrays
        elif isinstance(res, (tuple, list)) and len(res) >= 2:
            loss, self._last = res[0], (res[1] if len(res) == 2 else tuple(res[1:]))
        elif _is_number(res):
            raise PluginError(
                f"{self.fname} returned a number, not (loss, dx)",
                hint="a loss function returns (loss, dx); for f(x) -> float give its gradient: "
                "--grad FILE.py:NAME (API: grad=)",
            )
        else:
            raise PluginError(f"{self.fname} returned {describe(res)}, expected (loss, dx)")
        if not _is_number(loss):
            raise PluginError(
                f"{self.fname} returned {describe(loss)} as the loss, not a number",
                hint="a loss function returns (loss, dx); a forward returning (out, cache) needs "
                "its backward: NAME_backward next to it, or --backward (API: backward=)",
            )
        return np.reshape(np.asarray(loss), (1,))

    def backward(self, dout: Array) -> Array:
        if self.found.kind == "f":
            assert self.found.backward is not None
            who = _name(self.found.backward)
            res = self.argv.call(self.found.backward, self._last)
        else:
            who, res = self.fname, self._last
        grads = grads_from(res, self._diff, self._shapes, who, self.fname)
        return self._finish(grads, np.reshape(dout, -1)[0])


class FunctionLoss:
    """A loss function ``fn(pred, target, …) -> (loss, dpred)`` as a network's loss."""

    def __init__(self, found: Found, argv: Arguments) -> None:
        self.found = found
        self.argv = argv
        self.fname = _name(found.forward)
        names = [
            p.name for p in argv.order if p.name not in argv.values and p.name not in argv.data
        ]
        self.pred_name = names[0]
        self.target_name = names[1] if len(names) > 1 else None
        self._dx: Any = None
        self._shape: tuple[int, ...] = ()

    def forward(self, pred: Array, target: Array | None) -> Any:
        arrays = {self.pred_name: pred}
        if target is not None and self.target_name is not None:
            arrays[self.target_name] = target
        else:
            needs = [p for p in self.argv.order if p.name == self.target_name]
            if needs and needs[0].default is needs[0].empty:
                raise PluginError(
                    f"{self.fname} needs its argument '{self.target_name}', and there is no target",
                    hint="add a target, e.g. target: {kind: classes}",
                )
        res = self.argv.call(self.found.forward, arrays)
        if not (isinstance(res, (tuple, list)) and len(res) == 2 and _is_number(res[0])):
            raise PluginError(f"{self.fname} returned {describe(res)}, expected (loss, dx)")
        self._dx, self._shape = res[1], tuple(pred.shape)
        return res[0]

    def backward(self) -> Array:
        (dx,) = grads_from(self._dx, [self.pred_name], [self._shape], self.fname, self.fname)
        return dx


class FunctionNetwork(Network):
    """One function as a network whose report names are its argument names (x, w, b)."""

    def __init__(self, layer: Any, loss: Any, input_name: str, **kwargs: Any) -> None:
        super().__init__([layer], loss, **kwargs)
        self.input_name = input_name

    def parameters(self, include_input: bool = True) -> list[ParamRef]:
        refs = [ParamRef(self.input_name, 0, None)] if include_input else []
        return refs + [ParamRef(k, 0, k) for k in self.layers[0].params]

    def param_name(self, i: int, key: str) -> str:
        return key

    def describe(self, i: int) -> str:
        return self.labels[i]

    def call(self, i: int, method: str) -> str:
        """The user's own function, by its name: ``affine_forward`` / ``affine_backward`` (a loss
        function ``(loss, dx)`` is both), never ``affine_forward.forward``."""
        found = self.layers[i].found
        if method == "backward" and found.backward is not None:
            return _name(found.backward)
        return _name(found.forward)


def param_shapes(params: Any, base_dir: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each parameter an ``fn:`` layer's ``params`` describes, from the spec
    alone — ``[48, 10]``, ``{shape}``, ``{values}``, ``{file}`` (its .npy header) — so the memory
    estimate counts them before any is drawn or read. Entries it cannot size are left out:
    building the layer says what is wrong with them."""
    out: list[tuple[str, tuple[int, ...]]] = []
    if not isinstance(params, dict):
        return out
    for name, value in params.items():
        spec = {"shape": value} if isinstance(value, list) else value
        shape: Any = None
        if isinstance(spec, dict) and isinstance(spec.get("shape"), list):
            shape = spec["shape"]
        elif isinstance(spec, dict) and isinstance(spec.get("file"), str):
            header = npy_header(base_dir / spec["file"])
            shape = header[0] if header else None
        elif isinstance(spec, dict) and "values" in spec:
            try:
                shape = np.shape(spec["values"])
            except (ValueError, TypeError):
                shape = None
        if shape is not None and all(type(d) is int and d >= 0 for d in shape):
            out.append((str(name), tuple(shape)))
    return out

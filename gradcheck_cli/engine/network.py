"""A sequential network: forward with cached layer inputs, backward, named params (build.py makes one from a config)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck_cli.errors import (
    GradcheckError,
    NumericError,
    PluginError,
    user_code_error,
)
from gradcheck_cli.layers.base import Array
from gradcheck_cli.safety.isolation import user_code


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per named stream, so adding one draw never shifts another."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


@dataclass(frozen=True)
class ParamRef:
    """One checked tensor: a layer parameter (``layer``, ``key``) or the network input."""

    name: str
    layer: int  # index of the first layer that reads it (0 for the input)
    key: str | None  # None for the input


class FloatingPointLog:
    """Counts NumPy floating-point events (overflow, divide by zero, invalid) by where they
    happened, instead of letting NumPy print RuntimeWarnings. Underflow is not recorded."""

    def __init__(self) -> None:
        self.where = "the network"
        self.counts: dict[tuple[str, str], int] = {}

    def __call__(self, kind: str, flag: int) -> None:
        key = (self.where, kind)
        self.counts[key] = self.counts.get(key, 0) + 1

    def notes(self) -> list[str]:
        return [
            f"NumPy {kind} in {where} ({n} time{'s' if n > 1 else ''})"
            for (where, kind), n in self.counts.items()
        ]


#: Raised in user or layer code but not the user's error: they go on as they are.
_PASS_THROUGH = (GradcheckError, KeyboardInterrupt)


def first_nonfinite(a: Array) -> str | None:
    """'k of n values are NaN/Inf, first at (i, j)' or None when ``a`` is all finite."""
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.number):
        return None
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    kinds = "NaN" if np.isnan(arr).any() else "Inf"
    if kinds == "NaN" and np.isinf(arr).any():
        kinds = "NaN/Inf"
    return f"{int(bad.sum())} of {arr.size} values are {kinds}, first at {idx}"


class Network:
    """Layers applied in order, then a loss. Keeps each layer's input from the last forward pass."""

    def __init__(
        self,
        layers: list[Any],
        loss: Any,
        *,
        labels: list[str] | None = None,
        loss_label: str | None = None,
        x: Array | None = None,
        target: Array | None = None,
        trusted: list[bool] | None = None,
        name: str = "network",
        discrete: bool = False,
    ) -> None:
        self.layers = layers
        self.loss = loss
        self.labels = labels if labels is not None else [type(la).__name__ for la in layers]
        self.loss_label = loss_label or type(loss).__name__
        self.x = x
        self.target = target
        self.name = name
        #: The input is integer ids (a config's ``input.integers``): no input gradient.
        self.discrete = discrete
        #: Built-in layers are trusted not to mutate their input; user layers get copies.
        self.trusted = trusted if trusted is not None else [False] * len(layers)
        self.inputs: list[Array] = []
        #: Upstream gradient each layer received in the last backward pass.
        self.douts: list[Array] = []
        #: Indices of (user) layers seen modifying their input in place during a watched forward.
        self.mutated: set[int] = set()
        self.watch = False
        self.output: Array | None = None
        #: NumPy floating-point events during any pass (see FloatingPointLog).
        self.fp = FloatingPointLog()
        #: Where NaN/Inf first entered the last backward pass (None if it stayed finite).
        self.backward_nonfinite: str | None = None
        #: What the engine found and worked around (a false declaration, a forward that re-binds
        #: its parameters), in order, without repeats: reported as notes of a check.
        self.findings: dict[str, None] = {}
        #: Inside :meth:`watching`: floating-point events are being recorded already.
        self._watched = False
        #: Inside :meth:`focused`: the (layer, key) whose array the engine is changing now.
        self._focus: tuple[int, str] | None = None

    @contextmanager
    def stage(self, where: str) -> Iterator[None]:
        """Run user or layer code: record floating-point events under ``where``, send what it
        prints to stderr (stdout carries the report, e.g. JSON), and turn what it raises into a
        PluginError naming ``where`` and the line that raised."""
        self.fp.where = where
        try:
            with self._fp_recorded(), user_code(where):
                yield
        except _PASS_THROUGH:
            raise
        except BaseException as exc:  # SystemExit, asyncio.CancelledError, …: the user's error
            raise user_code_error(exc, where) from exc

    def _fp_recorded(self) -> Any:
        return np.errstate(over="call", divide="call", invalid="call", under="ignore", call=self.fp)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Record floating-point events for a whole block of calls (a forward pass, a chunk of
        the engine's copies): a built-in layer's forward then runs without a stage of its own
        (:meth:`run_layer`; a stage costs about 3 µs, a call on a small chunk not much more)."""
        with self._fp_recorded():
            was, self._watched = self._watched, True
            try:
                yield
            finally:
                self._watched = was

    # -- naming ---------------------------------------------------------------------------------
    def describe(self, i: int) -> str:
        return f"layer {i} ({self.labels[i]})"

    def call(self, i: int, method: str) -> str:
        """What a message names for layer ``i``'s ``forward`` or ``backward`` (what raised, what
        returned a wrong shape): ``layer 0 (linear).forward``."""
        return f"{self.describe(i)}.{method}"

    def parameters(self, include_input: bool = True) -> list[ParamRef]:
        refs = [ParamRef("input", 0, None)] if include_input else []
        for i, layer in enumerate(self.layers):
            refs += [ParamRef(self.param_name(i, k), i, k) for k in layer.params]
        return refs

    def param_name(self, i: int, key: str) -> str:
        """Report name of parameter ``key`` of layer ``i``: ``0.linear.W``, ``2.MyLayer.a``."""
        return f"{i}.{self.labels[i].rpartition(':')[2]}.{key}"

    # -- passes ---------------------------------------------------------------------------------
    def forward(self, x: Array, start: int = 0) -> Array:
        """Run layers ``start…`` on ``x`` (the input of layer ``start``), caching layer inputs."""
        if start == 0:
            self.inputs = []
        del self.inputs[start:]
        out = x
        with self.watching():
            for i in range(start, len(self.layers)):
                self.inputs.append(out)
                arg = out if self.trusted[i] else out.copy()
                out = self.run_layer(i, arg)
                watched = self.watch and arg is not self.inputs[i]
                if watched and not np.array_equal(arg, self.inputs[i], equal_nan=True):
                    self.mutated.add(i)
        self.output = out
        return out

    def run_layer(self, i: int, x: Array) -> Array:
        """Layer ``i``'s forward on ``x``, errors attributed. For a user layer the result is a
        C-ordered copy (a reused output buffer, a view of a parameter or of ``x`` must not change
        under later calls), and its ``params`` are put back as they were if forward re-binds them
        (``params['W'] = params['W'].astype(...)``): the breach is recorded in ``findings``."""
        layer = self.layers[i]
        if self.trusted[i] and self._watched:  # a built-in layer: no prints, no plugin to watch
            self.fp.where = where = self.call(i, "forward")
            try:
                out: Array = layer.forward(x)
            except _PASS_THROUGH:
                raise
            except BaseException as exc:
                raise user_code_error(exc, where) from exc
            return out
        held = None if self.trusted[i] else self._held(i)
        with self.stage(self.call(i, "forward")):  # FP events, prints, errors
            out = layer.forward(x)
        if held is not None:
            self._put_back(i, held)
        if not isinstance(out, np.ndarray):
            raise PluginError(
                f"{self.call(i, 'forward')} returned {type(out).__name__}, not a NumPy array"
            )
        return out if self.trusted[i] else np.array(out, order="C", copy=True)

    def _held(self, i: int) -> dict[str, Array]:
        """What of user layer ``i``'s params to check after a call: everything, or during
        :meth:`focused` only the array the engine is changing (a layer's other arrays keep
        their values through a re-binding, and are checked when the focus ends)."""
        params = self.layers[i].params
        if self._focus is None:
            return dict(params)
        layer, key = self._focus
        if layer != i or not isinstance(params, dict) or key not in params:
            return {}
        return {key: params[key]}

    @contextmanager
    def focused(self, ref: ParamRef) -> Iterator[None]:
        """While the engine evaluates perturbed copies of ``ref``: user layers' params are checked
        after each call only for ``ref``'s own array (O(1) instead of O(#arrays) a call: a
        layer with thousands of scalar parameters), and all of them once when the focus ends."""
        if self._focus is not None:
            yield
            return
        held = {
            i: dict(la.params)
            for i, la in enumerate(self.layers)
            if not self.trusted[i] and isinstance(la.params, dict)
        }
        self._focus = (ref.layer, ref.key) if ref.key is not None else (-1, "")  # the input
        try:
            yield
        finally:
            self._focus = None
            for i, entries in held.items():
                self._put_back(i, entries)

    def _put_back(self, i: int, entries: dict[str, Array]) -> None:
        """Put back every array of layer ``i``'s params that forward replaced by another object
        (keys it added, e.g. created lazily on the first call, are left alone)."""
        now = self.layers[i].params
        if not isinstance(now, dict):
            return
        moved = [k for k in entries if k in now and now[k] is not entries[k]]
        for k in moved:
            now[k] = entries[k]
        if moved:
            self.findings[
                f"{self.call(i, 'forward')} replaces params['{moved[0]}'] with a new array "
                "instead of reading it (e.g. params['W'] = params['W'].astype(...)); gradcheck put "
                "the original back after every call, so the perturbed values were the ones used. "
                "Convert parameters once in __init__ and update them in place"
            ] = None

    def loss_value(self, x: Array, start: int = 0) -> Any:
        """L for input ``x`` of layer ``start`` (layers before it are taken as cached)."""
        out = self.forward(x, start)
        with self.stage(f"loss ({self.loss_label}).forward"):
            return self.loss.forward(out, self.target)

    def explain_nonfinite(self, x: Array, loss: Any) -> NumericError:
        """Say where the unperturbed pass first stopped being finite (after ``loss_value``)."""
        where = "input x"
        problem = first_nonfinite(x)
        if problem is None:
            for i in range(len(self.layers)):
                after = self.inputs[i + 1] if i + 1 < len(self.inputs) else self.output
                problem = first_nonfinite(after) if after is not None else None
                if problem:
                    where = f"the output of {self.describe(i)} (its input is finite)"
                    break
        if problem is None:
            where = f"the loss ({self.loss_label}), though the network output is finite"
            problem = f"L = {loss}"
        happened = self.fp.notes()
        return NumericError(
            f"NaN/Inf in the unperturbed forward pass: {where}: {problem}",
            hint="no gradient can be checked at a point where the loss is not finite; "
            "use smaller inputs or initial weights"
            + (f" (seen: {'; '.join(happened)})" if happened else ""),
        )

    def backward(self, promote: bool = False) -> tuple[Array | str, list[dict[str, Array] | str]]:
        """Backward pass after ``loss_value``. Returns (dx, per-layer grads); a string instead of
        an array/dict says why that gradient is unavailable (a layer broke the chain).
        ``promote``: a float32 dout from the loss (e.g. WeightedSum's fixed g) enters the layers
        as float64 (the float64 twin of a float32 network)."""
        with self.stage(f"loss ({self.loss_label}).backward"):
            dout = np.asarray(self.loss.backward())
        if promote and dout.dtype == np.float32:
            dout = dout.astype(np.float64)
        grads: list[dict[str, Array] | str] = [""] * len(self.layers)
        self.douts = [dout] * len(self.layers)
        broken: str | None = None
        self.backward_nonfinite = (
            f"loss ({self.loss_label}).backward" if first_nonfinite(dout) else None
        )
        for i in reversed(range(len(self.layers))):
            if broken:
                grads[i] = broken
                continue
            layer = self.layers[i]
            self.douts[i] = dout
            with self.stage(self.call(i, "backward")):
                dx = layer.backward(dout.copy())
            if not isinstance(dx, np.ndarray):
                # Not a gradient of the wrong size but no gradient at all (often a missing
                # `return dx`): the layer breaks the contract, so exit 2 rather than a verdict.
                raise PluginError(
                    f"{self.call(i, 'backward')} returned {type(dx).__name__}, not a NumPy array",
                    hint="backward(dout) must return dx, an array of the layer input's shape",
                )
            if not isinstance(layer.grads, dict):
                raise PluginError(
                    f"{self.describe(i)}.grads is a {type(layer.grads).__name__} after backward, "
                    "not a dict",
                    hint="backward must fill the dict grads with the same keys as params",
                )
            copied = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
            grads[i] = copied
            if self.backward_nonfinite is None:
                bad = [f"grads['{k}']" for k, v in copied.items() if first_nonfinite(v)]
                bad += ["dx"] if first_nonfinite(dx) else []
                if bad:
                    self.backward_nonfinite = f"{self.call(i, 'backward')} ({', '.join(bad)})"
            expected = self.inputs[i].shape
            if dx.shape != expected:
                broken = (
                    f"{self.call(i, 'backward')} returned dx of shape {dx.shape}, "
                    f"expected the input's shape {expected}"
                )
                # Layers below never receive an upstream gradient: an empty dout says so
                # (attribution cannot check them on their own; nothing else reads it).
                self.douts[:i] = [np.empty((0,), dtype=dout.dtype)] * i
            else:
                dout = dx
        return (broken if broken else dout.copy()), grads


# -- building from a config ---------------------------------------------------------------------

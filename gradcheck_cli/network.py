"""A sequential network built from a spec: forward with cached layer inputs, backward, named params."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.config import Config, DataSpec, TargetSpec
from gradcheck_cli.contracts import check_loss_behaviour, check_output_dtype
from gradcheck_cli.errors import (
    ConfigError,
    GradcheckError,
    NumericError,
    PluginError,
    ShapeError,
    user_code_error,
)
from gradcheck_cli.isolation import user_code
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.limits import (
    Limits,
    MemoryPlan,
    array_bytes,
    estimate_layer,
    estimate_workspace,
)
from gradcheck_cli.outputs import note_input
from gradcheck_cli.registry import (
    LOSSES,
    check_layer_contract,
    check_loss_contract,
    instantiate,
    is_plugin,
    resolve,
)


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

    @contextmanager
    def stage(self, where: str) -> Iterator[None]:
        """Run user or layer code: record floating-point events under ``where``, send what it
        prints to stderr (stdout carries the report, e.g. JSON), and turn what it raises into a
        PluginError naming ``where`` and the line that raised."""
        self.fp.where = where
        try:
            with (
                np.errstate(
                    over="call", divide="call", invalid="call", under="ignore", call=self.fp
                ),
                user_code(where),
            ):
                yield
        except GradcheckError:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit, asyncio.CancelledError, …: the user's error
            raise user_code_error(exc, where) from exc

    # -- naming ---------------------------------------------------------------------------------
    def describe(self, i: int) -> str:
        return f"layer {i} ({self.labels[i]})"

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
        held = None if self.trusted[i] else dict(layer.params)
        with self.stage(f"{self.describe(i)}.forward"):  # FP events, prints, errors
            out = layer.forward(x)
        if held is not None:
            self._put_back(i, held)
        if not isinstance(out, np.ndarray):
            raise PluginError(
                f"{self.describe(i)}.forward returned {type(out).__name__}, not a NumPy array"
            )
        return out if self.trusted[i] else np.array(out, order="C", copy=True)

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
                f"{self.describe(i)}.forward replaces params['{moved[0]}'] with a new array "
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

    def backward(self) -> tuple[Array | str, list[dict[str, Array] | str]]:
        """Backward pass after ``loss_value``. Returns (dx, per-layer grads); a string instead of
        an array/dict says why that gradient is unavailable (a layer broke the chain)."""
        with self.stage(f"loss ({self.loss_label}).backward"):
            dout = np.asarray(self.loss.backward())
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
            with self.stage(f"{self.describe(i)}.backward"):
                dx = layer.backward(dout.copy())
            if not isinstance(dx, np.ndarray):
                # Not a gradient of the wrong size but no gradient at all (often a missing
                # `return dx`): the layer breaks the contract, so exit 2 rather than a verdict.
                raise PluginError(
                    f"{self.describe(i)}.backward returned {type(dx).__name__}, not a NumPy array",
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
                    self.backward_nonfinite = f"{self.describe(i)}.backward ({', '.join(bad)})"
            expected = self.inputs[i].shape
            if dx.shape != expected:
                broken = (
                    f"{self.describe(i)}.backward returned dx of shape {dx.shape}, "
                    f"expected the input's shape {expected}"
                )
                # Layers below never receive an upstream gradient: an empty dout says so
                # (attribution cannot check them on their own; nothing else reads it).
                self.douts[:i] = [np.empty((0,), dtype=dout.dtype)] * i
            else:
                dout = dx
        return (broken if broken else dout.copy()), grads


# -- building from a config ---------------------------------------------------------------------


def _load_array(spec: DataSpec | TargetSpec, cfg: Config, field: str) -> Array | None:
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
        note_input(path)
        if path.exists() and not path.is_file():  # a directory, pipe or device: never open it
            raise ConfigError(
                f"{path} is not a regular file", file=cfg.source, field=f"{field}.file"
            )
        try:
            return np.asarray(np.load(path, allow_pickle=False), dtype=float)
        except FileNotFoundError:
            raise ConfigError(
                f"file not found: {path}", file=cfg.source, field=f"{field}.file"
            ) from None
        except Exception as exc:
            raise ConfigError(
                f"cannot read {path} as a .npy array: {exc}", file=cfg.source, field=f"{field}.file"
            ) from None
    return None


def _context(err: GradcheckError, cfg: Config, field: str) -> GradcheckError:
    if err.file is None:
        err.file = cfg.source
    if err.field is None:
        err.field = field
    return err


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The shape in a .npy header, read without loading the data (None if unreadable)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if major == 1 else None
            read = read or np.lib.format.read_array_header_2_0
            shape, _, _ = read(fh)
        return tuple(int(d) for d in shape)
    except Exception:
        return None


def _input_shape(cfg: Config) -> tuple[int, ...] | None:
    spec = cfg.input
    if spec.shape is not None:
        return tuple(spec.shape)
    if spec.file is not None:
        return _npy_shape(Path(cfg.base_dir) / spec.file)
    return None


def build_network(cfg: Config, *, limits: Limits | None = None) -> Network:
    """Build the layers in order, each sized by the output of the one before (run on the input).

    Memory is budgeted as it goes (``limits``, default ``Limits()``): an input, a layer or a
    stack of layer outputs over the limit is refused before it is allocated (``LimitError``).
    A NaN/Inf input or layer output at this unperturbed point is a ``NumericError``."""
    plan = MemoryPlan(limits or Limits(), cfg.source)
    shape = _input_shape(cfg)
    if shape is not None:
        plan.add("input", array_bytes(shape, cfg.dtype), "input")
    x = _load_array(cfg.input, cfg, "input")
    if x is None:
        assert cfg.input.shape is not None
        rng = rng_for(cfg.seed, "input")
        if cfg.input.integers is None:
            x = rng.standard_normal(cfg.input.shape)
        else:
            x = rng.integers(0, cfg.input.integers, cfg.input.shape)
    if x.ndim < 2:
        raise ShapeError(
            f"the input needs a batch axis: shape (batch, features...), got {x.shape}",
            file=cfg.source,
            field="input",
        )
    if x.size == 0:
        raise ConfigError(
            f"the input is empty (shape {x.shape}): there is nothing to check",
            file=cfg.source,
            field="input",
        )
    if shape is None:
        plan.add("input", float(x.nbytes), "input")
    bad = first_nonfinite(x)
    if bad:
        raise ConfigError(f"the input is not finite: {bad}", file=cfg.source, field="input")
    x = x.astype(cfg.dtype) if cfg.input.integers is None else _integer_ids(x, cfg)
    layers: list[Any] = []
    labels: list[str] = []
    trusted: list[bool] = []
    out = x
    net = Network(
        layers, None, labels=labels, trusted=trusted, name=cfg.name,
        discrete=cfg.input.integers is not None,
    )  # fmt: skip
    for i, spec in enumerate(cfg.layers):
        field = f"layers[{i}]"
        try:
            if spec.fn is not None:  # a function pair: gradcheck_cli/function_check.py
                from gradcheck_cli.function_check import layer_factory

                cls: Any = layer_factory(spec.fn, cfg.base_dir, field)
            else:
                cls = resolve(spec.type, "layer", cfg.base_dir)
            in_shape = tuple(out.shape[1:])
            est = estimate_layer(cls, in_shape, spec.args)
            if est is not None:
                n_params, out_shape = est
                plan.add(f"layer {i} ({spec.type}) parameters", n_params * out.itemsize, field)
                plan.add(
                    f"layer {i} output", array_bytes((out.shape[0], *out_shape), cfg.dtype), field
                )
            work = estimate_workspace(cls, in_shape, spec.args)
            if work:
                plan.peak(
                    f"layer {i} temporaries", float(out.shape[0]) * work * out.itemsize, field
                )
            layer = instantiate(
                cls,
                f"layer {i} ({spec.type})",
                spec.args,
                input_shape=tuple(out.shape[1:]),
                rng=rng_for(cfg.seed, f"layer{i}"),
                dtype=cfg.dtype,
                base_dir=cfg.base_dir,
            )
            check_layer_contract(layer, f"layer {i} ({spec.type})")
            if est is None:
                n_bytes = sum(float(np.asarray(v).nbytes) for v in layer.params.values())
                plan.add(f"layer {i} ({spec.type}) parameters", n_bytes, field)
            layers.append(layer)
            labels.append(spec.type)
            trusted.append(not is_plugin(spec.type))
            try:
                out = net.forward(out, start=i) if i else net.forward(x)
            except PluginError as exc:
                if any(w in str(exc) for w in ("shape", "align", "broadcast", "dimension")):
                    own = ", ".join(f"{k} {np.shape(v)}" for k, v in layer.params.items())
                    raise ShapeError(
                        f"layer {i} ({spec.type}) cannot take input of shape {net.inputs[i].shape}"
                        + (f" (its parameters: {own})" if own else "")
                        + f": {exc.message}"
                    ) from exc
                raise
            check_output_dtype(net, i, net.inputs[i], out)
            if est is None:
                plan.add(f"layer {i} output", float(out.nbytes), field)
            bad = first_nonfinite(out)
            if bad:
                raise NumericError(
                    f"the output of layer {i} ({spec.type}) is not finite though its input is: "
                    f"{bad}" + (f" ({'; '.join(net.fp.notes())})" if net.fp.counts else ""),
                    hint="no gradient can be checked where the loss is not finite; "
                    "use smaller inputs or initial weights",
                )
        except GradcheckError as err:
            if i and isinstance(err, ShapeError) and err.hint and "the input" in err.hint:
                # Not the config's input: the previous layer's output is what does not fit.
                prev = f"layers[{i - 1}] ({cfg.layers[i - 1].type})"
                hint = err.hint.replace("flatten the input first", "add {type: flatten} before it")
                hint = hint.replace("give the input a", "change the layers before it to output a")
                err.hint = f"{prev} outputs per-sample shape {tuple(out.shape[1:])}; {hint}"
            raise _context(err, cfg, field) from err.__cause__
    net.loss, net.loss_label, net.target = _build_loss(cfg, out)
    net.x = x
    if cfg.loss is not None:
        try:
            check_loss_behaviour(net)
        except GradcheckError as err:
            raise _context(err, cfg, "loss") from err.__cause__
    try:
        loss = net.loss_value(x)
    except GradcheckError as err:
        raise _context(err, cfg, "loss") from err.__cause__
    if _is_number(loss) and not np.isfinite(np.asarray(loss, dtype=complex)).all():
        raise _context(net.explain_nonfinite(x, loss), cfg, "loss")
    return net


def _is_number(v: Any) -> bool:
    try:
        np.asarray(v, dtype=complex)
    except (TypeError, ValueError):
        return False
    return np.size(v) == 1


def _integer_ids(x: Array, cfg: Config) -> Array:
    """Given ids (input.values/file with input.integers) as int64, each in [0, integers)."""
    n = cfg.input.integers
    assert n is not None
    if not np.all(x == np.round(x)) or x.min() < 0 or x.max() >= n:
        raise ConfigError(
            f"input ids must be integers in 0…{n - 1} (input.integers is {n})",
            file=cfg.source,
            field="input",
        )
    return x.astype(np.int64)


def _build_loss(cfg: Config, out: Array) -> tuple[Any, str, Array | None]:
    tgt = cfg.target
    if cfg.loss is None:
        if tgt.kind != "none":
            raise ConfigError(
                f"target.kind is '{tgt.kind}' but there is no loss",
                file=cfg.source,
                field="target.kind",
                hint="add a loss (e.g. loss: {type: softmax_cross_entropy}) or drop the target",
            )
        g = rng_for(cfg.seed, "upstream").standard_normal(out.shape).astype(cfg.dtype)
        return WeightedSum(g), "Σ out⊙g", None
    label = cfg.loss.type
    try:
        if cfg.loss.fn is not None:  # a loss function: gradcheck_cli/function_check.py
            from gradcheck_cli.function_check import loss_factory

            cls: Any = loss_factory(cfg.loss.fn, cfg.base_dir, "loss")
        else:
            cls = resolve(label, "loss", cfg.base_dir)
        loss = instantiate(cls, f"loss ({label})", cfg.loss.args)
        check_loss_contract(loss, f"loss ({label})")
    except GradcheckError as err:
        raise _context(err, cfg, "loss") from err.__cause__
    kinds = getattr(cls, "target_kinds", None)
    if label in LOSSES and kinds is not None and tgt.kind not in kinds:
        raise ConfigError(
            f"loss '{label}' needs a target of kind {' or '.join(kinds)}, got '{tgt.kind}'",
            file=cfg.source,
            field="target.kind",
        )
    return loss, label, _build_target(cfg, tgt, out, loss)


def _build_target(cfg: Config, tgt: TargetSpec, out: Array, loss: Any = None) -> Array | None:
    if tgt.kind == "none":
        return None
    given = _load_array(tgt, cfg, "target")
    if tgt.kind == "classes" and getattr(loss, "per_position_targets", False):
        return _position_labels(cfg, tgt, out, given, getattr(loss, "ignore_index", None))
    if tgt.kind == "classes":
        if out.ndim != 2:
            raise ShapeError(
                f"class targets need a network output of shape (batch, classes), got {out.shape}",
                file=cfg.source,
                field="target",
                hint="for per-position logits (batch, time, classes) use "
                "loss: {type: sequence_cross_entropy}"
                if out.ndim > 2
                else None,
            )
        width = out.shape[1]
        if tgt.classes is not None and tgt.classes != width:
            raise ShapeError(
                f"target.classes is {tgt.classes} but the network outputs {width} columns "
                f"(output shape {out.shape})",
                file=cfg.source,
                field="target.classes",
                hint=f"set classes: {width}, or make the last layer output {tgt.classes}",
            )
        if given is None:
            labels: Array = np.asarray(
                rng_for(cfg.seed, "target").integers(0, width, size=out.shape[0])
            )
            return labels
        if given.shape != (out.shape[0],) or np.any(given != np.round(given)):
            raise ShapeError(
                f"class labels must be {out.shape[0]} integers (one per sample), got shape {given.shape}",
                file=cfg.source,
                field="target",
            )
        if given.min() < 0 or given.max() >= width:
            raise ConfigError(
                f"class labels must lie in 0…{width - 1}, got {int(given.min())}…{int(given.max())}",
                file=cfg.source,
                field="target",
            )
        return given.astype(int)
    if given is None:
        rng = rng_for(cfg.seed, "target")
        draw = getattr(loss, "random_target", None)  # a loss may say what a fitting target is
        values = draw(rng, out.shape) if callable(draw) else rng.standard_normal(out.shape)
        return np.asarray(values).astype(cfg.dtype)
    if given.shape != out.shape:
        raise ShapeError(
            f"target values have shape {given.shape} but the network output has shape {out.shape}",
            file=cfg.source,
            field="target",
        )
    return given.astype(cfg.dtype)


def _position_labels(
    cfg: Config, tgt: TargetSpec, out: Array, given: Array | None, ignore: int | None
) -> Array:
    """Class labels (N, T) for logits (N, T, C) (any (N, …, C)): random, or given integers in
    0…C−1 or equal to the loss's ignore_index."""
    if out.ndim < 2:
        raise ShapeError(
            f"per-position class targets need logits of shape (batch, …, classes), got {out.shape}",
            file=cfg.source,
            field="target",
        )
    width, lead = out.shape[-1], out.shape[:-1]
    if tgt.classes is not None and tgt.classes != width:
        raise ShapeError(
            f"target.classes is {tgt.classes} but the network outputs {width} classes "
            f"(output shape {out.shape})",
            file=cfg.source,
            field="target.classes",
            hint=f"set classes: {width}, or make the last layer output {tgt.classes}",
        )
    if given is None:
        labels: Array = np.asarray(rng_for(cfg.seed, "target").integers(0, width, size=lead))
        return labels
    if given.shape != lead or np.any(given != np.round(given)):
        raise ShapeError(
            f"class labels must be integers of shape {lead} (one per position), got shape "
            f"{given.shape}",
            file=cfg.source,
            field="target",
        )
    valid = ((given >= 0) & (given < width)) | (given == ignore)
    if not valid.all():
        bad = given[~valid][0]
        also = f" or {ignore} (ignore_index)" if ignore is not None else ""
        raise ConfigError(
            f"class labels must lie in 0…{width - 1}{also}, got {bad:g}",
            file=cfg.source,
            field="target",
        )
    return given.astype(np.int64)

"""A sequential network built from a spec: forward with cached layer inputs, backward, named params."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.config import Config, DataSpec, TargetSpec
from gradcheck_cli.errors import (
    ConfigError,
    GradcheckError,
    PluginError,
    ShapeError,
    user_code_error,
)
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
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
    ) -> None:
        self.layers = layers
        self.loss = loss
        self.labels = labels if labels is not None else [type(la).__name__ for la in layers]
        self.loss_label = loss_label or type(loss).__name__
        self.x = x
        self.target = target
        self.name = name
        #: Built-in layers are trusted not to mutate their input; user layers get copies.
        self.trusted = trusted if trusted is not None else [False] * len(layers)
        self.inputs: list[Array] = []
        #: Upstream gradient each layer received in the last backward pass.
        self.douts: list[Array] = []
        #: Indices of (user) layers seen modifying their input in place during a watched forward.
        self.mutated: set[int] = set()
        self.watch = False

    # -- naming ---------------------------------------------------------------------------------
    def describe(self, i: int) -> str:
        return f"layer {i} ({self.labels[i]})"

    def parameters(self, include_input: bool = True) -> list[ParamRef]:
        refs = [ParamRef("input", 0, None)] if include_input else []
        for i, layer in enumerate(self.layers):
            short = self.labels[i].rpartition(":")[2]
            refs += [ParamRef(f"{i}.{short}.{k}", i, k) for k in layer.params]
        return refs

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
            try:
                out = self.layers[i].forward(arg)
                watched = self.watch and arg is not self.inputs[i]
                if watched and not np.array_equal(arg, self.inputs[i], equal_nan=True):
                    self.mutated.add(i)
            except GradcheckError:
                raise
            except Exception as exc:
                raise user_code_error(exc, f"{self.describe(i)}.forward") from exc
            if not isinstance(out, np.ndarray):
                raise PluginError(
                    f"{self.describe(i)}.forward returned {type(out).__name__}, not a NumPy array"
                )
        return out

    def loss_value(self, x: Array, start: int = 0) -> Any:
        """L for input ``x`` of layer ``start`` (layers before it are taken as cached)."""
        out = self.forward(x, start)
        try:
            return self.loss.forward(out, self.target)
        except Exception as exc:
            raise user_code_error(exc, f"loss ({self.loss_label}).forward") from exc

    def backward(self) -> tuple[Array | str, list[dict[str, Array] | str]]:
        """Backward pass after ``loss_value``. Returns (dx, per-layer grads); a string instead of
        an array/dict says why that gradient is unavailable (a layer broke the chain)."""
        try:
            dout = np.asarray(self.loss.backward())
        except Exception as exc:
            raise user_code_error(exc, f"loss ({self.loss_label}).backward") from exc
        grads: list[dict[str, Array] | str] = [""] * len(self.layers)
        self.douts = [dout] * len(self.layers)
        broken: str | None = None
        for i in reversed(range(len(self.layers))):
            if broken:
                grads[i] = broken
                continue
            layer = self.layers[i]
            self.douts[i] = dout
            try:
                dx = layer.backward(dout.copy())
            except GradcheckError:
                raise
            except Exception as exc:
                raise user_code_error(exc, f"{self.describe(i)}.backward") from exc
            grads[i] = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
            expected = self.inputs[i].shape
            if not isinstance(dx, np.ndarray):
                broken = f"{self.describe(i)}.backward returned {type(dx).__name__}, not an array"
            elif dx.shape != expected:
                broken = (
                    f"{self.describe(i)}.backward returned dx of shape {dx.shape}, "
                    f"expected the input's shape {expected}"
                )
            else:
                dout = dx
        return (broken if broken else dout.copy()), grads


# -- building from a config ---------------------------------------------------------------------


def _load_array(spec: DataSpec | TargetSpec, cfg: Config, field: str) -> Array | None:
    if spec.values is not None:
        try:
            return np.array(spec.values, dtype=float)
        except (ValueError, TypeError):
            raise ConfigError(
                "values must be a rectangular list of numbers",
                file=cfg.source,
                field=f"{field}.values",
            ) from None
    if spec.file is not None:
        path = Path(cfg.base_dir) / spec.file
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


def build_network(cfg: Config) -> Network:
    """Build the layers in order, each sized by the output of the one before (run on the input)."""
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
    x = x.astype(cfg.dtype) if cfg.input.integers is None else _integer_ids(x, cfg)
    layers: list[Any] = []
    labels: list[str] = []
    trusted: list[bool] = []
    out = x
    net = Network(layers, None, labels=labels, trusted=trusted, name=cfg.name)
    for i, spec in enumerate(cfg.layers):
        field = f"layers[{i}]"
        try:
            cls = resolve(spec.type, "layer", cfg.base_dir)
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
            layers.append(layer)
            labels.append(spec.type)
            trusted.append(not is_plugin(spec.type))
            try:
                out = net.forward(out, start=i) if i else net.forward(x)
            except PluginError as exc:
                if "shape" in str(exc) or "align" in str(exc) or "broadcast" in str(exc):
                    raise ShapeError(
                        f"layer {i} ({spec.type}) cannot take input of shape {net.inputs[i].shape}: "
                        f"{exc.message}"
                    ) from exc
                raise
        except GradcheckError as err:
            raise _context(err, cfg, field) from err.__cause__
    net.loss, net.loss_label, net.target = _build_loss(cfg, out)
    net.x = x
    return net


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
    return loss, label, _build_target(cfg, tgt, out)


def _build_target(cfg: Config, tgt: TargetSpec, out: Array) -> Array | None:
    if tgt.kind == "none":
        return None
    given = _load_array(tgt, cfg, "target")
    if tgt.kind == "classes":
        if out.ndim != 2:
            raise ShapeError(
                f"class targets need a network output of shape (batch, classes), got {out.shape}",
                file=cfg.source,
                field="target",
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
        return rng_for(cfg.seed, "target").standard_normal(out.shape).astype(cfg.dtype)
    if given.shape != out.shape:
        raise ShapeError(
            f"target values have shape {given.shape} but the network output has shape {out.shape}",
            file=cfg.source,
            field="target",
        )
    return given.astype(cfg.dtype)

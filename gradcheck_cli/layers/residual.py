"""Residual block: out = x + f(x), f a sequential sub-block built from the same registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, GradcheckError, ShapeError
from gradcheck_cli.layers.base import Array, Layer
from gradcheck_cli.layers.registry import (
    check_layer_contract,
    instantiate,
    is_plugin,
    resolve,
)
from gradcheck_cli.layers.table import register_layer


@register_layer("residual")
class Residual(Layer):
    """out = x + f(x), f = the inner ``layers`` applied in order. x, out: same shape (N, …).

    Inner parameters appear in this block's params/grads as "<j>.<type>.<key>" (e.g.
    "0.linear.W"), the very arrays the inner layers read, so a report names them
    "3.residual.0.linear.W".
    """

    #: Constructor arguments that hold nested layer specs (config schema, plugin walks).
    sublayer_args = ("layers",)
    forward_formula = "out = x + f(x),  f = inner layers in order"
    backward_formula = "dx = dout + ∂f/∂xᵀ·dout;  inner parameter grads from f's own backward"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        layers: list[Any],
        dtype: str = "float64",
        base_dir: str | Path = ".",
    ) -> None:
        super().__init__()
        if not isinstance(layers, list) or not layers:
            raise ConfigError(
                f"'layers' of a residual block must be a non-empty list, got {layers!r}",
                hint="e.g. {type: residual, layers: [{type: linear, out: 8}, relu]}",
            )
        self.layers: list[Any] = []
        self.labels: list[str] = []
        self.trusted: list[bool] = []
        seeds = rng.integers(0, 2**63, size=len(layers))
        shape = tuple(input_shape)
        probe: Array = np.random.default_rng(0).standard_normal((2, *shape)).astype(dtype)
        from pydantic import ValidationError

        from gradcheck_cli.spec.config import LayerSpec

        for j, entry in enumerate(layers):
            try:
                spec = LayerSpec.model_validate(entry)
            except ValidationError as exc:
                raise ConfigError(
                    f"residual layer {j}: {exc.errors()[0]['msg']} (got {entry!r})",
                    hint="each inner entry is a layer name or {type: name, <args>}",
                ) from None
            label = f"residual layer {j} ({spec.type})"
            cls = resolve(spec.type, "layer", Path(base_dir))
            layer = instantiate(
                cls,
                label,
                spec.args,
                input_shape=tuple(probe.shape[1:]),
                rng=np.random.default_rng(int(seeds[j])),
                dtype=dtype,
                base_dir=base_dir,
            )
            check_layer_contract(layer, label)
            self.layers.append(layer)
            self.labels.append(spec.type.rpartition(":")[2])
            self.trusted.append(not is_plugin(spec.type))
            try:
                probe = layer.forward(probe if self.trusted[j] else probe.copy())
            except GradcheckError as exc:
                exc.message = f"{label}: {exc.message}"
                raise
            except Exception as exc:
                raise ShapeError(
                    f"{label} cannot take input of shape {probe.shape[1:]} (per sample): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        if tuple(probe.shape[1:]) != shape:
            raise ShapeError(
                f"residual block: f(x) has per-sample shape {tuple(probe.shape[1:])} but x has "
                f"{shape}; out = x + f(x) needs them equal",
                hint="make the last inner layer map back to the block's input shape",
            )
        #: (block key, inner layer index, inner key) for every inner parameter.
        self.keys = [
            (f"{j}.{self.labels[j]}.{k}", j, k)
            for j, la in enumerate(self.layers)
            for k in la.params
        ]
        self.params = {name: self.layers[j].params[k] for name, j, k in self.keys}
        self.grads = {name: np.zeros_like(arr) for name, arr in self.params.items()}
        # Per instance: the block is only as row-independent / complex-safe as its inner layers
        # (a plugin that does not say is assumed row-dependent and complex-safe).
        self.row_independent = all(  # type: ignore[misc]
            getattr(la, "row_independent", False) for la in self.layers
        )
        self.complex_safe = all(  # type: ignore[misc]
            getattr(la, "complex_safe", True) for la in self.layers
        )

    def _sync(self) -> None:
        """Let the inner layers read exactly the arrays in self.params (a checker may have
        replaced an entry, e.g. by a complex copy, instead of writing into it)."""
        for name, j, k in self.keys:
            if self.layers[j].params.get(k) is not self.params[name]:
                self.layers[j].params[k] = self.params[name]

    def forward(self, x: Array) -> Array:
        self._sync()
        f = x
        for j, layer in enumerate(self.layers):
            f = layer.forward(f if self.trusted[j] else f.copy())
        out: Array = x + f
        return out

    def backward(self, dout: Array) -> Array:
        df = dout
        for layer in reversed(self.layers):
            df = layer.backward(df.copy())
        self.grads = {}
        for name, j, k in self.keys:
            if k in self.layers[j].grads:
                self.grads[name] = self.layers[j].grads[k]
        dx: Array = dout + df
        return dx

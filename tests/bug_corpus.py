"""A corpus of correct networks and of bugs of a controlled relative size, for the verdict tests
and for benchmarks/calibrate_tolerance.py.

A bug of relative size r changes one gradient tensor g of one layer into g' with ‖g' − g‖ = r·‖g‖
(or, for "scale", g' = (1 + r)·g): the kind of subtle error (a missing small term, a slightly
wrong constant) that a gradient check exists to find.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli import make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy, WeightedSum

# (name, layers as (type, kwargs), loss) — batch and width vary with the seed in build()
NETWORKS: list[tuple[str, list[tuple[str, dict[str, Any]]], str]] = [
    ("mlp-relu-ce", [("linear", {"out": 7}), ("relu", {}), ("linear", {"out": 4})], "ce"),
    (
        "mlp-leaky-ce",
        [("linear", {"out": 6}), ("leaky_relu", {"slope": 0.1}), ("linear", {"out": 3})],
        "ce",
    ),
    ("mlp-tanh-mse", [("linear", {"out": 5}), ("tanh", {}), ("linear", {"out": 2})], "mse"),
    ("mlp-sigmoid-sum", [("linear", {"out": 6}), ("sigmoid", {}), ("linear", {"out": 3})], "sum"),
    (
        "deep-tanh-ce",
        [
            ("linear", {"out": 8}),
            ("tanh", {}),
            ("linear", {"out": 8}),
            ("tanh", {}),
            ("linear", {"out": 3}),
        ],
        "ce",
    ),
    ("softmax-mse", [("linear", {"out": 4}), ("softmax", {}), ("linear", {"out": 2})], "mse"),
    (
        "relu-relu-sum",
        [
            ("linear", {"out": 9}),
            ("relu", {}),
            ("linear", {"out": 9}),
            ("relu", {}),
            ("linear", {"out": 2}),
        ],
        "sum",
    ),
]


def build(
    spec: tuple[str, list[tuple[str, dict[str, Any]]], str],
    seed: int,
    scale: float = 1.0,
    dtype: str = "float64",
) -> Network:
    """A correct network from the corpus, input and target drawn from ``seed``."""
    name, layer_specs, loss_name = spec
    rng = np.random.default_rng(seed)
    batch, width = int(rng.integers(1, 9)), int(rng.integers(2, 7))
    x = (scale * rng.standard_normal((batch, width))).astype(dtype)
    layers, shape = [], (width,)
    out = x
    for t, kw in layer_specs:
        layer = make_layer(t, shape, rng, dtype=dtype, **kw)
        out = layer.forward(out)
        shape = out.shape[1:]
        layers.append(layer)
    if loss_name == "ce":
        loss: Any = SoftmaxCrossEntropy()
        target = rng.integers(0, out.shape[1], size=batch)
    elif loss_name == "mse":
        loss, target = MSE(), rng.standard_normal(out.shape).astype(dtype)
    else:
        loss, target = WeightedSum(rng.standard_normal(out.shape).astype(dtype)), None
    return Network(
        layers,
        loss,
        labels=[t for t, _ in layer_specs],
        x=x,
        target=target,
        trusted=[True] * len(layers),
        name=name,
    )


BUG_KINDS = ("scale", "one-entry", "dense")


class Bugged:
    """Wraps a layer; after its backward, corrupts grads[key] (or dx when key is None)."""

    def __init__(self, inner: Any, kind: str, r: float, key: str | None, seed: int) -> None:
        self.inner, self.kind, self.r, self.key = inner, kind, r, key
        self.rng = np.random.default_rng(seed)
        self.params, self.grads = inner.params, inner.grads
        self.noise: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.inner.forward(x)

    def _corrupt(self, g: np.ndarray) -> np.ndarray:
        if self.kind == "scale":
            return g * (1 + self.r)
        if self.noise is None:  # the same corruption pattern on every call (backward is a function)
            if self.kind == "one-entry":
                self.noise = np.zeros(g.shape)
                self.noise.flat[int(np.argmax(np.abs(g)))] = 1.0
            else:
                self.noise = self.rng.standard_normal(g.shape)
        norm = np.linalg.norm(self.noise)
        return g + self.r * np.linalg.norm(g) * self.noise / norm

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = self.inner.backward(dout)
        self.grads = self.inner.grads
        if self.key is None:
            return self._corrupt(dx)
        self.grads[self.key] = self._corrupt(self.grads[self.key])
        return dx


def bugged(net: Network, layer: int, key: str | None, kind: str, r: float, seed: int) -> Network:
    """The same network with a bug of relative size r in one gradient."""
    layers = list(net.layers)
    layers[layer] = Bugged(layers[layer], kind, r, key, seed)
    return Network(
        layers,
        net.loss,
        labels=net.labels,
        x=net.x,
        target=net.target,
        trusted=net.trusted,
        name=net.name,
    )

"""Built-in layers and losses; importing this package registers them."""

from gradcheck_cli.layers import (
    activations,
    conv,
    dropout,
    embedding,
    linear,
    losses,
    norm,
    pooling,
    residual,
    shape,
)
from gradcheck_cli.layers.base import Layer, LayerProtocol, Loss, LossProtocol

__all__ = [
    "Layer",
    "LayerProtocol",
    "Loss",
    "LossProtocol",
    "activations",
    "conv",
    "dropout",
    "embedding",
    "linear",
    "losses",
    "norm",
    "pooling",
    "residual",
    "shape",
]

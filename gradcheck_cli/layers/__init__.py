"""Built-in layers and losses; importing this package registers them."""

from gradcheck_cli.layers import (
    activations,
    attention,
    conv,
    conv1d,
    dropout,
    embedding,
    groupnorm,
    linear,
    losses,
    norm,
    pooling,
    recurrent,
    residual,
    seq_losses,
    shape,
    temporal,
)
from gradcheck_cli.layers.base import Layer, LayerProtocol, Loss, LossProtocol

__all__ = [
    "Layer",
    "LayerProtocol",
    "Loss",
    "LossProtocol",
    "activations",
    "attention",
    "conv",
    "conv1d",
    "dropout",
    "embedding",
    "groupnorm",
    "linear",
    "losses",
    "norm",
    "pooling",
    "recurrent",
    "residual",
    "seq_losses",
    "shape",
    "temporal",
]

"""Built-in layers and losses; importing this package registers them."""

from gradcheck_cli.layers import activations, linear, losses
from gradcheck_cli.layers.base import Layer, LayerProtocol, Loss, LossProtocol

__all__ = ["Layer", "LayerProtocol", "Loss", "LossProtocol", "activations", "linear", "losses"]

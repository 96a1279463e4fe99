"""Deliberately wrong layers and losses (negative twins). Each must be caught with exit 1."""

from gradcheck_cli.layers.activations import ReLU
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.layers.losses import MSE


class ReLUNoMask(ReLU):
    """Bug: passes the upstream gradient through everywhere."""

    def backward(self, dout):
        return dout


class LinearNoTranspose(Linear):
    """Bug: dW = x·dout-ish without the transpose (only shape-compatible when square)."""

    def backward(self, dout):
        super().backward(dout)
        self.grads["W"] = self.grads["W"].T.copy()
        return dout @ self.params["W"].T


class LinearBiasMean(Linear):
    """Bug: db averaged over the batch instead of summed."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = dout.mean(axis=0)
        return dx


class LinearWrongShape(Linear):
    """Bug: db keeps the batch axis."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = dout.copy()
        return dx


class LinearMissingGrad(Linear):
    """Bug: forgets to set grads['b']."""

    def backward(self, dout):
        dx = super().backward(dout)
        del self.grads["b"]
        return dx


class LinearScaled(Linear):
    """Bug: dW off by a relative 'rel' (default 1e-4)."""

    def __init__(self, input_shape, rng, out, rel=1e-4):
        super().__init__(input_shape, rng, out)
        self.rel = rel

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * (1 + self.rel)
        return dx


class MSENoFactor2(MSE):
    """Bug: forgets the factor 2."""

    def backward(self):
        return self.diff / self.diff.size

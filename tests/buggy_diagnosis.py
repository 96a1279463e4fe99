"""Wrong backward passes with a known fingerprint, for the diagnosis tests (test_diagnosis.py).

Each differs from a correct built-in by one realistic mistake; the docstring names the
fingerprint the diagnosis must find. (More twins live in buggy_layers.py / buggy_layers_more.py.)
"""

from __future__ import annotations

import numpy as np

from gradcheck_cli.layers.activations import ReLU
from gradcheck_cli.layers.base import Layer
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy
from gradcheck_cli.layers.norm import LayerNorm


class LinearWeightDecay(Linear):
    """param_term: dW += λ·W, a weight-decay gradient the loss does not have (λ = 0.01)."""

    decay = 0.01

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] + self.decay * self.params["W"]
        return dx


class LinearLastRowNotWritten(Linear):
    """missing: dW filled row by row in a loop that stops one input feature short."""

    def backward(self, dout):
        dx = super().backward(dout)
        dW = np.zeros_like(self.params["W"])
        for i in range(dW.shape[0] - 1):  # bug: range(n - 1)
            dW[i] = self.x[:, i] @ dout
        self.grads["W"] = dW
        return dx


class LinearWNotWritten(Linear):
    """missing (everywhere): backward sets db and dx but leaves dW at its initial zeros."""

    def backward(self, dout):
        self.grads["W"] = np.zeros_like(self.params["W"])
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T


class LinearBiasCopyPaste(Linear):
    """few_entries: db built column by column; the last column copies its neighbour's sum."""

    def backward(self, dout):
        dx = super().backward(dout)
        db = dout.sum(axis=0)
        db[-1] = dout[:, -2].sum()  # bug: -2 for -1
        self.grads["b"] = db
        return dx


class ReLUMaskOfDout(ReLU):
    """mask: the 0/1 mask taken from the wrong tensor (dout > 0 instead of x > 0)."""

    def backward(self, dout):
        return np.where(dout.real > 0, dout, 0)


class LayerNormNoMeanTerm(LayerNorm):
    """axis: drops −mean(dx̂) (the per-sample mean's dependence on x), so a − n is one constant
    per sample: it does not vary along the feature axis."""

    def backward(self, dout):
        super().backward(dout)
        dxhat = dout * self.params["gamma"]
        proj = (dxhat * self.xhat).mean(axis=self.axes, keepdims=True)
        return self.inv * (dxhat - self.xhat * proj)


class SoftmaxCENoMean(SoftmaxCrossEntropy):
    """scale (factor N): dz = p − y, the batch mean's 1/N left out."""

    def backward(self):
        return self.p - self.y


class ChannelScaleNHWC(Layer):
    """layout: out = x ⊙ s per channel (x: (N, C, H, W), s: (C,)); backward builds dx in
    channels-last order and reshapes it to NCHW instead of transposing it back."""

    def __init__(self, input_shape, rng) -> None:
        super().__init__()
        c = input_shape[0]
        self.params = {"s": 1 + 0.5 * rng.standard_normal(c)}
        self.grads = {"s": np.zeros(c)}

    def forward(self, x):
        self.x = x
        return x * self.params["s"][None, :, None, None]

    def backward(self, dout):
        self.grads["s"] = (dout * self.x).sum(axis=(0, 2, 3))
        dx_nhwc = (dout * self.params["s"][None, :, None, None]).transpose(0, 2, 3, 1)
        return dx_nhwc.reshape(self.x.shape)  # bug: reshape where transpose(0, 3, 1, 2) is needed

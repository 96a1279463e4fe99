"""Deliberately wrong versions of the layers and losses added in issue 6 (negative twins).

Each class differs from the correct built-in by one realistic mistake; the tests assert that the
checker fails exactly the tensors that mistake touches.
"""

from __future__ import annotations

import math

import numpy as np

from gradcheck_cli.layers.activations import ELU, GELU, LogSoftmax, SiLU, Softplus, sigmoid
from gradcheck_cli.layers.conv import Conv2d, scatter_windows, windows
from gradcheck_cli.layers.dropout import Dropout
from gradcheck_cli.layers.embedding import Embedding
from gradcheck_cli.layers.losses import L1, NLL, BCEWithLogits, Huber
from gradcheck_cli.layers.norm import BatchNorm, LayerNorm
from gradcheck_cli.layers.pooling import AvgPool2d, MaxPool2d
from gradcheck_cli.layers.residual import Residual
from gradcheck_cli.layers.shape import Flatten


class FlattenFortranOrder(Flatten):
    """Bug: un-flattens dout in column-major order."""

    def backward(self, dout):
        return dout.reshape(self.shape, order="F")


class GELUExactMissingTerm(GELU):
    """Bug: exact gelu, dx = dout·Φ(x) (forgets the x·φ(x) of the product rule)."""

    def backward(self, dout):
        return dout * self.cdf


class GELUTanhWithExactDerivative(GELU):
    """Bug: tanh-approximate forward, but the exact gelu's derivative in backward (≈1e-3 off)."""

    def __init__(self):
        super().__init__(approximate="tanh")

    def backward(self, dout):
        x = self.x
        cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        return dout * (cdf + x * np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi))


class ELUMissingAlpha(ELU):
    """Bug: negative branch uses dout·out (forgets + α)."""

    def backward(self, dout):
        return np.where(self.mask, dout, dout * self.out)


class SoftplusWrongSign(Softplus):
    """Bug: derivative σ(−x) instead of σ(x)."""

    def backward(self, dout):
        return dout * sigmoid(-self.x)


class SiLUNoProductRule(SiLU):
    """Bug: dx = dout·σ(x)."""

    def backward(self, dout):
        return dout * self.s


class LogSoftmaxNoSum(LogSoftmax):
    """Bug: dx = dout − softmax ⊙ dout (no row sum)."""

    def backward(self, dout):
        return dout - np.exp(self.out) * dout


class LayerNormMissingTerm(LayerNorm):
    """Bug: drops the variance term −x̂·mean(dx̂·x̂)."""

    def backward(self, dout):
        super().backward(dout)
        dxhat = dout * self.params["gamma"]
        return self.inv * (dxhat - dxhat.mean(axis=self.axes, keepdims=True))


class BatchNormIgnoresMean(BatchNorm):
    """Bug: ignores that the batch mean depends on x (drops −mean_B(dx̂))."""

    def backward(self, dout):
        super().backward(dout)
        dxhat = dout * self._bcast(self.params["gamma"], dout.ndim)
        proj = (dxhat * self.xhat).mean(axis=self.axes, keepdims=True)
        return self.inv * (dxhat - self.xhat * proj)


class BatchNormConstantStats(BatchNorm):
    """Bug: treats the batch statistics as constants (dx = γ·dout/σ)."""

    def backward(self, dout):
        super().backward(dout)
        return self.inv * dout * self._bcast(self.params["gamma"], dout.ndim)


class DropoutNoScale(Dropout):
    """Bug: backward forgets the 1/(1 − p) of inverted dropout."""

    def backward(self, dout):
        return dout * (self.scale != 0)


class DropoutFreshMask(Dropout):
    """Bug: draws a new mask at every forward pass (the loss is not a function)."""

    def forward(self, x):
        self.masks.clear()
        return super().forward(x)


class Conv2dFlippedKernel(Conv2d):
    """Bug: dW comes out spatially flipped (convolution vs cross-correlation mix-up)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"][:, :, ::-1, ::-1].copy()
        return dx


class Conv2dIgnoresStrideInDx(Conv2d):
    """Bug: scatters the window gradients back with stride 1."""

    def backward(self, dout):
        super().backward(dout)
        dwin = np.einsum("nfhw,fcij->nchwij", dout, self.params["W"])
        ph, pw = self.padding
        h, w = self.x_shape[2:]
        return scatter_windows(dwin, self.xpad_shape, (1, 1))[:, :, ph : ph + h, pw : pw + w]


class MaxPoolWrongElement(MaxPool2d):
    """Bug: routes the gradient to the window's minimum instead of its maximum."""

    def forward(self, x):
        out = super().forward(x)
        n, c, ho, wo = self.k.shape
        flat = windows(x, self.kernel, self.stride).reshape(n, c, ho, wo, -1)
        self.k = flat.real.argmin(axis=-1)
        return out


class AvgPoolNoDivide(AvgPool2d):
    """Bug: forgets the 1/(kh·kw) in backward."""

    def backward(self, dout):
        return super().backward(dout) * (self.kernel[0] * self.kernel[1])


class EmbeddingOverwrites(Embedding):
    """Bug: dW[ids] = dout (assignment: repeated ids keep only the last contribution)."""

    def backward(self, dout):
        dx = super().backward(dout)
        dW = np.zeros_like(self.params["W"])
        dW[self.ids.reshape(-1)] = dout.reshape(-1, dW.shape[1])
        self.grads["W"] = dW
        return dx


class ResidualNoSkip(Residual):
    """Bug: backward forgets the identity path (dx = ∂f/∂xᵀ·dout only)."""

    def backward(self, dout):
        return super().backward(dout) - dout


# -- losses ----------------------------------------------------------------------------------


class BCENoMean(BCEWithLogits):
    """Bug: dz = σ(z) − y without the 1/n of the mean."""

    def backward(self):
        return self.s - self.y


class HuberUnclipped(Huber):
    """Bug: uses the quadratic branch's gradient r also where |r| > δ."""

    def backward(self):
        return self.r / self.r.size


class HuberWrongDelta(Huber):
    """Bug: switches branches at |r| = δ/2 in backward (the forward uses δ)."""

    def backward(self):
        inner = np.abs(self.r.real) <= self.delta / 2
        return np.where(inner, self.r, self.delta * self.sign) / self.r.size


class L1NoMean(L1):
    """Bug: sign(r) without the 1/n."""

    def backward(self):
        return self.sign


class NLLSignFlip(NLL):
    """Bug: +1{c = y}/N."""

    def backward(self):
        return self.y / self.n

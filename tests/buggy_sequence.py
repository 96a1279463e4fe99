"""Deliberately wrong versions of the sequence layers and losses (negative twins, issue 15).

Each class differs from the correct built-in by one realistic mistake from hand-written
backprop-through-time / attention code; the tests assert the checker fails the tensors that
mistake touches.
"""

from __future__ import annotations

import numpy as np

from gradcheck_cli.layers.attention import SelfAttention
from gradcheck_cli.layers.conv1d import Conv1d
from gradcheck_cli.layers.groupnorm import GroupNorm
from gradcheck_cli.layers.recurrent import GRU, LSTM, RNN
from gradcheck_cli.layers.seq_losses import SequenceCrossEntropy
from gradcheck_cli.layers.temporal import TemporalLinear


def _rnn_backward(layer, dout, *, carry=True, wh_state="prev"):
    """RNN.backward written out, with one switchable mistake."""
    n, t_len, H = dout.shape
    Wh = layer.params["Wh"]
    da = np.empty(layer.out.shape)
    dh_next = np.zeros((n, H))
    for t in reversed(range(t_len)):
        dh = dout[:, t] + (dh_next if carry else 0)
        if layer.nonlinearity == "tanh":
            da[:, t] = dh * (1 - layer.out[:, t] ** 2)
        else:
            da[:, t] = np.where(layer.mask[:, t], dh, 0)
        dh_next = da[:, t] @ Wh.T
    states = layer.prev if wh_state == "prev" else layer.out
    return layer.finish(layer.x, da, da, states, {"h0": dh_next})


class RNNTruncatedBPTT(RNN):
    """Bug: the gradient is not carried into the previous step (dh_t = dout[:, t] only)."""

    def backward(self, dout):
        return _rnn_backward(self, dout, carry=False)


class RNNWhUsesCurrentState(RNN):
    """Bug: dWh = Σ h_tᵀ·da_t (the state the step produced, not the h_{t−1} it read)."""

    def backward(self, dout):
        return _rnn_backward(self, dout, wh_state="out")


class ReluRNNNoMask(RNN):
    """Bug: relu-RNN backward passes dh through without the mask 1{a_t > 0}."""

    def __init__(self, input_shape, rng, hidden, learn_h0=False):
        super().__init__(input_shape, rng, hidden, nonlinearity="relu", learn_h0=learn_h0)

    def backward(self, dout):
        self.mask = np.ones_like(self.mask)
        return super().backward(dout)


def _lstm_backward(layer, dout, *, df_uses_new_cell=False, carry_cell=True):
    """LSTM.backward written out, with one switchable mistake."""
    n, t_len, H = dout.shape
    Wh = layer.params["Wh"]
    da = np.empty(layer.acts.shape)
    dh_next, dc_next = np.zeros((n, H)), np.zeros((n, H))
    for t in reversed(range(t_len)):
        i, f, g, o = (layer.acts[:, t, k * H : (k + 1) * H] for k in range(4))
        tc = layer.tc[:, t]
        dh = dout[:, t] + dh_next
        dc = dc_next + dh * o * (1 - tc**2)
        c_used = f * layer.c_prev[:, t] + i * g if df_uses_new_cell else layer.c_prev[:, t]
        di, df, dg, do = dc * g, dc * c_used, dc * i, dh * tc
        da[:, t] = np.concatenate(
            [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1
        )
        dh_next = da[:, t] @ Wh.T
        dc_next = dc * f if carry_cell else 0 * dc
    return layer.finish(layer.x, da, da, layer.prev, {"h0": dh_next, "c0": dc_next})


class LSTMForgetGateUsesNewCell(LSTM):
    """Bug: df = dc_t ⊙ c_t instead of dc_t ⊙ c_{t−1}."""

    def backward(self, dout):
        return _lstm_backward(self, dout, df_uses_new_cell=True)


class LSTMNoCellCarry(LSTM):
    """Bug: the cell gradient is not carried to the previous step (dc_{t+1} ⊙ f_{t+1} lost)."""

    def backward(self, dout):
        return _lstm_backward(self, dout, carry_cell=False)


def _gru_backward(layer, dout, *, z_sign=1.0, bhn_inside=True):
    """GRU.backward written out, with switchable mistakes."""
    n, t_len, H = dout.shape
    Wh = layer.params["Wh"]
    dax, dah = np.empty(layer.rzn.shape), np.empty(layer.rzn.shape)
    carry = np.zeros((n, H))
    for t in reversed(range(t_len)):
        r, z, nn = (layer.rzn[:, t, k * H : (k + 1) * H] for k in range(3))
        dh = dout[:, t] + carry
        dn = dh * (1 - z) * (1 - nn**2)
        dz = z_sign * dh * (layer.prev[:, t] - nn) * z * (1 - z)
        dr = dn * layer.ah_n[:, t] * r * (1 - r)
        dax[:, t] = np.concatenate([dr, dz, dn], axis=1)
        dah[:, t] = np.concatenate([dr, dz, dn * r], axis=1)
        carry = dh * z + dah[:, t] @ Wh.T
    dx = layer.finish(layer.x, dax, dah, layer.prev, {"h0": carry})
    if not bhn_inside:
        layer.grads["bh"][2 * H :] = dax[..., 2 * H :].sum(axis=(0, 1))
    return dx


class GRUUpdateGateSignFlipped(GRU):
    """Bug: dz uses (n − h_{t−1}), the derivative of the other convention h = z⊙n + (1−z)⊙h."""

    def backward(self, dout):
        return _gru_backward(self, dout, z_sign=-1.0)


class GRUResetBiasOutside(GRU):
    """Bug: treats b_hn as outside r ⊙ (…) (the other GRU variant): dbh_n = Σ dn' instead of
    Σ dn' ⊙ r."""

    def backward(self, dout):
        return _gru_backward(self, dout, bhn_inside=False)


class AttentionNoSoftmaxJacobian(SelfAttention):
    """Bug: dS = dP ⊙ P / √d (the diagonal of the softmax Jacobian only, no − Σ_j dP ⊙ P)."""

    def score_grad(self, P, dP):
        return P * dP * self.scale


class AttentionMissingScale(SelfAttention):
    """Bug: forgets the 1/√d of the scores in backward."""

    def score_grad(self, P, dP):
        return P * (dP - (dP * P).sum(axis=-1, keepdims=True))


class Conv1dBackwardIgnoresDilation(Conv1d):
    """Bug: scatters the window gradients back with dilation 1 (tap j read position l·s + j·d)."""

    def backward(self, dout):
        d = self.dilation
        self.dilation = 1
        try:
            return super().backward(dout)
        finally:
            self.dilation = d


class GroupNormStatisticsAsConstants(GroupNorm):
    """Bug: backward treats the group mean and variance as constants: dx = dx̂ / √(σ²_g + eps)."""

    def backward(self, dout):
        super().backward(dout)
        n = dout.shape[0]
        g = self.params["gamma"].reshape((1, -1) + (1,) * (dout.ndim - 2))
        return ((dout * g).reshape(n, self.groups, -1) * self.inv).reshape(dout.shape)


class TemporalLinearBiasMeanOverTime(TemporalLinear):
    """Bug: db averaged over the time axis instead of summed."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = dout.sum(axis=0).mean(axis=0)
        return dx


class SequenceCEMeanOverAllPositions(SequenceCrossEntropy):
    """Bug: backward divides by all N·T positions instead of the M unmasked ones."""

    def backward(self):
        return super().backward() * self.m / self.keep.size


class SequenceCEMaskForgotten(SequenceCrossEntropy):
    """Bug: backward gives ignored positions p − onehot(0) as if their target were class 0."""

    def backward(self):
        onehot = np.zeros(self.p.shape)
        np.put_along_axis(onehot, self.y[..., None], 1.0, axis=-1)
        return (self.p - onehot) / self.m

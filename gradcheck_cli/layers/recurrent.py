"""Recurrent layers over (N, T, D) sequences: rnn (tanh or relu), lstm, gru; all hidden states.

Backprop through time: the forward loop caches every step, the backward loop runs t = T−1 … 0
carrying dh (and dc) into the previous step. Weights are stored for x·W (rows are samples), the
transpose of PyTorch's ``weight_ih_l0`` / ``weight_hh_l0``; docs/layers.md gives the mapping.
Row independent along the batch axis (sample n's states depend on sample n only), never along
time. Comparisons use the real part, so the complex step works.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.activations import sigmoid
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.table import register_layer


def sequence_input(input_shape: tuple[int, ...], layer: str) -> tuple[int, int]:
    """(T, D) of a per-sample input shape, or a ShapeError saying what was expected."""
    if len(input_shape) != 2:
        raise ShapeError(
            f"{layer} expects per-sample input of shape (time, features), got {input_shape}",
            hint="give the input a 3-D shape [batch, time, features] (e.g. after an embedding)",
        )
    return int(input_shape[0]), int(input_shape[1])


def flag(value: object, name: str) -> bool:
    """Validate a layer argument that must be true or false."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"'{name}' must be true or false, got {value!r}")
    return bool(value)


class _Recurrent(Layer):
    """Shared set-up: Wx (D, G·H), Wh (H, G·H), biases, optional learned initial state(s)."""

    #: Gate blocks stacked along the last axis of Wx / Wh (1 for rnn, 4 for lstm, 3 for gru).
    gates: ClassVar[int] = 1
    #: Initial states that ``learn_h0`` makes parameters (lstm also has c0).
    states: ClassVar[tuple[str, ...]] = ("h0",)
    #: Bias parameters, each (G·H,).
    biases: ClassVar[tuple[str, ...]] = ("b",)
    row_independent = True  # along the batch axis; time steps depend on each other
    complex_safe = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        hidden: int,
        learn_h0: bool = False,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        _, d = sequence_input(input_shape, type(self).__name__.lower())
        h = positive_int(hidden, "hidden")
        self.learn_h0 = flag(learn_h0, "learn_h0")
        self.hidden = h
        k = 1 / np.sqrt(h)  # PyTorch's init: U(−1/√H, 1/√H) for every weight and bias
        g = self.gates * h
        self.params = {
            "Wx": rng.uniform(-k, k, (d, g)).astype(dtype),
            "Wh": rng.uniform(-k, k, (h, g)).astype(dtype),
        }
        for name in self.biases:
            self.params[name] = rng.uniform(-k, k, g).astype(dtype)
        if self.learn_h0:
            for name in self.states:
                self.params[name] = (0.5 * rng.standard_normal(h)).astype(dtype)
        self.grads = {k_: np.zeros_like(v) for k_, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """Wx, Wh, biases and learned states from (T, D) and ``hidden``; output (T, H)."""
        h = args.get("hidden")
        if len(input_shape) != 2 or not isinstance(h, int) or isinstance(h, bool):
            return None
        t, d = input_shape
        g = cls.gates * h
        n = d * g + h * g + len(cls.biases) * g
        n += len(cls.states) * h if args.get("learn_h0") is True else 0
        return n, (t, h)

    def dtype_for(self, x: Array) -> np.dtype[Any]:
        """The dtype of every state: complex when x or any parameter is (complex step)."""
        return np.result_type(x, *self.params.values())

    def initial(self, name: str, n: int, dt: np.dtype[Any]) -> Array:
        """The initial state ``name`` for a batch of n: the learned row, or zeros."""
        if self.learn_h0:
            return np.broadcast_to(self.params[name], (n, self.hidden)).astype(dt)
        return np.zeros((n, self.hidden), dtype=dt)

    def finish(
        self, x: Array, dax: Array, dah: Array, hs: Array, dstate: dict[str, Array]
    ) -> Array:
        """Parameter grads from the per-step pre-activation grads, and dx.
        dax, dah: (N, T, G·H) grads of x_t·Wx (+ bx) and h_{t−1}·Wh (+ bh); hs: (N, T, H) the
        states h_{t−1} each step read; dstate: grads of the initial states (N, H)."""
        self.grads = {
            "Wx": np.einsum("ntd,ntg->dg", x, dax),
            "Wh": np.einsum("nth,ntg->hg", hs, dah),
        }
        if self.biases == ("b",):
            self.grads["b"] = dax.sum(axis=(0, 1))
        else:
            self.grads["bx"], self.grads["bh"] = dax.sum(axis=(0, 1)), dah.sum(axis=(0, 1))
        if self.learn_h0:
            for name in self.states:
                self.grads[name] = dstate[name].sum(axis=0)
        dx: Array = dax @ self.params["Wx"].T
        return dx


@register_layer("rnn")
class RNN(_Recurrent):
    """Elman RNN, all hidden states. x: (N, T, D), Wx: (D, H), Wh: (H, H), b: (H,),
    out: (N, T, H); h0 zero, or the learned (H,) parameter with ``learn_h0: true``."""

    forward_formula = "a_t = x_t·Wx + h_{t−1}·Wh + b;  h_t = tanh(a_t) (or relu);  out[:, t] = h_t"
    backward_formula = (
        "dh_t = dout[:, t] + da_{t+1}·Whᵀ;  da_t = dh_t ⊙ (1 − h_t²) (relu: ⊙ 1{a_t > 0});  "
        "dWx = Σ_{n,t} x_tᵀ·da_t;  dWh = Σ_{n,t} h_{t−1}ᵀ·da_t;  db = Σ_{n,t} da_t;  "
        "dx_t = da_t·Wxᵀ;  dh0 = Σ_n da_0·Whᵀ"
    )

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        hidden: int,
        nonlinearity: str = "tanh",
        learn_h0: bool = False,
        dtype: str = "float64",
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"'nonlinearity' must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_shape, rng, hidden, learn_h0, dtype)

    def forward(self, x: Array) -> Array:
        n, t_len, _ = x.shape
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        xw = x @ Wx + b  # (N, T, H): the input part of every step at once
        dt = self.dtype_for(x)
        h = self.initial("h0", n, dt)
        prev = np.empty((n, t_len, self.hidden), dt)  # h_{t−1} per step
        out = np.empty_like(prev)
        self.mask = np.empty(prev.shape, bool)
        for t in range(t_len):
            prev[:, t] = h
            a = xw[:, t] + h @ Wh
            if self.nonlinearity == "tanh":
                h = np.tanh(a)
            else:
                self.mask[:, t] = a.real > 0
                h = np.where(self.mask[:, t], a, 0)
            out[:, t] = h
        self.x, self.prev, self.out = x, prev, out
        return out

    def backward(self, dout: Array) -> Array:
        n, t_len, _ = dout.shape
        Wh = self.params["Wh"]
        da = np.empty(self.out.shape, np.result_type(dout, self.out))
        carry = np.zeros((n, self.hidden), da.dtype)  # ∂L/∂h_t through step t+1
        for t in reversed(range(t_len)):
            dh = dout[:, t] + carry
            if self.nonlinearity == "tanh":
                da[:, t] = dh * (1 - self.out[:, t] ** 2)
            else:
                da[:, t] = np.where(self.mask[:, t], dh, 0)
            carry = da[:, t] @ Wh.T
        return self.finish(self.x, da, da, self.prev, {"h0": carry})


@register_layer("lstm")
class LSTM(_Recurrent):
    """LSTM, all hidden states; gates stacked i, f, g, o (PyTorch's order). x: (N, T, D),
    Wx: (D, 4H), Wh: (H, 4H), b: (4H,), out: (N, T, H); h0, c0 zero or learned (``learn_h0``)."""

    gates = 4
    states = ("h0", "c0")
    forward_formula = (
        "[i, f, g, o] = [σ, σ, tanh, σ](x_t·Wx + h_{t−1}·Wh + b);  c_t = f ⊙ c_{t−1} + i ⊙ g;  "
        "h_t = o ⊙ tanh(c_t);  out[:, t] = h_t"
    )
    backward_formula = (
        "dh_t = dout[:, t] + da_{t+1}·Whᵀ;  do = dh_t ⊙ tanh(c_t);  "
        "dc_t = dc_{t+1}·f_{t+1} + dh_t ⊙ o ⊙ (1 − tanh²(c_t));  di = dc_t ⊙ g;  df = dc_t ⊙ c_{t−1};  "
        "dg = dc_t ⊙ i;  da = [di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o)];  "
        "dWx = Σ x_tᵀ·da;  dWh = Σ h_{t−1}ᵀ·da;  db = Σ da;  dx_t = da·Wxᵀ"
    )

    def forward(self, x: Array) -> Array:
        n, t_len, _ = x.shape
        H = self.hidden
        xw = x @ self.params["Wx"] + self.params["b"]  # (N, T, 4H)
        dt = self.dtype_for(x)
        h, c = self.initial("h0", n, dt), self.initial("c0", n, dt)
        prev = np.empty((n, t_len, H), dt)
        self.c_prev, self.tc = np.empty_like(prev), np.empty_like(prev)
        self.acts = np.empty(xw.shape, dt)  # i, f, g, o after their nonlinearities
        out = np.empty_like(prev)
        for t in range(t_len):
            prev[:, t], self.c_prev[:, t] = h, c
            a = xw[:, t] + h @ self.params["Wh"]
            ifo = sigmoid(a)
            i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 3 * H :]
            g = np.tanh(a[:, 2 * H : 3 * H])
            c = f * c + i * g
            tc = np.tanh(c)
            h = o * tc
            self.acts[:, t] = np.concatenate([i, f, g, o], axis=1)
            self.tc[:, t], out[:, t] = tc, h
        self.x, self.prev = x, prev
        return out

    def backward(self, dout: Array) -> Array:
        n, t_len, H = dout.shape
        Wh = self.params["Wh"]
        da = np.empty(self.acts.shape, np.result_type(dout, self.acts))
        dh_next = np.zeros((n, H), da.dtype)
        dc_next = np.zeros((n, H), da.dtype)
        for t in reversed(range(t_len)):
            acts = self.acts[:, t]
            i, f, g, o = (acts[:, k * H : (k + 1) * H] for k in range(4))
            tc = self.tc[:, t]
            dh = dout[:, t] + dh_next
            dc = dc_next + dh * o * (1 - tc**2)
            di, df, dg, do = dc * g, dc * self.c_prev[:, t], dc * i, dh * tc
            da[:, t] = np.concatenate(
                [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1
            )
            dh_next = da[:, t] @ Wh.T
            dc_next = dc * f
        return self.finish(self.x, da, da, self.prev, {"h0": dh_next, "c0": dc_next})


@register_layer("gru")
class GRU(_Recurrent):
    """GRU, all hidden states; gates stacked r, z, n (PyTorch's order and formula, b_hn inside
    r ⊙ (…)). x: (N, T, D), Wx, Wh: (D or H, 3H), bx, bh: (3H,), out: (N, T, H)."""

    gates = 3
    biases = ("bx", "bh")
    forward_formula = (
        "[ax_r, ax_z, ax_n] = x_t·Wx + bx;  [ah_r, ah_z, ah_n] = h_{t−1}·Wh + bh;  "
        "r = σ(ax_r + ah_r);  z = σ(ax_z + ah_z);  n = tanh(ax_n + r ⊙ ah_n);  "
        "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}"
    )
    backward_formula = (
        "dh_t = dout[:, t] + dh_{t+1 → t};  dn' = dh_t ⊙ (1 − z) ⊙ (1 − n²);  "
        "dz' = dh_t ⊙ (h_{t−1} − n) ⊙ z(1 − z);  dr' = dn' ⊙ ah_n ⊙ r(1 − r);  "
        "dax = [dr', dz', dn'];  dah = [dr', dz', dn' ⊙ r];  dWx = Σ x_tᵀ·dax;  dbx = Σ dax;  "
        "dWh = Σ h_{t−1}ᵀ·dah;  dbh = Σ dah;  dx_t = dax·Wxᵀ;  dh_{t → t−1} = dh_t ⊙ z + dah·Whᵀ"
    )

    def forward(self, x: Array) -> Array:
        n, t_len, _ = x.shape
        H = self.hidden
        ax = x @ self.params["Wx"] + self.params["bx"]  # (N, T, 3H)
        dt = self.dtype_for(x)
        h = self.initial("h0", n, dt)
        prev = np.empty((n, t_len, H), dt)
        self.rzn = np.empty(ax.shape, dt)  # r, z, n per step
        self.ah_n = np.empty_like(prev)
        out = np.empty_like(prev)
        for t in range(t_len):
            prev[:, t] = h
            ah = h @ self.params["Wh"] + self.params["bh"]
            rz = sigmoid(ax[:, t, : 2 * H] + ah[:, : 2 * H])
            r, z = rz[:, :H], rz[:, H:]
            nn = np.tanh(ax[:, t, 2 * H :] + r * ah[:, 2 * H :])
            h = (1 - z) * nn + z * h
            self.rzn[:, t] = np.concatenate([r, z, nn], axis=1)
            self.ah_n[:, t], out[:, t] = ah[:, 2 * H :], h
        self.x, self.prev = x, prev
        return out

    def backward(self, dout: Array) -> Array:
        n, t_len, H = dout.shape
        Wh = self.params["Wh"]
        dt = np.result_type(dout, self.rzn)
        dax = np.empty(self.rzn.shape, dt)
        dah = np.empty(self.rzn.shape, dt)
        carry = np.zeros((n, H), dt)
        for t in reversed(range(t_len)):
            r, z, nn = (self.rzn[:, t, k * H : (k + 1) * H] for k in range(3))
            dh = dout[:, t] + carry
            dn = dh * (1 - z) * (1 - nn**2)
            dz = dh * (self.prev[:, t] - nn) * z * (1 - z)
            dr = dn * self.ah_n[:, t] * r * (1 - r)
            dax[:, t] = np.concatenate([dr, dz, dn], axis=1)
            dah[:, t] = np.concatenate([dr, dz, dn * r], axis=1)
            carry = dh * z + dah[:, t] @ Wh.T
        return self.finish(self.x, dax, dah, self.prev, {"h0": carry})

"""1-D convolution over (N, C, L) (cross-correlation, as in deep-learning libraries), with
stride, zero padding and dilation."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.table import register_layer


def _size(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ConfigError(f"'{name}' must be a {what} integer, got {value!r}")
    return int(value)


def out_length(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """L_out = ⌊(L + 2p − d·(k − 1) − 1)/s⌋ + 1 (PyTorch's formula); may be < 1."""
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@register_layer("conv1d")
class Conv1d(Layer):
    """1-D convolution. x: (N, C, L), W: (F, C, k), b: (F,), out: (N, F, L_out),
    L_out = ⌊(L + 2p − d·(k − 1) − 1)/s⌋ + 1."""

    forward_formula = "out[n,f,l] = Σ_{c,j} xpad[n,c,l·s + j·d]·W[f,c,j] + b[f]"
    backward_formula = (
        "dW[f,c,j] = Σ_{n,l} xpad[n,c,l·s + j·d]·dout[n,f,l];  db = Σ_{n,l} dout;  "
        "dxpad[n,c,l·s + j·d] += Σ_f dout[n,f,l]·W[f,c,j];  dx = dxpad without the padding"
    )
    row_independent = True
    complex_safe = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        f = positive_int(out_channels, "out_channels")
        self.kernel = _size(kernel, "kernel", 1)
        self.stride = _size(stride, "stride", 1)
        self.padding = _size(padding, "padding", 0)
        self.dilation = _size(dilation, "dilation", 1)
        if len(input_shape) != 2:
            raise ShapeError(
                f"conv1d expects per-sample input of shape (channels, length), got {input_shape}",
                hint="give the input a 3-D shape [batch, channels, length]",
            )
        c, length = input_shape
        if out_length(length, self.kernel, self.stride, self.padding, self.dilation) < 1:
            span = self.dilation * (self.kernel - 1) + 1
            raise ShapeError(
                f"conv1d: the kernel spans {span} positions but the padded input has "
                f"{length + 2 * self.padding}",
                hint="use a smaller kernel or dilation, add padding, or give a longer input",
            )
        k = 1 / np.sqrt(c * self.kernel)
        self.params = {
            "W": rng.uniform(-k, k, (f, c, self.kernel)).astype(dtype),
            "b": rng.uniform(-k, k, f).astype(dtype),
        }
        self.grads = {k_: np.zeros_like(v) for k_, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """W (F, C, k) and b (F,); output (F, L_out)."""
        f, k = args.get("out_channels"), args.get("kernel")
        rest = [args.get(n, d) for n, d in (("stride", 1), ("padding", 0), ("dilation", 1))]
        ints = [f, k, *rest]
        if len(input_shape) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints
        ):
            return None
        assert isinstance(f, int) and isinstance(k, int)
        if rest[0] < 1:
            return None  # construction says why
        c, length = input_shape
        return f * c * k + f, (f, max(out_length(length, k, *rest), 0))

    def forward(self, x: Array) -> Array:
        p = self.padding
        self.x_shape = x.shape
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p)))
        lo = out_length(x.shape[2], self.kernel, self.stride, p, self.dilation)
        # positions read by output l and tap j: l·s + j·d
        self.pos = np.arange(lo)[:, None] * self.stride + np.arange(self.kernel) * self.dilation
        self.win = xpad[:, :, self.pos]  # (N, C, L_out, k)
        self.pad_len = xpad.shape[2]
        out: Array = np.einsum("nclj,fcj->nfl", self.win, self.params["W"])
        return out + self.params["b"][None, :, None]

    def backward(self, dout: Array) -> Array:
        W = self.params["W"]
        self.grads["W"] = np.einsum("nfl,nclj->fcj", dout, self.win)
        self.grads["b"] = dout.sum(axis=(0, 2))
        dwin = np.einsum("nfl,fcj->nclj", dout, W)
        n, c, length = self.x_shape
        dxpad = np.zeros((n, c, self.pad_len), dtype=dwin.dtype)
        lo = dwin.shape[2]
        for j in range(self.kernel):  # one strided slice per tap: positions j·d + l·s
            start = j * self.dilation
            dxpad[:, :, start : start + self.stride * (lo - 1) + 1 : self.stride] += dwin[..., j]
        dx: Array = dxpad[:, :, self.padding : self.padding + length]
        return dx

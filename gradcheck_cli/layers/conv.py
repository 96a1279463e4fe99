"""2-D convolution (NCHW; cross-correlation, as in deep-learning libraries) via strided windows."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.table import register_layer


def pair(value: object, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """A size given as one int (square) or [height, width]; each at least ``minimum``."""
    items = list(value) if isinstance(value, (list, tuple)) else [value, value]
    sizes = [int(v) for v in items if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
    if len(items) != 2 or len(sizes) != 2 or min(sizes) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ConfigError(
            f"'{name}' must be a {what} integer or a pair [height, width] of them, got {value!r}"
        )
    return sizes[0], sizes[1]


def spatial_input(input_shape: tuple[int, ...], layer: str) -> tuple[int, int, int]:
    """(C, H, W) of a per-sample input shape, or a ShapeError saying what was expected."""
    if len(input_shape) != 3:
        raise ShapeError(
            f"{layer} expects per-sample input of shape (channels, height, width), got {input_shape}",
            hint="give the input a 4-D shape [batch, channels, height, width]",
        )
    c, h, w = input_shape
    return c, h, w


def out_size(
    hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], layer: str
) -> tuple[int, int]:
    """(H_out, W_out) = ⌊(H − kh)/sh⌋ + 1, … for an already padded (H, W); ShapeError if < 1."""
    if kernel[0] > hw[0] or kernel[1] > hw[1]:
        raise ShapeError(
            f"{layer}: kernel {kernel[0]}x{kernel[1]} is larger than the (padded) input "
            f"{hw[0]}x{hw[1]}",
            hint="use a smaller kernel, add padding, or give a larger input",
        )
    return (hw[0] - kernel[0]) // stride[0] + 1, (hw[1] - kernel[1]) // stride[1] + 1


def windows(x: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """Strided view of every kernel window. x: (N, C, H, W) → (N, C, H_out, W_out, kh, kw)."""
    view: Array = sliding_window_view(x, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return view


def scatter_windows(dwin: Array, shape: tuple[int, ...], stride: tuple[int, int]) -> Array:
    """Adjoint of ``windows``: add each window's gradient back onto its input positions.
    dwin: (N, C, H_out, W_out, kh, kw) → dx: (N, C, H, W). Loops over the kh·kw kernel offsets
    only (each step is one strided slice over all pixels)."""
    _, _, ho, wo, kh, kw = dwin.shape
    sh, sw = stride
    dx = np.zeros(shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += dwin[..., i, j]
    return dx


@register_layer("conv2d")
class Conv2d(Layer):
    """2-D convolution. x: (N, C, H, W), W: (F, C, kh, kw), b: (F,), out: (N, F, H_out, W_out),
    H_out = ⌊(H + 2·ph − kh)/sh⌋ + 1 (same for W)."""

    forward_formula = "out[n,f,h,w] = Σ_{c,i,j} xpad[n,c,h·s+i,w·s+j]·W[f,c,i,j] + b[f]"
    backward_formula = (
        "dW[f,c,i,j] = Σ_{n,h,w} xpad[n,c,h·s+i,w·s+j]·dout[n,f,h,w];  db = Σ_{n,h,w} dout;  "
        "dxpad[n,c,h·s+i,w·s+j] += Σ_f dout[n,f,h,w]·W[f,c,i,j];  dx = dxpad without the padding"
    )

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        geo = cls._geometry(input_shape, **args)
        c, f, (kh, kw), (ho, wo) = geo
        return f * c * kh * kw + f, (f, ho, wo)

    @classmethod
    def workspace(cls, input_shape: tuple[int, ...], **args: Any) -> int:
        """Elements per sample of the largest temporary: the window matrix (C, H_out, W_out, kh,
        kw) that tensordot copies in forward, and dwin of the same size in backward."""
        c, _, (kh, kw), (ho, wo) = cls._geometry(input_shape, **args)
        return c * ho * wo * kh * kw

    @staticmethod
    def _geometry(
        input_shape: tuple[int, ...],
        out_channels: int,
        kernel: int | list[int],
        stride: int | list[int] = 1,
        padding: int | list[int] = 0,
    ) -> tuple[int, int, tuple[int, int], tuple[int, int]]:
        f = positive_int(out_channels, "out_channels")
        k, st, (ph, pw) = (
            pair(kernel, "kernel"),
            pair(stride, "stride"),
            pair(padding, "padding", minimum=0),
        )
        c, h, w = spatial_input(input_shape, "conv2d")
        return c, f, k, out_size((h + 2 * ph, w + 2 * pw), k, st, "conv2d")

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        out_channels: int,
        kernel: int | list[int],
        stride: int | list[int] = 1,
        padding: int | list[int] = 0,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        f = positive_int(out_channels, "out_channels")
        self.kernel = pair(kernel, "kernel")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        c, h, w = spatial_input(input_shape, "conv2d")
        ph, pw = self.padding
        out_size((h + 2 * ph, w + 2 * pw), self.kernel, self.stride, "conv2d")
        fan_in = c * self.kernel[0] * self.kernel[1]
        self.params = {
            "W": (rng.standard_normal((f, c, *self.kernel)) / np.sqrt(fan_in)).astype(dtype),
            "b": (0.1 * rng.standard_normal(f)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: Array) -> Array:
        ph, pw = self.padding
        self.x_shape = x.shape
        xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        self.xpad_shape = xpad.shape
        self.win = windows(xpad, self.kernel, self.stride)
        W, b = self.params["W"], self.params["b"]
        # out[n,f,h,w] = Σ_{c,i,j} win[n,c,h,w,i,j]·W[f,c,i,j]
        out: Array = np.tensordot(self.win, W, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        return out + b[None, :, None, None]

    def backward(self, dout: Array) -> Array:
        W = self.params["W"]
        # dW[f,c,i,j] = Σ_{n,h,w} dout[n,f,h,w]·win[n,c,h,w,i,j]
        self.grads["W"] = np.tensordot(dout, self.win, axes=([0, 2, 3], [0, 2, 3]))
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        # dwin[n,c,h,w,i,j] = Σ_f dout[n,f,h,w]·W[f,c,i,j]
        dwin = np.tensordot(dout, W, axes=([1], [0])).transpose(0, 3, 1, 2, 4, 5)
        dxpad = scatter_windows(dwin, self.xpad_shape, self.stride)
        ph, pw = self.padding
        h, w = self.x_shape[2:]
        dx: Array = dxpad[:, :, ph : ph + h, pw : pw + w]
        return dx

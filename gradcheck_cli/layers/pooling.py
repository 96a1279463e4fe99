"""2-D max and average pooling (NCHW, no padding), on the same strided windows as conv2d."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.layers.base import Array, Layer
from gradcheck_cli.layers.conv import out_size, pair, scatter_windows, spatial_input, windows
from gradcheck_cli.layers.table import register_layer


class _Pool(Layer):
    name = "pool"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        kernel: int | list[int],
        stride: int | list[int] | None = None,
    ) -> None:
        super().__init__()
        self.kernel = pair(kernel, "kernel")
        self.stride = self.kernel if stride is None else pair(stride, "stride")
        _, h, w = spatial_input(input_shape, self.name)
        out_size((h, w), self.kernel, self.stride, self.name)


@register_layer("maxpool2d")
class MaxPool2d(_Pool):
    """Maximum over each kernel window. x: (N, C, H, W), out: (N, C, H_out, W_out),
    H_out = ⌊(H − kh)/sh⌋ + 1; stride defaults to the kernel.

    Ties (equal maxima in a window) send the whole gradient to the first maximal entry in
    row-major order (like PyTorch). At a tie the loss has a kink: see docs/layers.md.
    """

    name = "maxpool2d"
    forward_formula = "out[n,c,h,w] = max_{i,j} x[n,c,h·s+i,w·s+j]"
    backward_formula = (
        "dx[n,c,h·s+i*,w·s+j*] += dout[n,c,h,w], (i*,j*) = first argmax of the window"
    )

    def forward(self, x: Array) -> Array:
        win = windows(x, self.kernel, self.stride)
        n, c, ho, wo, kh, kw = win.shape
        flat = win.reshape(n, c, ho, wo, kh * kw)
        self.k = flat.real.argmax(axis=-1)  # comparisons on the real part (complex-step safe)
        self.x_shape = x.shape
        out: Array = np.take_along_axis(flat, self.k[..., None], axis=-1)[..., 0]
        return out

    def backward(self, dout: Array) -> Array:
        n, c, ho, wo = self.k.shape
        i, j = np.divmod(self.k, self.kernel[1])
        rows = np.arange(ho)[:, None] * self.stride[0] + i
        cols = np.arange(wo)[None, :] * self.stride[1] + j
        nn, cc = np.ogrid[:n, :c]
        dx = np.zeros(self.x_shape, dtype=dout.dtype)
        np.add.at(dx, (nn[..., None, None], cc[..., None, None], rows, cols), dout)
        return dx


@register_layer("avgpool2d")
class AvgPool2d(_Pool):
    """Mean over each kernel window. x: (N, C, H, W), out: (N, C, H_out, W_out);
    stride defaults to the kernel."""

    name = "avgpool2d"
    forward_formula = "out[n,c,h,w] = (1/(kh·kw)) Σ_{i,j} x[n,c,h·s+i,w·s+j]"
    backward_formula = "dx[n,c,h·s+i,w·s+j] += dout[n,c,h,w] / (kh·kw)"

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        out: Array = windows(x, self.kernel, self.stride).mean(axis=(-2, -1))
        return out

    def backward(self, dout: Array) -> Array:
        kh, kw = self.kernel
        dwin = np.broadcast_to((dout / (kh * kw))[..., None, None], (*dout.shape, kh, kw))
        return scatter_windows(dwin, self.x_shape, self.stride)

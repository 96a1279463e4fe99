"""Wrong twins of configs/functions/layers.py: each must be caught by `gradcheck fn` (exit 1 for a
wrong gradient, exit 2 with a message naming the function for a broken contract)."""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "_gradcheck_example_layers", Path(__file__).parents[1] / "configs" / "functions" / "layers.py"
)
assert _spec is not None and _spec.loader is not None
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)
affine_forward = layers.affine_forward
batchnorm_forward = layers.batchnorm_forward
conv_forward_naive = layers.conv_forward_naive
relu_forward = layers.relu_forward
rnn_step_forward = layers.rnn_step_forward


def affine_mean_db_forward(x, w, b):
    return affine_forward(x, w, b)


def affine_mean_db_backward(dout, cache):
    """db with mean instead of sum."""
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.mean(axis=0)


def affine_flat_dx_forward(x, w, b):
    return affine_forward(x, w, b)


def affine_flat_dx_backward(dout, cache):
    """dx not reshaped back to x's shape."""
    x, w = cache
    return dout @ w.T, x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def affine_order_forward(x, w, b):
    return affine_forward(x, w, b)


def affine_order_backward(dout, cache):
    """Gradients returned as (dw, dx, db)."""
    x, w = cache
    return x.reshape(x.shape[0], -1).T @ dout, (dout @ w.T).reshape(x.shape), dout.sum(axis=0)


def affine_two_forward(x, w, b):
    return affine_forward(x, w, b)


def affine_two_backward(dout, cache):
    """db forgotten: two gradients for three arguments."""
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout


def affine_nocache_forward(x, w, b):
    """Returns out only, not (out, cache)."""
    return x.reshape(x.shape[0], -1) @ w + b


def affine_nocache_backward(dout, cache):
    raise AssertionError("never reached")


def relu_nomask_forward(x):
    return relu_forward(x)


def relu_nomask_backward(dout, cache):
    """Passes dout through everywhere (forgets the x > 0 mask)."""
    return dout.copy()


def conv_nopad_forward(x, w, b, conv_param):
    return conv_forward_naive(x, w, b, conv_param)


def conv_nopad_backward(dout, cache):
    """dw from the unpadded input: wrong at every border tap."""
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    xs = np.pad(x, ((0, 0), (0, 0), (0, 2 * pad), (0, 2 * pad)))  # shifted: the bug
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xs[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    h, wd = x.shape[2], x.shape[3]
    return dxp[:, :, pad : pad + h, pad : pad + wd], dw, dout.sum(axis=(0, 2, 3))


def batchnorm_nomean_forward(x, gamma, beta, bn_param):
    return batchnorm_forward(x, gamma, beta, bn_param)


def batchnorm_nomean_backward(dout, cache):
    """dx without the mean terms: treats the batch mean and variance as constants."""
    xhat, gamma, v = cache
    return dout * gamma / np.sqrt(v), (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_inplace_forward(x, gamma, beta, bn_param):
    return batchnorm_forward(x, gamma, beta, bn_param)


def batchnorm_inplace_backward(dout, cache):
    """Correct the first time, but scales the cached xhat in place: a second call differs."""
    xhat, gamma, v = cache
    g = dout * gamma
    dgamma = (dout * xhat).sum(axis=0)
    xhat *= 1.0 / np.sqrt(v)  # the bug: writes into the cache
    dx = g / np.sqrt(v) - g.mean(axis=0) / np.sqrt(v) - xhat * (g * xhat).mean(axis=0) * np.sqrt(v)
    return dx, dgamma, dout.sum(axis=0)


def rnn_step_tanh_forward(x, prev_h, Wx, Wh, b):
    return rnn_step_forward(x, prev_h, Wx, Wh, b)


def rnn_step_tanh_backward(dnext_h, cache):
    """tanh' taken as 1 - h instead of 1 - h²."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_step_swap_forward(x, prev_h, Wx, Wh, b):
    return rnn_step_forward(x, prev_h, Wx, Wh, b)


def rnn_step_swap_backward(dnext_h, cache):
    """dWx and dWh swapped (same shapes when D == H: only the numbers can tell)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, prev_h.T @ da, x.T @ da, da.sum(axis=0)


def softmax_loss_no_n(x, y):
    """dx not divided by N (the loss is a mean)."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return -log_p[np.arange(n), y].mean(), dx


def svm_loss_no_correct(x, y):
    """Forgets the gradient at the correct class."""
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    return margins.sum() / n, (margins > 0).astype(x.dtype) / n


def loss_value_only(x, y):
    """Returns the loss without dx."""
    return float(np.sum(x**2))


def rosen_der_half(x):
    """Rosenbrock gradient with the 200 term halved."""
    d = np.zeros_like(x)
    d[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    d[1:] += 100.0 * (x[1:] - x[:-1] ** 2)
    return d

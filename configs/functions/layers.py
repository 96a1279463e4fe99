"""Layer functions in the CS231n style, written for gradcheck's examples and tests.

Each forward returns (out, cache); each backward takes (dout, cache) and returns the gradients of
the forward's floating-point array arguments, in their order. Losses return (loss, dx).

    gradcheck fn configs/functions/layers.py:affine --shape x=4x5 --shape w=5x3 --shape b=3
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b.  x: (N, d1, ..., dk), w: (D, M), b: (M,) -> out: (N, M)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    """dout: (N, M) -> dx: x's shape, dw: (D, M), db: (M,)."""
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(x, 0), elementwise."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0."""
    x = cache
    return dout * (x > 0)


def conv_forward_naive(x, w, b, conv_param):
    """Cross-correlation with zero padding.  x: (N, C, H, W), w: (F, C, HH, WW), b: (F,),
    conv_param: {stride, pad} -> out: (N, F, H', W'), H' = 1 + (H + 2 pad - HH) / stride."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, _, h, wd = x.shape
    f, _, hh, ww = w.shape
    ho, wo = 1 + (h + 2 * pad - hh) // stride, 1 + (wd + 2 * pad - ww) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, w, b))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache):
    """dout: (N, F, H', W') -> dx: (N, C, H, W), dw: (F, C, HH, WW), db: (F,)."""
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp, dtype=np.result_type(xp, dout))
    dw = np.zeros_like(w, dtype=np.result_type(w, dout))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    db = dout.sum(axis=(0, 2, 3))
    h, wd = x.shape[2], x.shape[3]
    return dxp[:, :, pad : pad + h, pad : pad + wd], dw, db


def batchnorm_forward(x, gamma, beta, bn_param):
    """Train mode: normalise each feature over the batch, then scale and shift.  x: (N, D),
    gamma, beta: (D,). Updates bn_param's running_mean / running_var, as CS231n's does."""
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)  # not x.var(): its |x - mu|² breaks --method complex
    xhat = (x - mu) / np.sqrt(var + eps)
    out = gamma * xhat + beta
    d = x.shape[1]
    bn_param["running_mean"] = (
        momentum * bn_param.get("running_mean", np.zeros(d)) + (1 - momentum) * mu
    )
    bn_param["running_var"] = (
        momentum * bn_param.get("running_var", np.zeros(d)) + (1 - momentum) * var
    )
    return out, (xhat, gamma, var + eps)


def batchnorm_backward(dout, cache):
    """dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps) with g = dout * gamma."""
    xhat, gamma, v = cache
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0)) / np.sqrt(v)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b).  x: (N, D), prev_h: (N, H), Wx: (D, H), Wh: (H, H)."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """-> dx, dprev_h, dWx, dWh, db (the order of the forward's arguments)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def softmax_loss(x, y):
    """Mean cross-entropy of softmax(x) against labels y.  x: (N, C), y: (N,) -> (loss, dx)."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_p[np.arange(n), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def svm_loss(x, y):
    """Mean multiclass hinge loss, margin 1.  x: (N, C), y: (N,) -> (loss, dx)."""
    n = x.shape[0]
    correct = x[np.arange(n), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] = -dx.sum(axis=1)
    return loss, dx / n


def rosen(x):
    """SciPy style: the Rosenbrock function of a vector x: (D,) -> float."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def rosen_der(x):
    """Its gradient: (D,)."""
    d = np.zeros_like(x)
    d[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    d[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return d


def masked_affine_forward(x, w, b, mask):
    """out = (x ⊙ mask) @ w + b, with a fixed 0/1 feature mask (data: never differentiated).
    x: (N, D), w: (D, M), b: (M,), mask: (D,)."""
    out = (x * mask) @ w + b
    return out, (x, w, mask)


def masked_affine_backward(dout, cache):
    """-> dx, dw, db (mask is data: no gradient)."""
    x, w, mask = cache
    return (dout @ w.T) * mask, (x * mask).T @ dout, dout.sum(axis=0)

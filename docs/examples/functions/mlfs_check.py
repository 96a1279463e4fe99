"""Check a layer whose backward applies an optimizer update (docs/functions.md, recipe 1).

The layer's backward_pass hands each weight gradient to ``optimizer.update(w, grad)``; a
``Recorder`` optimizer keeps the gradient and returns the weights unchanged, so a forward/backward
pair can hand gradcheck the gradients, and the layer is checked as it is:

    gradcheck fn docs/examples/functions/mlfs_check.py:dense --shape X=8x4 --shape W=4x3 --shape w0=1x3
"""

from mlfs_layers import Dense, DenseBiasMean


class Recorder:
    """An optimizer that records the gradient it is given and leaves the weights as they are."""

    def update(self, w, grad_wrt_w):
        self.grad = grad_wrt_w
        return w


def _forward(cls, X, W, w0):
    layer = cls(n_units=W.shape[1], input_shape=(W.shape[0],))
    layer.initialize(Recorder())  # W_opt and w0_opt become Recorders
    layer.W, layer.w0 = W, w0  # the arrays gradcheck perturbs
    return layer.forward_pass(X), layer


def _backward(dout, layer):
    dX = layer.backward_pass(dout)
    return dX, layer.W_opt.grad, layer.w0_opt.grad  # in the order of the forward's arguments


def dense_forward(X, W, w0):
    return _forward(Dense, X, W, w0)


def dense_backward(dout, layer):
    return _backward(dout, layer)


def dense_bias_mean_forward(X, W, w0):
    return _forward(DenseBiasMean, X, W, w0)


def dense_bias_mean_backward(dout, layer):
    return _backward(dout, layer)

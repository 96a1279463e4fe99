"""A layer written in ML-From-Scratch's style (eriklindernoren/ML-From-Scratch,
mlfromscratch/deep_learning/layers.py): forward_pass / backward_pass, and a backward_pass that
applies its optimizer to the weights instead of returning their gradients.

Kept as it would be in such a project; docs/examples/functions/mlfs_check.py checks it without
changing it. ``DenseBiasMean`` is a copy with a planted bug (w0's gradient averaged over the batch
instead of summed).
"""

import copy
import math

import numpy as np


class Dense:
    """A fully-connected layer: out = X W + w0.  X: (N, D), W: (D, M), w0: (1, M)."""

    def __init__(self, n_units, input_shape=None):
        self.layer_input = None
        self.input_shape = input_shape
        self.n_units = n_units
        self.trainable = True
        self.W = None
        self.w0 = None

    def initialize(self, optimizer):
        limit = 1 / math.sqrt(self.input_shape[0])
        self.W = np.random.uniform(-limit, limit, (self.input_shape[0], self.n_units))
        self.w0 = np.zeros((1, self.n_units))
        self.W_opt = copy.copy(optimizer)
        self.w0_opt = copy.copy(optimizer)

    def forward_pass(self, X, training=True):
        self.layer_input = X
        return X.dot(self.W) + self.w0

    def backward_pass(self, accum_grad):
        W = self.W  # the weights the forward pass used
        if self.trainable:
            grad_w = self.layer_input.T.dot(accum_grad)
            grad_w0 = np.sum(accum_grad, axis=0, keepdims=True)
            self.W = self.W_opt.update(self.W, grad_w)  # the update happens here
            self.w0 = self.w0_opt.update(self.w0, grad_w0)
        return accum_grad.dot(W.T)


class DenseBiasMean(Dense):
    """Dense with a planted bug: grad_w0 is the batch mean, not the sum."""

    def backward_pass(self, accum_grad):
        W = self.W
        grad_w = self.layer_input.T.dot(accum_grad)
        grad_w0 = np.mean(accum_grad, axis=0, keepdims=True)
        self.W = self.W_opt.update(self.W, grad_w)
        self.w0 = self.w0_opt.update(self.w0, grad_w0)
        return accum_grad.dot(W.T)

"""A dense layer with a classic bug, for the README's examples: db is the mean over the batch
instead of the sum.

    gradcheck layer docs/examples/buggy_dense.py:BuggyDense --shape 5x4 --arg out=3
"""

import numpy as np


class BuggyDense:
    """y = x·W + b, x: (N, n), W: (n, m); bug: db = mean over the batch (should be the sum)."""

    row_independent = True

    def __init__(self, input_shape, rng, out):
        n = input_shape[0]
        self.params = {"W": rng.standard_normal((n, out)) / np.sqrt(n), "b": np.zeros(out)}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads = {"W": self.x.T @ dout, "b": dout.mean(axis=0)}  # bug: mean, not sum
        return dout @ self.params["W"].T

"""`gradcheck init`: a starter config and a custom-layer template that pass as written."""

from __future__ import annotations

from pathlib import Path

from gradcheck_cli.errors import ConfigError

CONFIG_NAME = "gradcheck.yaml"
LAYER_NAME = "my_layer.py"

CONFIG = """\
# A gradcheck config. Check it with:  gradcheck run gradcheck.yaml
# Every key: `gradcheck schema config` (JSON Schema); built-in layers and losses: `gradcheck list`.
name: my-network
seed: 0                              # every random draw (input, weights, target) derives from it
dtype: float64
input: {shape: [4, 3]}               # batch × features, random normal
target: {kind: classes, classes: 3}
layers:
  - {type: "my_layer.py:MyDense", out: 5}   # your layer (my_layer.py, next to this file)
  - {type: linear, out: 3}                  # a built-in layer
loss: {type: softmax_cross_entropy}
check:
  eps: 1.0e-5
  inputs: true                       # also check ∂L/∂input
  # include: ["*.W"]                 # only these parameters (glob patterns on report names)
  # exclude: ["input"]               # skip these
"""

LAYER = '''\
"""A custom layer for gradcheck. Edit forward and backward, then: gradcheck run gradcheck.yaml"""

import numpy as np


class MyDense:
    """out = tanh(x·W + b).  x: (N, D) → out: (N, M); W: (D, M), b: (M,).

    gradcheck calls the constructor with the config entry's keys (here ``out``) plus, when
    accepted, ``input_shape`` (per sample, batch axis excluded), ``rng`` and ``dtype``.
    """

    def __init__(self, input_shape, rng, out=4, dtype="float64"):
        (d,) = input_shape
        self.params = {
            "W": (rng.standard_normal((d, out)) / np.sqrt(d)).astype(dtype),
            "b": (0.1 * rng.standard_normal(out)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        # read the parameters from self.params: gradcheck perturbs them in place
        self.x = x
        self.out = np.tanh(x @ self.params["W"] + self.params["b"])
        return self.out

    def backward(self, dout):
        dz = dout * (1 - self.out**2)  # tanh' = 1 − tanh²
        self.grads["W"] = self.x.T @ dz
        self.grads["b"] = dz.sum(axis=0)
        return dz @ self.params["W"].T
'''

FILES = {CONFIG_NAME: CONFIG, LAYER_NAME: LAYER}


def write_starter(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the starter files into ``directory`` (created if missing); existing files are an
    error unless ``force``."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ConfigError("is a file, not a directory", file=target)
    paths = [target / name for name in FILES]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"would overwrite {', '.join(str(p) for p in existing)}",
            hint="use --force to overwrite, or choose another directory",
        )
    target.mkdir(parents=True, exist_ok=True)
    for path in paths:
        path.write_text(FILES[path.name], encoding="utf-8")
    return paths

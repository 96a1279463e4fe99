"""Verdicts at the edges III (issue 23): steps that follow the function (a steep gate), floors
per tensor (a raw feature of 1e9), steps not taken (a function that rounds its input to
float32), a forward that does not read params['W'], and diagnoses in the user's terms.

Every mechanism has a wrong twin that must fail and a correct one that must pass over several
seeds; the truth is independent of gradcheck (closed-form derivatives, a plain one-entry loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer, check_network
from gradcheck_cli.cli import app
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.precision import input_quantum
from gradcheck_cli.layers.activations import ReLU
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.verdict.steps import Ladder, evidence, unreached

# -- a steep smooth gate: steps from the function, not from |θ| ---------------------------------


class Gate:
    """out = tanh(k·x); backward = bug · the true derivative (bug = 1: correct, 0: zeros)."""

    row_independent = True

    def __init__(self, k: float, bug: float = 1.0) -> None:
        self.k, self.bug = k, bug
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(self.k * x)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.bug * dout * self.k * (1 - self.y**2)


def _gate_input(k: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3)) / k, rng.standard_normal((4, 3))  # k·x ~ 1: the bend


@pytest.mark.parametrize("k", [1e6, 1e8, 1e10])
@pytest.mark.parametrize("seed", range(3))
def test_steep_gate_correct_passes_and_the_estimate_is_the_closed_form(k: float, seed: int) -> None:
    x, g = _gate_input(k, seed)
    res = check_layer(Gate(k), x, dout=g)
    (p,) = res.params
    assert res.passed and p.verdict in ("pass", "inconclusive"), p.note
    truth = g * k / np.cosh(k * x) ** 2  # d/dx Σ g·tanh(kx), in closed form
    n = np.asarray(p.numeric)
    assert np.nanmax(np.abs(n - truth)) <= 1e-6 * np.abs(truth).max()


@pytest.mark.parametrize("k", [1e6, 1e8, 1e10])
@pytest.mark.parametrize("seed", range(3))
def test_steep_gate_bugs_fail_never_zero_or_kink(k: float, seed: int) -> None:
    x, g = _gate_input(k, seed)
    for bug in (0.0, 0.5, 0.9, 0.99, 1.0001):
        for strict in (False, True):
            res = check_layer(Gate(k, bug), x, dout=g, strict=strict)
            (p,) = res.params
            assert not res.passed and p.verdict == "fail", (bug, strict, p.verdict, p.note)


def test_steep_gate_scale_bug_is_diagnosed_as_a_scale_not_spurious() -> None:
    x, g = _gate_input(1e8, 0)
    (p,) = check_layer(Gate(1e8, 1.1), x, dout=g).params
    assert p.diagnosis is not None and p.diagnosis.kind == "scale"
    assert np.isclose(p.diagnosis.params["factor"], 1.1, rtol=1e-6)


def _ladder(d: np.ndarray, h: np.ndarray) -> Ladder:
    """A ladder with central differences ``d`` at steps ``h`` (finest first), f0 = 0."""
    fp, fm = d * h, -d * h
    ones = np.ones_like(d, dtype=bool)
    return Ladder(h[None], fp[None], fm[None], h[None], h[None], 0.0, ones[None], ones[None])


def test_steps_past_the_curvature_scale_are_no_evidence() -> None:
    h = 0.1 * 4.0 ** -np.arange(10)[::-1]
    far = _ladder(3.0 / h, h)  # D(h) = c/h: a step function seen from afar
    smooth = _ladder(2.0 + 5.0 * h**2, h)  # a smooth L: D converges as h²
    u, noise, trusted = 2.0**-53, np.zeros(1), np.ones(1, dtype=bool)
    assert not evidence(far, noise, trusted, u).any() and unreached(far).all()
    assert evidence(smooth, noise, trusted, u)[0, 2:-1].all() and not unreached(smooth).any()


# -- one raw feature of 1e6 … 1e9: the analytic floor per tensor --------------------------------


class RawLinear:
    """x·W + b with W's row 0 ~ 1/s (the raw column's weight), optional bug on dx or W."""

    row_independent = True

    def __init__(self, s: float, rng: Any, r: float = 0.0, on: str = "dx") -> None:
        self.params = {"W": rng.standard_normal((4, 6)) / 2, "b": rng.standard_normal(6)}
        self.params["W"][0] /= s
        self.grads: dict[str, np.ndarray] = {}
        self.r, self.on = r, on

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(0)}
        dx = dout @ self.params["W"].T
        if self.on == "dx":
            dx = dx * (1 + self.r)
        else:
            self.grads[self.on] = self.grads[self.on] * (1 + self.r)
        return dx


def _raw_net(s: float, seed: int, r: float = 0.0, on: str = "dx") -> Network:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4))
    x[:, 0] = s * (1 + 0.1 * x[:, 0])  # a raw timestamp-like column
    layers = [RawLinear(s, rng, r, on), make_tanh(), Linear((6,), rng, out=3)]
    target = rng.integers(0, 3, size=8)
    return Network(layers, SoftmaxCrossEntropy(), x=x, target=target, trusted=[False, True, True])


def make_tanh() -> Any:
    from gradcheck_cli.layers.activations import Tanh

    return Tanh()


@pytest.mark.parametrize("s", [1e6, 1.7e9])
@pytest.mark.parametrize("seed", range(3))
def test_raw_feature_correct_passes_and_doubled_dx_fails_under_strict(s: float, seed: int) -> None:
    net = _raw_net(s, seed)
    res = check_network(net, attribute=False)
    assert res.passed and not any(p.verdict == "fail" for p in res.params), res.params
    # the correct dx is the truth: a plain one-entry loop (L is linear in the raw column to
    # ~1e-19 since its weights are ~1/s) agrees with it
    assert net.x is not None
    x = np.array(net.x)
    net.loss_value(x.copy())
    dx, _ = net.backward()
    for i in range(8):
        e = np.zeros_like(x)
        e[i, 0] = 1e-4 * abs(x[i, 0])
        num = (net.loss_value(x + e) - net.loss_value(x - e)) / (2 * e[i, 0])
        assert abs(num - dx[i, 0]) <= 1e-4 * np.abs(dx[:, 0]).max()
    bad = check_network(_raw_net(s, seed, r=1.0), attribute=False, strict=True, include=["input"])
    assert not bad.passed and bad.params[0].verdict == "fail"
    w = check_network(_raw_net(s, seed, r=1e-2, on="W"), attribute=False, include=["0.*.W"])
    assert not w.passed


# -- a function that rounds its input to float32 inside -----------------------------------------


class Float32Inside:
    """tanh(x·W) computed in float32 inside, returned as float64; bug scales dx."""

    row_independent = True

    def __init__(self, rng: Any, bug: float = 1.0) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.w = rng.standard_normal((5, 4))
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        a = (x.astype(np.float32) @ self.w.astype(np.float32)).astype(np.float64)
        self.y = np.tanh(a)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.bug * (dout * (1 - self.y**2)) @ self.w.T


@pytest.mark.parametrize("seed", range(4))
def test_float32_inside_is_never_a_fail_and_a_bug_still_is(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 5))
    res = check_layer(Float32Inside(np.random.default_rng(seed)), x, seed=seed)
    (p,) = res.params
    assert p.verdict in ("pass", "inconclusive") and res.passed, p.note
    if p.verdict == "inconclusive":
        assert "float32" in (p.note or "")
    bad = check_layer(Float32Inside(np.random.default_rng(seed), bug=1.05), x, seed=seed)
    assert not bad.passed and bad.params[0].verdict == "fail"


def test_input_quantum_is_measured_not_guessed() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    w = rng.standard_normal(5)

    def f32(v: np.ndarray) -> float:
        return float(np.sum(np.tanh(v.astype(np.float32) @ w.astype(np.float32))))

    def f64(v: np.ndarray) -> float:
        return float(np.sum(np.tanh(v @ w)))

    def f16(v: np.ndarray) -> float:
        return float(np.sum(np.tanh(v.astype(np.float16).astype(np.float64) @ w)))

    assert input_quantum(f32, x, f32(x)) == "float32"
    assert input_quantum(f16, x, f16(x)) == "float16"
    assert input_quantum(f64, x, f64(x)) is None
    assert input_quantum(lambda v: 1.0, x, 1.0) is None  # does not read it at all: no quantum
    x32 = x.astype(np.float32).astype(np.float64)  # already float32 values: still detected
    assert input_quantum(f32, x32, f32(x32)) == "float32"
    assert input_quantum(f64, x32, f64(x32)) is None


# -- a forward that does not read params['W'] ---------------------------------------------------


class StaleCopy:
    """The forward reads self.W; params holds a copy (``fixed``: reads params)."""

    def __init__(self, rng: Any, fixed: bool = False) -> None:
        self.W = rng.standard_normal((3, 2))
        self.b = np.zeros(2)
        self.params = {"W": self.W.copy(), "b": self.b.copy()}
        self.grads: dict[str, np.ndarray] = {}
        self.fixed = fixed

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        w, b = (self.params["W"], self.params["b"]) if self.fixed else (self.W, self.b)
        return x @ w + b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}
        w = self.params["W"] if self.fixed else self.W
        return dout @ w.T


@pytest.mark.parametrize("seed", range(3))
def test_a_forward_that_ignores_params_is_named_not_a_mask(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3))
    res = check_layer(StaleCopy(np.random.default_rng(seed)), x, seed=seed)
    assert not res.passed
    failing = {p.name: p for p in res.failures}
    w = next(p for n, p in failing.items() if n.endswith(".W"))
    assert w.diagnosis is not None and w.diagnosis.kind == "not_read"
    assert "params['W']" in (w.reason or "") and "mask" not in (w.reason or "").lower()
    doc = res.to_dict()
    kinds = {r["name"]: (r.get("diagnosis") or {}).get("kind") for r in doc["results"]}
    assert kinds[w.name] == "not_read"
    assert "input" not in failing  # dx is right
    assert check_layer(StaleCopy(np.random.default_rng(seed), fixed=True), x, seed=seed).passed


def test_a_dead_relu_behind_the_layer_is_not_called_unread() -> None:
    """L flat because a ReLU behind kills everything: the layer does read its params."""

    class Spurious(Linear):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            return super().backward(dout) + 1.0

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    net = Network([Spurious((3,), rng, out=2), ReLU()], WeightedSum(np.ones((4, 2))), x=x)
    net.layers[0].params["b"][:] = -100.0
    res = check_network(net, attribute=False)
    assert not res.passed
    assert all(p.diagnosis is None or p.diagnosis.kind != "not_read" for p in res.params)


# -- structural failures carry kinds ------------------------------------------------------------


class NoBias(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        del self.grads["b"]
        return dx


class TransposedW(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"].T.copy()
        return dx


def test_structural_failures_have_kinds_in_the_json() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    for layer, suffix, kind in ((NoBias((3,), rng, out=2), ".b", "missing"),
                                (TransposedW((3,), rng, out=2), ".W", "transpose")):  # fmt: skip
        doc = check_layer(layer, x, seed=0).to_dict()
        (r,) = [r for r in doc["results"] if r["name"].endswith(suffix)]
        assert not r["passed"] and r["diagnosis"]["kind"] == kind, r
        json.dumps(doc)


# -- sizes named for functions and losses -------------------------------------------------------

FUNCTIONS = '''
import numpy as np

def svm_loss(x, y):
    """CS231n svm_loss; dx not divided by N."""
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] -= dx.sum(axis=1)
    return margins.sum() / n, dx

def mse_outputs(pred):
    """0.5 * mean over every element; dx divided by N only (n_outputs x the truth)."""
    t = np.sin(np.arange(pred.size)).reshape(pred.shape)
    return 0.5 * np.mean((pred - t) ** 2), (pred - t) / pred.shape[0]

def mse_right(pred):
    t = np.sin(np.arange(pred.size)).reshape(pred.shape)
    return 0.5 * np.mean((pred - t) ** 2), (pred - t) / pred.size
'''


@pytest.mark.parametrize("seed", range(2))
def test_a_factor_equal_to_a_size_is_named_by_it_for_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        out = runner.invoke(app, ["fn", *args, "--seed", str(seed), "--format", "json"])
        return out.exit_code, json.loads(out.stdout)

    code, doc = run("fns.py:svm_loss", "--shape", "x=7x5", "--integers", "y=5")
    d = doc["results"][0]["diagnosis"]
    assert code == 1 and d["kind"] == "scale" and "batch size" in d["params"]["named"], d
    for k in (2, 3):
        code, doc = run("fns.py:mse_outputs", "--shape", f"pred=6x{k}")
        d = doc["results"][0]["diagnosis"]
        assert code == 1 and d["kind"] == "scale" and np.isclose(d["params"]["factor"], k)
        assert "outputs" in d["params"]["named"] and "r²" not in d["params"]["named"], d
        code, doc = run("fns.py:mse_right", "--shape", f"pred=6x{k}")
        assert code == 0, doc

"""The verdict model: no false alarms on correct layers, small bugs caught, kinks, structure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.network import Network
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.activations import ReLU
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.layers.losses import WeightedSum

from .bug_corpus import BUG_KINDS, NETWORKS, bugged, build

IDS = [spec[0] for spec in NETWORKS]


def _targets(net: Network) -> list[tuple[int, str | None]]:
    first = next(i for i, la in enumerate(net.layers) if la.params)
    last = max(i for i, la in enumerate(net.layers) if la.params)
    act = next((i for i, la in enumerate(net.layers) if not la.params), None)
    return [(first, "W"), (last, "b")] + ([(act, None)] if act is not None else [])


def _why(res: Any) -> Any:
    return res.problems, [(p.name, p.verdict, p.reason, p.worst[:2]) for p in res.failures]


@pytest.mark.parametrize("spec", NETWORKS, ids=IDS)
@pytest.mark.parametrize(
    ("method", "seeds"), [("central", 20), ("complex", 20), ("five-point", 4), ("forward", 4)]
)
def test_correct_networks_pass_across_seeds(spec: Any, method: str, seeds: int) -> None:
    for seed in range(seeds):
        for scale in (1.0, 30.0) if seed < 4 else (1.0,):
            res = check_network(build(spec, seed, scale), method=method)
            assert res.passed, (seed, scale, _why(res))


@pytest.mark.parametrize("spec", NETWORKS, ids=IDS)
@pytest.mark.parametrize(
    ("method", "r"), [("central", 1e-6), ("five-point", 1e-6), ("complex", 1e-10)]
)
def test_small_bugs_are_caught(spec: Any, method: str, r: float) -> None:
    for seed in range(2):
        net = build(spec, seed)
        for layer, key in _targets(net):
            for kind in BUG_KINDS:
                net = bugged(build(spec, seed), layer, key, kind, r, seed)
                res = check_network(net, method=method, attribute=False)
                assert not res.passed, (seed, layer, key, kind)


def test_bug_is_located_in_the_right_tensor() -> None:
    net = bugged(build(NETWORKS[2], 0), 2, "W", "scale", 1e-6, 0)
    res = check_network(net, inputs=False, top=8)
    assert [p.name for p in res.failures] == ["2.linear.W"]
    ratios = [e.abs_error / e.tol for e in res.failures[0].worst]
    assert len(ratios) == 8 and ratios == sorted(ratios, reverse=True)  # worst first


# -- kinks -------------------------------------------------------------------------------------


def _relu_with_zeros(strict: bool = False, layer: Any = None) -> Any:
    x = np.array([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0], [-1.0, 2.0, 0.0]])
    return check_layer(layer or ReLU(), x, seed=1, strict=strict)


def test_relu_at_exact_zero_is_a_kink_not_a_failure() -> None:
    res = _relu_with_zeros()
    assert res.passed
    (p,) = res.params
    assert p.verdict == "kink" and p.kinks == 4
    assert all(e.status == "kink" for e in p.worst[:4])


def test_strict_makes_kinks_fail() -> None:
    res = _relu_with_zeros(strict=True)
    assert not res.passed and res.params[0].verdict == "kink"


class ReLUWrongAtZero(ReLU):
    """Bug: at x == 0 the gradient is 3·dout, outside the subdifferential [0, dout]."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        return np.where(self.mask, dx, np.where(self.x0 == 0, 3 * dout, 0))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x0 = x
        return super().forward(x)


def test_a_value_outside_the_one_sided_slopes_fails_at_a_kink() -> None:
    res = _relu_with_zeros(layer=ReLUWrongAtZero())
    assert not res.passed and res.params[0].verdict == "fail"


def test_relu_network_with_dead_units_and_zero_inputs_passes() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    x[:, 1] = 0.0  # a whole feature exactly zero
    lin = make_layer("linear", (4,), rng, out=5)
    lin.params["b"][:] = 0.0
    net = Network([ReLU(), lin, ReLU(), make_layer("linear", (5,), rng, out=3)],
                  WeightedSum(rng.standard_normal((6, 3))), x=x, trusted=[True] * 4)  # fmt: skip
    res = check_network(net)
    assert res.passed, _why(res)
    assert res.params[0].kinks == 6


# -- labels and structure ---------------------------------------------------------------------


class LinearMissingRow(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["W"][0] = 0.0
        return dx


class LinearSpurious(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        return dx + 1.0


def test_missing_and_spurious_gradients_are_labelled() -> None:
    rng = np.random.default_rng(0)
    res = check_layer(LinearMissingRow((3,), rng, out=2), rng.standard_normal((4, 3)), inputs=False)
    w = res.failures[0]
    assert w.name.endswith(".W") and all(
        e.label.startswith("missing") for e in w.worst if e.status == "fail"
    )
    x = rng.standard_normal((4, 3))
    net = Network([LinearSpurious((3,), rng, out=2), ReLU()], WeightedSum(np.ones((4, 2))), x=x)
    net.layers[0].params["b"][:] = -100.0  # ReLU kills everything: L is flat in x
    res = check_network(net, attribute=False)
    assert any(e.label.startswith("spurious") for p in res.failures for e in p.worst)


class Dropoutish:
    def __init__(self) -> None:
        self.params: dict = {}
        self.grads: dict = {}
        self.rng = np.random.default_rng()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = self.rng.random(x.shape) > 0.5
        return x * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.mask


def test_nondeterministic_forward_is_one_clear_failure() -> None:
    res = check_layer(Dropoutish(), np.ones((4, 3)))
    assert not res.passed and res.params == ()
    assert len(res.problems) == 1 and "not deterministic" in res.problems[0]


class Accumulates(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        old = {k: v.copy() for k, v in self.grads.items()}
        dx = super().backward(dout)
        for k in self.grads:
            self.grads[k] = self.grads[k] + old[k]
        return dx


class Squares(Linear):
    """Backward not linear in dout (a common slip: dout**2 somewhere)."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["b"] = (dout * np.abs(dout)).sum(axis=0)
        return dx


class Mutates(Linear):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = super().forward(x.copy())
        x *= 0
        return out


class HalfPrecision(Linear):
    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"].astype(np.float32)
        return dx


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        (Accumulates, "backward called twice"),
        (Squares, "not linear in dout"),
        (Mutates, "modifies its input"),
    ],
)
def test_structural_problems(cls: type, needle: str) -> None:
    rng = np.random.default_rng(2)
    res = check_layer(cls((3,), rng, out=2), rng.standard_normal((4, 3)), label="p.py:Layer")
    assert not res.passed
    assert any(needle in p for p in res.problems), res.problems


def test_correct_layers_have_no_structural_problems() -> None:
    rng = np.random.default_rng(2)
    res = check_layer(Linear((3,), rng, out=2), rng.standard_normal((4, 3)), label="p.py:Layer")
    assert res.passed and res.problems == ()


def test_gradient_of_lower_precision_is_named() -> None:
    rng = np.random.default_rng(2)
    res = check_layer(HalfPrecision((3,), rng, out=2), rng.standard_normal((4, 3)))
    (bad,) = res.failures
    assert "float32" in (bad.reason or "")


# -- complex step -----------------------------------------------------------------------------


class RealOnlyTanh:
    def __init__(self) -> None:
        self.params: dict = {}
        self.grads: dict = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x.real)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 - self.out**2)


def test_complex_step_names_a_layer_that_drops_the_imaginary_part() -> None:
    rng = np.random.default_rng(0)
    net = Network([make_layer("linear", (3,), rng, out=4), RealOnlyTanh()],
                  WeightedSum(rng.standard_normal((2, 4))), labels=["linear", "p.py:RealOnlyTanh"],
                  x=rng.standard_normal((2, 3)), trusted=[True, False])  # fmt: skip
    with pytest.raises(PluginError, match=r"layer 1 \(p.py:RealOnlyTanh\) drops the imaginary"):
        check_network(net, method="complex")
    assert check_network(net).passed  # central works on the same layer


class RaisesOnComplex(RealOnlyTanh):
    def forward(self, x: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(x):
            raise TypeError("complex input not supported")
        return super().forward(x)


class CastsToFloat(RealOnlyTanh):
    def forward(self, x: np.ndarray) -> np.ndarray:
        return super().forward(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("cls", [RaisesOnComplex, CastsToFloat])
def test_complex_step_explains_a_layer_that_raises_or_casts(cls: type) -> None:
    rng = np.random.default_rng(0)
    net = Network([make_layer("linear", (3,), rng, out=4), cls()],
                  WeightedSum(rng.standard_normal((2, 4))), labels=["linear", "p.py:L"],
                  x=rng.standard_normal((2, 3)), trusted=[True, False])  # fmt: skip
    with pytest.raises(PluginError, match="--method complex") as info:
        check_network(net, method="complex")
    assert "central" in str(info.value)  # suggests another method
    assert check_network(net).passed


def test_cli_method_and_report_say_what_was_done() -> None:
    r = CliRunner().invoke(app, ["run", "--method", "five-point", "--format", "json"])
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.stdout)
    assert doc["method"] == "five-point" and doc["eps"] == 1e-3
    r = CliRunner().invoke(app, ["run", "--method", "complex"], env={"COLUMNS": "200"})
    assert "complex step, ε=1e-20" in r.output


# -- attribution ------------------------------------------------------------------------------


def test_attribution_names_the_wrong_layer() -> None:
    spec = NETWORKS[4]  # deep tanh: linear, tanh, linear, tanh, linear
    net = bugged(build(spec, 0), 3, None, "scale", 1e-3, 0)  # the second tanh's dx is wrong
    res = check_network(net)
    assert not res.passed
    assert len(res.attribution) == 1 and res.attribution[0].startswith("layer 3 (tanh)")


# -- precision ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", NETWORKS, ids=IDS)
def test_float32_networks_are_checked_against_float64_numerics(spec: Any) -> None:
    for seed in range(5):
        res = check_network(build(spec, seed, dtype="float32"))
        assert res.passed, (seed, _why(res))
        assert res.dtype == "float32" and res.reference == "float64" and res.eps == 1e-5
    caught = [
        not check_network(
            bugged(build(spec, s, dtype="float32"), 0, "W", kind, 1e-4, s), attribute=False
        ).passed
        for s in range(2)
        for kind in BUG_KINDS
    ]
    assert all(caught)


class Downcasts:
    def __init__(self) -> None:
        self.params: dict = {}
        self.grads: dict = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


class OwnReference(Linear):
    """Keeps its own reference to W (reads self.W, not params['W'])."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.W = self.params["W"]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W + self.params["b"]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda rng: Downcasts(), "returns float32 for float64 input (it downcasts)"),
        (lambda rng: OwnReference((4,), rng, out=4, dtype="float32"), "does not read params"),
    ],
)
def test_a_layer_that_prevents_a_float64_reference_is_named(make: Any, needle: str) -> None:
    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (3,), rng, out=4, dtype="float32"), make(rng)]
    x = rng.standard_normal((5, 3)).astype(np.float32)
    net = Network(layers, WeightedSum(rng.standard_normal((5, 4)).astype(np.float32)),
                  labels=["linear", "p.py:Plugin"], x=x, trusted=[True, False])  # fmt: skip
    res = check_network(net)
    assert res.reference == "float32" and res.eps == 1e-3
    assert any(needle in note and "layer 1 (p.py:Plugin)" in note for note in res.notes), res.notes
    assert res.passed, _why(res)

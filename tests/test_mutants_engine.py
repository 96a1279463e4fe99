"""Engine trust, pinned by behaviour (issue 28): the structural checks a verdict rests on, the
row-independence probe on the smallest batch, the complex-step probe on any input."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.structure import nondeterminism
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy


class Plugin:
    """A parameter-free elementwise plugin base (no row coupling unless a subclass adds it)."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}


# -- nondeterminism: the same θ must give the same L ---------------------------------------------


@pytest.mark.parametrize(
    "first, second, flagged",
    [
        (1.0, 1.0, False),
        (1.0, 1.0 + 1e-15, False),  # round-off of a repeated computation
        (1.0, 1.0 + 1e-9, True),  # far above round-off: a new random draw
        (-3.0, -3.0 * (1 + 1e-6), True),
        (float("nan"), float("nan"), False),
        (float("nan"), 1.0, True),
        (0.0, 1e-300, True),
    ],
)
def test_a_loss_that_changes_between_identical_passes_is_named(
    first: float, second: float, flagged: bool
) -> None:
    assert (nondeterminism(first, second) is not None) == flagged


class FreshNoise(Plugin):
    """x + noise drawn anew on every call (a dropout mask drawn per call, in effect)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + 1e-3 * np.random.default_rng().standard_normal(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


def test_a_forward_that_draws_per_call_fails_as_not_deterministic() -> None:
    res = check_layer(FreshNoise(), np.ones((3, 2)), seed=0)
    assert not res.passed and any("not deterministic" in p for p in res.problems), res.problems


# -- backward: overwrite, linear in dout ---------------------------------------------------------


class Scale(Plugin):
    """out = x·w; ``how`` plants a backward bug a single check cannot see or names wrongly."""

    def __init__(self, how: str = "") -> None:
        super().__init__()
        self.params = {"w": np.array([1.5, -0.5, 2.0]), "b": np.array([0.1, 0.2, -0.3])}
        self.how = how

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": (dout * self.x).sum(0), "b": dout.sum(0)}
        sq = dout * np.abs(dout)  # nonlinear in dout
        if self.how == "accumulate":
            self.grads["w"] = self.grads["w"] + getattr(self, "_last", 0)
            self._last = self.grads["w"]
        elif self.how == "square_w":  # only grads['w'] nonlinear
            self.grads["w"] = (sq * self.x).sum(0)
        elif self.how == "square_all":  # grads['w'], grads['b'] and dx nonlinear
            self.grads = {"w": (sq * self.x).sum(0), "b": sq.sum(0)}
            return sq * self.params["w"]
        return dout * self.params["w"]


def _scale_net(how: str, trusted: bool = False) -> Network:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    return Network(
        [Scale(how)], SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 4), trusted=[trusted]
    )


def test_a_correct_plugin_backward_has_no_structural_problem() -> None:
    res = check_network(_scale_net(""))
    assert res.passed and res.problems == ()


def test_a_backward_that_accumulates_into_grads_is_named() -> None:
    res = check_network(_scale_net("accumulate"))
    assert not res.passed
    assert any("overwrite grads, not accumulate" in p and "grads['w']" in p for p in res.problems)


@pytest.mark.parametrize("how, label", [("square_w", "grads['w']"), ("square_all", "dx")])
def test_a_backward_not_linear_in_dout_is_named_with_the_right_output(how: str, label: str) -> None:
    """The problem names what is nonlinear: grads['w'] when only it is, dx first when dx is."""
    res = check_network(_scale_net(how))
    nonlinear = [p for p in res.problems if "not linear in dout" in p]
    assert not res.passed and len(nonlinear) == 1, res.problems
    assert f"gave {label} = " in nonlinear[0], nonlinear[0]


def test_built_in_layers_are_not_called_again() -> None:
    """A layer marked trusted (built-in) is held to linearity by its own tests, not re-called."""
    res = check_network(_scale_net("accumulate", trusted=True))
    assert not any("accumulate" in p for p in res.problems), res.problems


# -- row independence: two distinct rows are enough to test the declaration -------------------


class MinusFirstRow(Plugin):
    """out = x − x[0] (depends on row positions), declared row independent (falsely)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x - x[:1]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = dout.copy()
        dx[0] -= dout.sum(0)
        return dx


def test_a_false_row_independence_declaration_is_found_on_a_batch_of_two() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    res = check_layer(MinusFirstRow(), x, seed=0)
    assert res.passed  # the loop fallback checks it correctly
    assert any("declares row_independent = True" in n for n in res.notes), res.notes


# -- complex step: the probe moves every entry, whatever the input's values ----------------------


class Softsign(Plugin):
    """x / (1 + |x|): not complex-analytic, yet its Im part is not 0 (wrong by 1 + |x|)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x / (1 + np.abs(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout / (1 + np.abs(self.x)) ** 2


@pytest.mark.parametrize("value", [1.0, -2.0])
def test_the_complex_probe_refuses_a_non_analytic_layer_on_a_constant_input(value: float) -> None:
    """An input whose entries all have the same size (|x| = its mean): the probe's direction
    must not vanish there, or a non-analytic layer would get a false verdict instead of exit 2."""
    x = np.full((3, 4), value)
    x[0] *= -1
    with pytest.raises(PluginError, match="Softsign"):
        check_layer(Softsign(), x, seed=0, method="complex")
    assert check_layer(Softsign(), x, seed=0).passed


class ShortDx(Plugin):
    """Identity forward; backward returns dx with one column too few (breaks the chain)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout[:, :-1].copy()


def test_plugins_below_a_broken_backward_are_not_called_with_no_gradient() -> None:
    """A wrong-shaped dx from the top layer: exit 1 naming it; the plugin layers below it (which
    received no upstream gradient) are skipped by the structural checks, not crashed into."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    net = Network(
        [Scale(), Scale(), ShortDx()], SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 4),
        trusted=[False, False, False],
    )  # fmt: skip
    res = check_network(net)
    said = " ".join([*res.problems, *(p.reason or "" for p in res.params)])
    assert not res.passed and "layer 2 (ShortDx).backward returned dx of shape (4, 2)" in said, said


class OwnReference(Plugin):
    """out = x·w with a float64 w it reads through its own reference (self.w)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = np.array([0.5, -1.5, 2.0, 1.0])
        self.params = {"w": self.w}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return (x * self.w).astype(x.dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": (dout * self.x).sum(0).astype(np.float64)}
        return (dout * self.w).astype(dout.dtype)


def test_only_float32_parameters_are_swapped_for_the_float64_reference() -> None:
    """A float32 network's reference is float64; a parameter already float64 is left as it is,
    so a plugin reading it through its own reference does not cost the float64 reference."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    layers = [make_layer("linear", (4,), rng, out=4, dtype="float32"), OwnReference()]
    net = Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 3), trusted=[True, False]
    )
    res = check_network(net)
    assert res.reference == "float64", res.notes
    assert res.passed

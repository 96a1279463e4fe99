"""Engine trust mechanisms pinned by behaviour (issue 28, third round): the complex-step probe
whatever the output's scale, the row-independence probe on inputs without rows, ..."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradcheck_cli import check_layer
from gradcheck_cli.engine.precision import input_quantum
from gradcheck_cli.engine.probes import rows_mismatch
from gradcheck_cli.errors import PluginError


class ScaledSoftsign:
    """c·x / (1 + |x|): not complex-analytic (|x| drops the imaginary part's sign)."""

    row_independent = True

    def __init__(self, c: float) -> None:
        self.c = c
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.c * x / (1 + np.abs(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.c * dout / (1 + np.abs(self.x)) ** 2


class ScaledTanh(ScaledSoftsign):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.c * self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.c * dout * (1 - self.y**2)


@pytest.mark.parametrize("c", [1e-4, 1.0, 1e4])
def test_the_complex_probe_judges_a_layer_whatever_the_size_of_its_outputs(c: float) -> None:
    """The probe's tolerance is relative to the derivative it measures: a non-analytic layer is
    refused (exit 2) and an analytic one accepted, at outputs 1e-4 or 1e4 large alike."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(PluginError, match="ScaledSoftsign"):
        check_layer(ScaledSoftsign(c), x, seed=0, method="complex")
    assert check_layer(ScaledTanh(c), x, seed=0, method="complex").passed


@pytest.mark.parametrize("x", [np.float64(2.0), np.zeros((0, 3))])
def test_an_input_without_rows_has_no_row_independence_to_probe(x: np.ndarray) -> None:
    """A 0-d input or an empty batch: the reason is said, nothing is indexed."""
    assert rows_mismatch(lambda a: a * 2, x, x * 2) == "its input has no batch axis"


# -- backward called again (engine/structure.py): grads that change form are skipped, not crashed on


class Shifty:
    """out = x·W; its backward's grads change form on the later calls (``how``): W missing, or
    W as text, from the second or the third call on."""

    row_independent = True

    def __init__(self, how: str) -> None:
        self.params = {"W": np.random.default_rng(0).standard_normal((4, 3))}
        self.grads: dict[str, np.ndarray] = {}
        self.how, self.calls = how, 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.calls += 1
        dW = self.x.T @ dout
        when, what = self.how.split(":")
        if self.calls >= int(when):
            self.grads = {} if what == "missing" else {"W": np.full(dW.shape, "?")}
        else:
            self.grads = {"W": dW}
        return dout @ self.params["W"].T


@pytest.mark.parametrize("how", ["2:missing", "3:missing", "3:text"])
def test_grads_that_change_form_when_backward_is_called_again_are_skipped(how: str) -> None:
    """The overwrite/linearity check compares only grads present, numeric and of the same shape
    in all three calls: here W is not, so there is nothing to compare (no error, no traceback)."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.structure import backward_consistency
    from gradcheck_cli.layers.losses import MSE

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    net = Network([Shifty(how)], MSE(), x=x, target=rng.standard_normal((5, 3)), trusted=[False])
    net.loss_value(x)
    dx, grads = net.backward()
    assert backward_consistency(net, grads, dx) == []


def test_an_infinite_loss_repeated_is_deterministic() -> None:
    """The same number twice (inf and NaN included) is deterministic; a difference beyond
    round-off is not, nor is an infinite L the second time gives finite or of the other sign."""
    from gradcheck_cli.engine.structure import nondeterminism

    assert nondeterminism(np.inf, np.inf) is None
    assert nondeterminism(np.nan, np.nan) is None
    assert nondeterminism(1.0, 1.0 + 1e-13) is None
    assert nondeterminism(1.0, 1.0 + 1e-11) is not None
    assert nondeterminism(np.inf, -np.inf) is not None
    assert nondeterminism(np.inf, 1.0) is not None
    assert nondeterminism(1.0, np.inf) is not None


class Accumulates:
    """out = x·W + b; backward adds into grads (+=) instead of overwriting, for W and b."""

    row_independent = True

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads["W"] = self.grads["W"] + self.x.T @ dout
        self.grads["b"] = self.grads["b"] + dout.sum(axis=0)
        return dout @ self.params["W"].T


def test_accumulating_grads_are_reported_once_naming_the_first_tensor() -> None:
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.structure import backward_consistency
    from gradcheck_cli.layers.losses import MSE

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    net = Network([Accumulates()], MSE(), x=x, target=rng.standard_normal((5, 3)), trusted=[False])
    net.loss_value(x)
    dx, grads = net.backward()
    (problem,) = backward_consistency(net, grads, dx)
    assert "different grads['W'] (second = 2× first)" in problem and "+=" in problem


# -- contracts (engine/contracts.py): each breach named as the plugin's, never a crash --------------


class _Net:
    def call(self, i: int, what: str) -> str:
        return f"layer {i} (Odd).{what}"


@pytest.mark.parametrize(
    "x_dtype, out_dtype, refused",
    [
        ("float64", "float16", True),
        ("float32", "float16", True),
        ("float64", "float32", False),  # fewer bits, but float32 resolves a step of ε
        ("float64", "int8", False),  # not a float output: not this check's business
        ("int64", "float16", False),  # indices in: no float input to round
        ("float16", "float16", False),  # as many bits out as in: no downcast here
    ],
)
def test_only_a_float_input_downcast_below_float32_is_refused(
    x_dtype: str, out_dtype: str, refused: bool
) -> None:
    from gradcheck_cli.engine.contracts import check_output_dtype

    x, out = np.zeros(3, dtype=x_dtype), np.zeros(3, dtype=out_dtype)
    if refused:
        with pytest.raises(PluginError, match=f"layer 2 \\(Odd\\).forward downcasts its {x_dtype}"):
            check_output_dtype(_Net(), 2, x, out)
    else:
        check_output_dtype(_Net(), 2, x, out)


@pytest.mark.parametrize(
    "value, why", [(np.ones(3), "ndarray of shape (3,)"), ("L", "str of shape ()")]
)
def test_a_loss_value_that_is_not_one_number_is_the_losss_error(value: object, why: str) -> None:
    from gradcheck_cli.engine.contracts import scalar

    with pytest.raises(PluginError, match=rf"loss \(Odd\)\.forward returned {re.escape(why)}"):
        scalar(value, "Odd")
    assert scalar(np.array([[2.5]]), "Odd") == 2.5


class OddLoss:
    """MSE-like; forward returns ``value`` when given, backward ``grad`` when given."""

    def __init__(self, value: object = "keep", grad: object = "keep") -> None:
        self.value, self.grad = value, grad

    def forward(self, pred: np.ndarray, target: np.ndarray) -> object:
        self.pred, self.target = pred, target
        return float(np.sum((pred - target) ** 2)) if isinstance(self.value, str) else self.value

    def backward(self) -> object:
        return 2 * (self.pred - self.target) if isinstance(self.grad, str) else self.grad


@pytest.mark.parametrize(
    "loss, message",
    [
        (OddLoss(value=None), "forward returned None, expected one number"),
        (OddLoss(value=np.ones(2)), "forward returned ndarray of shape (2,), expected one number"),
        (OddLoss(grad=None), "backward returned None, not dpred"),
        (OddLoss(grad=np.ones(2)), "backward returned shape (2,), not dpred"),
    ],
)
def test_a_loss_breaking_its_contract_is_named(loss: OddLoss, message: str) -> None:
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.contracts import check_loss_behaviour
    from gradcheck_cli.engine.network import Network

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    net = Network([make_layer("tanh", (4,))], loss, x=x, target=rng.standard_normal((3, 4)))
    net.forward(x)
    with pytest.raises(PluginError, match=re.escape(message)):
        check_loss_behaviour(net)


# -- the precision a float32 network's reference is computed in (engine/precision.py) ---------------


def _summed_in(q: type) -> object:
    def loss(v: np.ndarray) -> float:
        return float(np.sum(np.asarray(v, np.float64).astype(q).astype(np.float64)))

    return loss


@pytest.mark.parametrize("q, size", [(np.float32, 1e4), (np.float16, 1e3)])
def test_rounding_is_found_on_large_entries(q: type, size: float) -> None:
    """Entries of 1e3–1e4: the 'does L read the tensor' move is relative to each entry (1e-3 of
    it), so it crosses many of their cells and L changes; the rounding is found."""
    theta = size * (1 + np.random.default_rng(0).random(12))
    loss = _summed_in(q)
    assert input_quantum(loss, theta, loss(theta)) == q.__name__
    f64 = _summed_in(np.float64)
    assert input_quantum(f64, theta, f64(theta)) is None


class Quantise:
    """Rounds its input to integers (int64 out): an integer output is not a downcast."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.rint(x).astype(np.int64)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.zeros(dout.shape)


def test_a_float32_network_is_promoted_before_its_first_pass_and_past_an_integer_output() -> None:
    """promoted() on a network never run (no cached inputs yet), whose first layer returns
    integers: nothing to object to; inside, the float32 weights are float64 copies; after, the
    float32 originals are back."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.precision import promoted
    from gradcheck_cli.layers.losses import MSE

    rng = np.random.default_rng(0)
    lin = make_layer("linear", (4,), rng, out=2)
    lin.params = {k: v.astype(np.float32) for k, v in lin.params.items()}
    x = (3 * rng.standard_normal((5, 4))).astype(np.float32)
    net = Network([Quantise(), lin], MSE(), x=x, target=np.zeros((5, 2), np.float32))
    original = lin.params["W"]
    with promoted(net) as why:
        assert why is None
        assert lin.params["W"].dtype == np.float64
    assert lin.params["W"] is original


# -- kernels (engine/kernels.py): the documented edges of the public helpers ---------------------


def test_forcing_a_kernel_nests_and_restores_the_outer_choice() -> None:
    from gradcheck_cli.engine import kernels

    with kernels.forced("tanh_shift", "addition"):
        with kernels.forced("tanh_shift", "direct"):
            assert kernels.choice("tanh_shift") == "direct"
        assert kernels.choice("tanh_shift") == "addition"
    assert "tanh_shift" not in kernels._forced


def test_the_bound_of_no_change_is_zero() -> None:
    from gradcheck_cli.engine import kernels

    assert kernels.bound_of(np.zeros(0)) == 0.0
    assert kernels.bound_of(np.array([-3e-4, 1e-4])) == 3e-4


@pytest.mark.parametrize("new, base", [(np.float32, np.float64), (np.float64, np.float32)])
def test_tanh_near_takes_no_short_cut_unless_both_are_float64(new: type, base: type) -> None:
    """A float32 copy (or float32 cached tanh): None, so the caller evaluates tanh in the copy's
    own precision (a float64 series result would not be what the layer computes)."""
    from gradcheck_cli.engine import kernels

    x = np.linspace(-1.0, 1.0, 7)
    t = np.tanh(x).astype(base)
    with kernels.forced("tanh_shift", "addition"):
        assert kernels.tanh_near(x, t, (x + 1e-6).astype(new)) is None
        got = kernels.tanh_near(x, np.tanh(x), x + 1e-6)
        assert got is not None and np.allclose(got, np.tanh(x + 1e-6), rtol=1e-15, atol=0)


class SoftAbs(ScaledSoftsign):
    """x + 0.05·|x|: its derivative 1 ± 0.05 — the non-analytic part only 5 % of it (|x| drops
    the complex step's imaginary part)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x + 0.05 * np.abs(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 + 0.05 * np.sign(self.x))


def test_the_complex_probe_refuses_a_layer_whose_non_analytic_part_is_small() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(PluginError, match="SoftAbs"):
        check_layer(SoftAbs(1.0), x, seed=0, method="complex")
    assert check_layer(SoftAbs(1.0), x, seed=0).passed


def test_the_complex_probe_checks_the_loss_at_the_networks_prediction() -> None:
    """Two layers of different widths (4 → 6 → 2): the loss is probed at the (3, 2) prediction
    it is given in the check, not at an inner layer's output."""
    from gradcheck_cli import check_network, make_layer
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.layers.losses import MSE

    rng = np.random.default_rng(1)
    layers = [make_layer("linear", (4,), rng, out=6), make_layer("linear", (6,), rng, out=2)]
    net = Network(layers, MSE(), x=rng.standard_normal((3, 4)), target=rng.standard_normal((3, 2)))
    assert check_network(net, method="complex", seed=0).passed

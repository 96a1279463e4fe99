"""The engine verifies what it relies on (issue 11, engine trust): row-independence declarations,
memory layout, aliased outputs, re-bound parameters, complex-step safety, float32 layouts and
steps, and the softmax cross-entropy for any target rows. Each fix has a correct layer that must
pass and a wrong twin that must fail; the new fallbacks are compared with the plain loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer, make_layer
from gradcheck_cli.checker import check_network
from gradcheck_cli.cli import app
from gradcheck_cli.engine.methods import complex_safety
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Layer
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.layers.registry import LAYERS

from .test_engine import _build, assert_engine_matches_loop

SEEDS = range(5)


# -- row independence: declared, verified ------------------------------------------------------
class BatchNormDeclared:
    """γ·(x − μ_B)/σ_B + β, declaring row_independent = True (falsely: μ_B, σ_B mix rows).
    ``bug``: backward treats μ_B and σ_B as constants (the classic batch-norm bug)."""

    row_independent = True

    def __init__(self, d: int, rng: np.random.Generator, bug: bool = False) -> None:
        self.params = {"gamma": 1 + 0.1 * rng.standard_normal(d), "beta": rng.standard_normal(d)}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inv = 1 / np.sqrt(x.var(0) + 1e-5)
        self.xhat = (x - x.mean(0)) * self.inv
        return self.params["gamma"] * self.xhat + self.params["beta"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"gamma": (dout * self.xhat).sum(0), "beta": dout.sum(0)}
        g = dout * self.params["gamma"]
        if self.bug:
            return g * self.inv
        n = len(dout)
        return self.inv / n * (n * g - g.sum(0) - self.xhat * (g * self.xhat).sum(0))


class MinusFirstRow:
    """out = x − x[0] (depends on the row position), declared row independent (falsely)."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x - x[:1]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = dout.copy()
        dx[0] -= dout.sum(0)
        return dx


def _mlp_around(mid: Any, rng: np.random.Generator, trusted: bool = False) -> Network:
    x = rng.standard_normal((8, 4))
    layers = [make_layer("linear", (4,), rng, out=5), mid, make_layer("tanh", (5,))]
    layers.append(make_layer("linear", (5,), rng, out=3))
    return Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 8),
        trusted=[True, trusted, True, True],
    )  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
def test_false_row_independence_declaration_correct_passes_wrong_fails(seed: int) -> None:
    rng = np.random.default_rng(seed)
    good = check_network(_mlp_around(BatchNormDeclared(5, rng), np.random.default_rng(seed)))
    bad = check_network(_mlp_around(BatchNormDeclared(5, rng, bug=True), rng))
    assert good.passed, [(p.name, p.verdict) for p in good.params]
    assert not bad.passed
    assert any("layer 1 (BatchNormDeclared) declares row_independent" in n for n in good.notes)


@pytest.mark.parametrize("mid", [BatchNormDeclared, MinusFirstRow])
def test_falsely_declared_layers_fall_back_to_the_loop(mid: type) -> None:
    rng = np.random.default_rng(0)
    layer = mid(5, rng) if mid is BatchNormDeclared else mid()
    net = _mlp_around(layer, rng)
    assert x_is_checked(net)
    assert any("declares row_independent = True" in f for f in net.findings)


def x_is_checked(net: Network) -> bool:
    assert net.x is not None
    assert_engine_matches_loop(net, net.x, chunk_bytes=3000)
    return True


@pytest.mark.parametrize("rows", [1, 4])
def test_one_distinct_row_is_not_stacked_through_a_user_layer(rows: int) -> None:
    """One row (or N equal rows): a batch norm's output is β whatever x, so [x; x'] cannot
    expose it, yet stacked ±ε copies would mix (statistics over the copies): run once per copy."""
    rng = np.random.default_rng(0)
    x = np.repeat(rng.standard_normal((1, 4)), rows, axis=0)
    layers = [make_layer("linear", (4,), rng, out=5), BatchNormDeclared(5, rng)]
    net = Network(layers, WeightedSum(rng.standard_normal((rows, 5))), x=x, trusted=[True, False])
    pert = Perturber(net, x)
    assert not pert.stackable(1) and pert.stackable(0)
    assert_engine_matches_loop(net, x)


def test_honest_row_independent_plugin_is_still_stacked() -> None:
    """A true declaration passes the probe: the fast path stays on, and nothing is noted."""

    class Scale:
        row_independent = True

        def __init__(self) -> None:
            self.params = {"s": np.linspace(0.5, 1.5, 5)}
            self.grads: dict[str, np.ndarray] = {}

        def forward(self, x: np.ndarray) -> np.ndarray:
            return x * self.params["s"]

        def backward(self, dout: np.ndarray) -> np.ndarray:
            return dout * self.params["s"]

    net = _mlp_around(Scale(), np.random.default_rng(1))
    assert net.x is not None
    pert = Perturber(net, net.x)
    assert pert.stackable(1) and pert.stackable(3) and not net.findings


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_builtin_row_independence_declaration_passes_the_probe(name: str) -> None:
    """No false alarm on a built-in: a layer that says it is row independent is stacked."""
    rng = np.random.default_rng(8)
    layer, shape = _build(name, rng)
    x = rng.standard_normal((5, *shape))
    out = layer.forward(x.copy())
    net = Network([layer], WeightedSum(rng.standard_normal(out.shape)), x=x, trusted=[True])
    pert = Perturber(net, x)
    assert pert.stackable(0) == (getattr(layer, "row_independent", False) is True)
    assert not net.findings


def test_the_probe_compares_rows_that_differ() -> None:
    """Rows 0 and 1 equal (a duplicated sample): the probe still changes the batch statistics."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4))
    x[1] = x[0]
    layers = [BatchNormDeclared(4, rng), make_layer("tanh", (4,))]
    net = Network(layers, WeightedSum(rng.standard_normal((6, 4))), x=x, trusted=[False, True])
    assert not Perturber(net, x).stackable(0)
    assert_engine_matches_loop(net, x)


def test_user_subclasses_of_layer_do_not_inherit_row_independence() -> None:
    from gradcheck_cli.layers.linear import Linear

    class OnBase(Layer):
        pass

    class OnBuiltin(Linear):
        pass

    class Declares(Layer):
        row_independent = True

    class FromDeclares(Declares):
        pass

    assert not OnBase.row_independent and not OnBuiltin.row_independent
    assert Declares.row_independent and FromDeclares.row_independent
    assert Linear.row_independent and Layer.row_independent  # built-ins keep theirs


def test_batchnorm_on_gradchecks_layer_base_is_checked_correctly() -> None:
    """The C3 pattern: a buggy batch norm written on gradcheck's own Layer (no declaration)."""

    class MyBN(Layer):
        def __init__(self, d: int, bug: bool) -> None:
            super().__init__()
            self.inner = BatchNormDeclared(d, np.random.default_rng(0), bug)
            self.params = self.inner.params

        def forward(self, x: np.ndarray) -> np.ndarray:
            return self.inner.forward(x)

        def backward(self, dout: np.ndarray) -> np.ndarray:
            dx = self.inner.backward(dout)
            self.grads = self.inner.grads
            return dx

    x = np.random.default_rng(2).standard_normal((8, 5))
    assert check_layer(MyBN(5, bug=False), x).passed
    assert not check_layer(MyBN(5, bug=True), x).passed


# -- memory layout, aliasing, re-bound parameters ------------------------------------------------
class Dense:
    """out = x.reshape(N, −1)·W + b for any rank, declared row independent; ``bug`` scales dx."""

    row_independent = True

    def __init__(self, in_shape: tuple[int, ...], out: int, bug: float = 0.0) -> None:
        rng = np.random.default_rng(1)
        d = int(np.prod(in_shape))
        self.params = {"W": rng.standard_normal((d, out)) / np.sqrt(d), "b": np.zeros(out)}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x.reshape(len(x), -1) @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x2 = self.x.reshape(len(self.x), -1)
        self.grads = {"W": x2.T @ dout, "b": dout.sum(0)}
        return (1 + self.bug) * (dout @ self.params["W"].T).reshape(self.x.shape)


class ChannelsLast:
    """out = x.transpose(0, 2, 3, 1): a non-contiguous view; correct."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.transpose(0, 2, 3, 1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("layout", ["fortran", "transposed-view"])
@pytest.mark.parametrize("bug", [0.0, 1e-3])
def test_non_contiguous_inputs_keep_their_perturbations(layout: str, bug: float) -> None:
    base = np.random.default_rng(0).standard_normal((3, 3, 3, 2))
    x = np.asfortranarray(base) if layout == "fortran" else base.transpose(0, 3, 1, 2)
    res = check_layer(Dense(x.shape[1:], 3, bug), x)
    assert res.passed == (bug == 0.0), [(p.name, p.verdict, p.rel_error) for p in res.params]


def test_a_layer_returning_a_transposed_view_equals_the_loop() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 3, 3))
    layers = [ChannelsLast(), Dense((3, 3, 2), 3)]
    net = Network(layers, WeightedSum(rng.standard_normal((2, 3))), x=x)
    assert_engine_matches_loop(net, x)
    assert check_network(net).passed


class PreallocDense:
    """Writes its output into one reused buffer (np.matmul(..., out=...)); ``bug`` scales dW."""

    def __init__(self, d: int, out: int, bug: float = 0.0) -> None:
        self.params = {"W": np.random.default_rng(3).standard_normal((d, out))}
        self.grads: dict[str, np.ndarray] = {}
        self.buf: np.ndarray | None = None
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        shape = (len(x), self.params["W"].shape[1])
        if self.buf is None or self.buf.shape != shape:
            self.buf = np.empty(shape)
        np.matmul(x, self.params["W"], out=self.buf)
        return self.buf

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": (1 + self.bug) * self.x.T @ dout}
        return dout @ self.params["W"].T


class ParamView:
    """out = broadcast(b): a read-only view of its own parameter; ``bug`` scales db."""

    def __init__(self, d: int, bug: float = 0.0) -> None:
        self.params = {"b": np.random.default_rng(5).standard_normal(d)}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return np.broadcast_to(self.params["b"], x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"b": (1 + self.bug) * dout.sum(0)}
        return np.zeros(self.shape)


def _aliasing_net(first: Any) -> Network:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3))
    layers = [first, make_layer("tanh", (3,)), make_layer("linear", (3,), rng, out=2)]
    return Network(
        layers, WeightedSum(rng.standard_normal((4, 2))), x=x, trusted=[False, True, True]
    )


@pytest.mark.parametrize(
    "make", [lambda bug: PreallocDense(3, 3, bug), lambda bug: ParamView(3, bug)]
)
def test_aliased_outputs_correct_passes_wrong_fails(make: Any) -> None:
    net = _aliasing_net(make(0.0))
    assert net.x is not None
    assert_engine_matches_loop(net, net.x)
    assert check_network(net).passed
    assert not check_network(_aliasing_net(make(1e-3))).passed


class Rebinds:
    """forward re-binds params['W'] (params['W'] = params['W'].astype(float64)); ``bug`` scales dW."""

    def __init__(self, bug: float = 0.0) -> None:
        self.params = {"W": np.random.default_rng(1).standard_normal((3, 3))}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.params["W"] = self.params["W"].astype(np.float64)
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": (1 + self.bug) * self.x.T @ dout}
        return dout @ self.params["W"].T


@pytest.mark.parametrize("batched", [True, False])
def test_rebound_parameters_are_restored_and_named(batched: bool) -> None:
    layer = Rebinds()
    before = layer.params["W"].copy()
    x = np.random.default_rng(0).standard_normal((4, 3))
    net = Network([layer], WeightedSum(np.random.default_rng(2).standard_normal((4, 3))), x=x)
    pert = Perturber(net, x, batched=batched)
    ref = net.parameters()[1]
    f, h = pert.losses(ref, np.arange(9), np.array([1e-5, -1e-5]))
    net.loss_value(x)
    net.backward()
    np.testing.assert_allclose((f[:, 0] - f[:, 1]) / (h[:, 0] - h[:, 1]), layer.grads["W"].ravel())
    assert layer.params["W"].tobytes() == before.tobytes()
    assert any("replaces params['W']" in n for n in net.findings)


def test_rebound_parameters_correct_passes_wrong_fails() -> None:
    x = np.random.default_rng(0).standard_normal((4, 3))
    good, bad = Rebinds(), Rebinds(bug=1e-3)
    before = good.params["W"].copy()
    res = check_layer(good, x)
    assert res.passed and any("replaces params['W']" in n for n in res.notes)
    assert good.params["W"].tobytes() == before.tobytes()
    assert not check_layer(bad, x).passed


# -- complex step ---------------------------------------------------------------------------------
class Softsign:
    """x / (1 + |x|): not complex-analytic (np.abs of a complex number is real)."""

    row_independent = True

    def __init__(self, declared: bool = False) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        if declared:
            self.complex_safe = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x / (1 + np.abs(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout / (1 + np.abs(self.x)) ** 2


class VarNorm:
    """(x − mean)/sqrt(var + ε) with np.var (|·|² of complex values); correct."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.std = np.sqrt(x.var(axis=0) + 1e-5)
        self.xhat = (x - x.mean(axis=0)) / self.std
        return self.xhat

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n = len(dout)
        return (n * dout - dout.sum(0) - self.xhat * (dout * self.xhat).sum(0)) / (n * self.std)


class ComplexTanh:
    """tanh written plainly (complex-analytic); ``bug`` scales dx."""

    def __init__(self, bug: float = 0.0) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return (1 + self.bug) * dout * (1 - self.y**2)


def _complex_net(mid: Any) -> Network:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 4))
    layers = [make_layer("linear", (4,), rng, out=5), mid, make_layer("linear", (5,), rng, out=3)]
    return Network(
        layers,
        SoftmaxCrossEntropy(),
        x=x,
        target=rng.integers(0, 3, 6),
        trusted=[True, False, True],
    )


@pytest.mark.parametrize(
    "mid, needle",
    [
        (Softsign(), "layer 1 (Softsign) is not complex-analytic"),
        (Softsign(declared=True), "layer 1 (Softsign) declares complex_safe = False"),
        (VarNorm(), "layer 1 (VarNorm) is not complex-analytic"),
    ],
)
def test_complex_step_refuses_layers_that_cannot_carry_it(mid: Any, needle: str) -> None:
    with pytest.raises(PluginError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_network(_complex_net(mid), method="complex")


class NaiveL1:
    """mean |pred − y| with np.abs (real for complex input: not complex-analytic); correct."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> Any:
        self.r = pred - target
        return np.abs(self.r).mean()

    def backward(self) -> np.ndarray:
        return np.sign(self.r) / self.r.size


def test_complex_step_refuses_a_loss_that_cannot_carry_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    net = Network(
        [make_layer("linear", (3,), rng, out=2)], NaiveL1(), loss_label="p.py:NaiveL1", x=x,
        target=rng.standard_normal((4, 2)), trusted=[True],
    )  # fmt: skip
    with pytest.raises(PluginError, match=r"the loss \(p.py:NaiveL1\) drops the imaginary"):
        check_network(net, method="complex")
    assert check_network(net).passed


def test_complex_step_still_judges_analytic_plugins() -> None:
    assert check_network(_complex_net(ComplexTanh()), method="complex").passed
    assert not check_network(_complex_net(ComplexTanh(bug=1e-6)), method="complex").passed


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_builtin_layer_passes_the_complex_probe(name: str) -> None:
    rng = np.random.default_rng(7)
    layer, shape = _build(name, rng)
    x = rng.standard_normal((3, *shape))
    out = layer.forward(x.copy())
    net = Network([layer], WeightedSum(rng.standard_normal(out.shape)), x=x, trusted=[True])
    complex_safety(Perturber(net, x), 0)  # raises if the probe misjudges a built-in


# -- a wrong-shaped dx in a later layer (R1) -------------------------------------------------------
PLUGIN = '''
import numpy as np

class DenseDxFlat:
    """out = x.reshape(N, -1) @ W; backward returns dx as (N, D) instead of x's shape."""
    row_independent = True

    def __init__(self, input_shape, rng, out):
        d = int(np.prod(input_shape))
        self.params = {"W": rng.standard_normal((d, out)) / np.sqrt(d)}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x.reshape(len(x), -1) @ self.params["W"]

    def backward(self, dout):
        self.grads = {"W": self.x.reshape(len(self.x), -1).T @ dout}
        return dout @ self.params["W"].T
'''


def test_wrong_shaped_dx_in_a_later_layer_is_exit_1_naming_its_backward(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(PLUGIN, encoding="utf-8")
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [4, 2, 3]}\nlayers:\n  - tanh\n  - sigmoid\n"
        "  - {type: 'p.py:DenseDxFlat', out: 2}\n"
        "loss: {type: softmax_cross_entropy}\ntarget: {kind: classes, classes: 2}\n",
        encoding="utf-8",
    )
    r = CliRunner().invoke(app, ["run", str(cfg)], env={"COLUMNS": "400"})
    flat = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert "layer 2 (p.py:DenseDxFlat).backward returned dx of shape (4, 6)" in flat
    assert "WeightedSum" not in flat and "Traceback" not in flat


# -- float32 --------------------------------------------------------------------------------------
class RowSum:
    """out = x·w + b in float32; db = Σ_rows dout (a reduction over the batch); correct."""

    row_independent = True

    def __init__(self, d: int, nonlinear: bool = False) -> None:
        rng = np.random.default_rng(0)
        self.params = {
            "w": rng.standard_normal(d).astype(np.float32),
            "b": np.zeros(d, np.float32),
        }
        self.grads: dict[str, np.ndarray] = {}
        self.nonlinear = nonlinear

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        db = dout.sum(0) + (np.float32(1e-3) if self.nonlinear else 0)
        self.grads = {"w": (dout * self.x).sum(0), "b": db}
        return dout * self.params["w"]


class FortranDx:
    """out = x·s; backward returns a Fortran-ordered dx (as a transposed product would); correct."""

    row_independent = True

    def __init__(self, d: int) -> None:
        self.params = {"s": np.linspace(0.5, 1.5, d).astype(np.float32)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["s"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"s": (dout * self.x).sum(0)}
        return np.asfortranarray(dout * self.params["s"])


@pytest.mark.parametrize("nonlinear", [False, True])
def test_float32_linearity_check_compares_like_with_like(nonlinear: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((257, 64)).astype(np.float32)
    g = rng.standard_normal((257, 64)).astype(np.float32)
    net = Network([RowSum(64, nonlinear), FortranDx(64)], WeightedSum(g), x=x)
    problems = check_network(net).problems
    assert bool(problems) == nonlinear, problems
    if nonlinear:
        assert "layer 0 (RowSum): backward is not linear in dout" in problems[0]


class Saturated:
    """out = tanh(x·W) in float32 with x, W > 0 (every unit saturated); reads its params."""

    def __init__(self, keeps_own: bool = False) -> None:
        self.params = {"W": np.full((3, 2), 40.0, np.float32)}
        self.own = self.params["W"]
        self.keeps_own = keeps_own
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.y = np.tanh(x @ (self.own if self.keeps_own else self.params["W"]))
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = dout * (1 - self.y**2)
        self.grads = {"W": self.x.T @ d}
        return d @ self.params["W"].T


@pytest.mark.parametrize("keeps_own", [False, True])
def test_a_saturated_float32_plugin_is_not_said_to_keep_its_own_reference(keeps_own: bool) -> None:
    x = np.random.default_rng(0).uniform(1, 2, (4, 3)).astype(np.float32)
    res = check_layer(Saturated(keeps_own), x)
    said = any("keeps its own reference" in n for n in res.notes)
    assert said == keeps_own, res.notes
    assert res.reference == ("float32" if keeps_own else "float64")


class Downcasts:
    """tanh(x·W/3e4) returned as float32 whatever the input (numerics stay float32); inputs
    ~1e4, where the float32 spacing is ~1e-3; ``bug`` scales dx."""

    def __init__(self, bug: float = 0.0) -> None:
        self.params = {"W": np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x.astype(np.float32)
        self.y = np.tanh(self.x @ self.params["W"] / 3e4).astype(np.float32)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = (dout * (1 - self.y**2) / 3e4).astype(np.float32)
        self.grads = {"W": self.x.T @ d}
        return (1 + self.bug) * d @ self.params["W"].T


@pytest.mark.parametrize("seed", range(4))
def test_float32_fallback_steps_respect_the_spacing_of_large_values(seed: int) -> None:
    """A fixed step of 1e-3 moves a float32 entry of 3e4 by nothing (NaN numerics, a false
    failure) and one of 1e4 by one unit in the last place; a relative step resolves both."""
    rng = np.random.default_rng(seed)
    x = (1e4 * rng.standard_normal((6, 4))).astype(np.float32)
    x[0, 0] = 3e4
    res = check_layer(Downcasts(), x, seed=seed)
    assert res.reference == "float32"
    dx = next(p for p in res.params if p.name == "input")
    assert dx.verdict != "fail" and dx.rel_error < 1e-2, (dx.verdict, dx.rel_error)
    assert any("the step is ε·|θ|" in n for n in res.notes)  # the report says what was done


# -- softmax cross-entropy with any target rows ---------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_cross_entropy_is_correct_for_any_target_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4))
    target = rng.standard_normal((5, 3))  # rows that do not sum to 1 (some negative)
    net = Network(
        [make_layer("linear", (4,), rng, out=3)], SoftmaxCrossEntropy(), x=x, target=target
    )
    assert check_network(net).passed
    loss = SoftmaxCrossEntropy()
    loss.forward(x[:, :3], target)
    p = np.exp(x[:, :3]) / np.exp(x[:, :3]).sum(1, keepdims=True)
    assert not np.allclose(loss.backward(), (p - target) / 5)  # the old formula is wrong here


def test_softmax_cross_entropy_default_values_target_is_a_distribution() -> None:
    rows = SoftmaxCrossEntropy.random_target(np.random.default_rng(0), (7, 4))
    assert np.all(rows > 0)
    np.testing.assert_allclose(rows.sum(1), 1.0)


class RebindsAll:
    """Many arrays (W and 40 scalars g_i, out = x @ W · Σg/40), every one re-bound by each
    forward; while one array is perturbed the engine checks only that one after each call and
    the rest when the tensor is done (network.focused)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.params = {"W": rng.standard_normal((3, 3))}
        self.params.update({f"g{i}": np.array([1.0 + 0.01 * i]) for i in range(40)})
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        for k in self.params:
            self.params[k] = self.params[k].astype(np.float64)
        self.x, self.s = x, sum(float(self.params[f"g{i}"][0]) for i in range(40)) / 40
        return x @ self.params["W"] * self.s

    def backward(self, dout: np.ndarray) -> np.ndarray:
        xw = self.x @ self.params["W"]
        g = float((dout * xw).sum()) / 40
        self.grads = {"W": self.s * self.x.T @ dout, **{f"g{i}": np.array([g]) for i in range(40)}}
        return self.s * dout @ self.params["W"].T


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_every_rebound_array_is_put_back_while_another_is_perturbed(mode: str) -> None:
    layer = RebindsAll()
    originals = dict(layer.params)
    before = {k: v.tobytes() for k, v in originals.items()}
    x = np.random.default_rng(0).standard_normal((4, 3))
    res = check_layer(layer, x, mode=mode)
    assert res.passed, [(p.name, p.rel_error) for p in res.failures]
    assert len(res.params) == 42
    assert all(layer.params[k] is originals[k] for k in originals)  # the caller's arrays, back
    assert {k: v.tobytes() for k, v in layer.params.items()} == before
    assert any("replaces params[" in n for n in res.notes)

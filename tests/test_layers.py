"""Every built-in layer and loss agrees with central differences; the math matches the reference."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy

LAYER_CASES = [
    ("linear", {"out": 4}),
    ("linear", {"out": 1}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"slope": 0.3}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softmax", {}),
]
SHAPES = [(1, 3), (4, 5), (7, 2)]


@pytest.mark.parametrize(("name", "kwargs"), LAYER_CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", range(5))
def test_builtin_layer_passes(name: str, kwargs: dict, shape: tuple, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    result = check_layer(layer, rng.standard_normal(shape), seed=seed)
    assert result.passed, [(p.name, p.rel_error, p.worst[:1], p.reason) for p in result.failures]


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, MSE])
@pytest.mark.parametrize("seed", range(10))
def test_builtin_loss_passes(loss_cls: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal((5, 4))
    if loss_cls is SoftmaxCrossEntropy:
        target = rng.integers(0, 4, size=5) if seed % 2 else rng.dirichlet(np.ones(4), size=5)
    else:
        target = rng.standard_normal((5, 4))
    net = Network([make_layer("linear", (4,), rng, out=4)], loss_cls(), x=pred, target=target)
    result = check_network(net)
    assert result.passed, [(p.name, p.rel_error, p.worst[:1]) for p in result.failures]


def test_softmax_cross_entropy_gradient_is_p_minus_y() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, size=6)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, labels)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.eye(4)[labels]
    np.testing.assert_allclose(loss.backward(), (p - y) / 6, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(value, -np.log(p[np.arange(6), labels]).mean(), rtol=1e-13)


def test_linear_matches_reference_formulas() -> None:
    rng = np.random.default_rng(0)
    layer = make_layer("linear", (3,), rng, out=2)
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    out = layer.forward(x)
    np.testing.assert_allclose(out, x @ layer.params["W"] + layer.params["b"])
    dx = layer.backward(g)
    np.testing.assert_allclose(layer.grads["W"], x.T @ g)
    np.testing.assert_allclose(layer.grads["b"], g.sum(axis=0))
    np.testing.assert_allclose(dx, g @ layer.params["W"].T)


def test_sigmoid_does_not_overflow() -> None:
    layer = make_layer("sigmoid", (3,))
    with np.errstate(over="raise", invalid="raise"):
        out = layer.forward(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])


def test_check_restores_parameters_and_input_bit_exactly() -> None:
    rng = np.random.default_rng(1)
    layer = make_layer("linear", (3,), rng, out=2)
    before = {k: v.copy() for k, v in layer.params.items()}
    x = rng.standard_normal((4, 3))
    x_before = x.copy()
    check_layer(layer, x)
    for k, v in layer.params.items():
        assert v.tobytes() == before[k].tobytes()
    assert x.tobytes() == x_before.tobytes()

"""Issue 6 layers and losses: each passes the checker across seeds and shapes, matches an
independent reference forward, is complex-step safe, and its deliberately wrong twin is caught."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli import build_network, check_layer, check_network, load_config, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.methods import estimate
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Layer
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.layers.registry import LAYERS, LOSSES
from gradcheck_cli.spec.config import parse_config

from . import buggy_layers_more as bug
from .conftest import CONFIGS
from .test_layers import LAYER_CASES as SEED_LAYER_CASES

BUGGY = Path(bug.__file__)
runner = CliRunner()


def gc(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "240"})


# name → [(layer arguments, input shape with batch axis)]
CASES: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {
    "flatten": [({}, (3, 2, 3, 2)), ({}, (4, 5))],
    "gelu": [({}, (4, 5)), ({"approximate": "tanh"}, (4, 5)), ({}, (2, 3, 4))],
    "elu": [({}, (4, 5)), ({"alpha": 0.5}, (3, 2, 4))],
    "softplus": [({}, (4, 5))],
    "silu": [({}, (4, 5))],
    "log_softmax": [({}, (4, 5)), ({}, (1, 3))],
    "layernorm": [({}, (4, 5)), ({}, (3, 2, 3, 3)), ({"eps": 1e-3}, (1, 6))],
    "batchnorm": [({}, (6, 4)), ({}, (3, 2, 3, 3)), ({"eps": 1e-3}, (2, 5))],
    "dropout": [({}, (4, 5)), ({"p": 0.2}, (2, 3, 4, 4))],
    "conv2d": [
        ({"out_channels": 4, "kernel": 3}, (2, 3, 6, 6)),
        ({"out_channels": 2, "kernel": [3, 2], "stride": 2, "padding": 1}, (2, 3, 7, 6)),
        ({"out_channels": 3, "kernel": 1}, (1, 2, 3, 3)),
    ],
    "maxpool2d": [
        ({"kernel": 2}, (2, 3, 6, 6)),
        ({"kernel": 3, "stride": 2}, (2, 2, 7, 7)),
        ({"kernel": [2, 3], "stride": 1}, (1, 2, 4, 5)),
    ],
    "avgpool2d": [
        ({"kernel": 2}, (2, 3, 6, 6)),
        ({"kernel": 3, "stride": 1}, (2, 2, 5, 5)),
        ({"kernel": [1, 2], "stride": [1, 2]}, (1, 1, 3, 4)),
    ],
    "embedding": [({"vocab": 7, "dim": 3}, (4, 5)), ({"vocab": 3, "dim": 2}, (2, 3, 2))],
    "residual": [
        ({"layers": [{"type": "linear", "out": 6}, "tanh", {"type": "linear", "out": 5}]}, (4, 5)),
        ({"layers": ["layernorm", "elu", {"type": "linear", "out": 4}]}, (6, 4)),
        (
            {"layers": [{"type": "conv2d", "out_channels": 2, "kernel": 3, "padding": 1}, "silu"]},
            (2, 2, 4, 4),
        ),
    ],
}
FLAT_CASES = [(n, kw, s) for n, cases in CASES.items() for kw, s in cases]
CASE_IDS = [f"{n}-{i}" for n, cases in CASES.items() for i in range(len(cases))]
LOSS_CASES: dict[str, list[dict[str, Any]]] = {
    "bce_with_logits": [{}],
    "huber": [{}, {"delta": 0.5}, {"delta": 2.0}],
    "l1": [{}],
    "nll": [{}],
}
FLAT_LOSS_CASES = [(n, kw) for n, cases in LOSS_CASES.items() for kw in cases]


def layer_input(name: str, kwargs: dict[str, Any], shape: tuple[int, ...], rng) -> np.ndarray:
    if name == "embedding":
        return rng.integers(0, kwargs["vocab"], size=shape)
    return rng.standard_normal(shape)


def failing(result) -> set[str]:
    """Failing tensors, plus network-level problems by their first words."""
    problems = {"problem: " + p.split(":")[0] for p in result.problems}
    return {p.name for p in result.failures} | problems


def explain(result) -> list:
    return [(p.name, p.rel_error, p.worst[:1], p.reason) for p in result.failures]


# -- every registered layer and loss is covered ------------------------------------------------


def test_every_registered_layer_and_loss_has_test_cases() -> None:
    from .test_sequence_layers import SEQ_CASES  # issue 15 layers are tested there

    covered = {name for name, _ in SEED_LAYER_CASES} | set(CASES) | set(SEQ_CASES)
    assert set(LAYERS) <= covered, f"layers without test cases: {set(LAYERS) - covered}"
    covered_losses = {"softmax_cross_entropy", "mse", "sequence_cross_entropy"} | set(LOSS_CASES)
    assert set(LOSSES) <= covered_losses, f"untested losses: {set(LOSSES) - covered_losses}"


@pytest.mark.parametrize("name", sorted(set(CASES) | set(LOSS_CASES)))
def test_formulas_are_shown(name: str) -> None:
    cls = LAYERS.get(name) or LOSSES[name]
    assert cls.forward_formula and cls.backward_formula
    assert cls.__doc__ and cls.__doc__.strip()


# -- the checker agrees with every correct layer and loss --------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "shape"), FLAT_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("seed", range(3))
def test_layer_passes(name: str, kwargs: dict, shape: tuple, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    result = check_layer(layer, layer_input(name, kwargs, shape, rng), seed=seed, label=name)
    assert result.passed, explain(result)
    expected = {"input"} if name != "embedding" else set()
    expected |= {f"0.{name}.{k}" for k in layer.params}
    assert {p.name for p in result.params} == expected
    assert all(p.checked == math.prod(p.shape) for p in result.params)


def loss_network(name: str, kwargs: dict, seed: int) -> Network:
    """linear (→ log_softmax for nll) → loss, with targets of the kind the loss takes."""
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    layers = [make_layer("linear", (3,), rng, out=c)]
    if name == "nll":
        layers.append(make_layer("log_softmax", (c,)))
    target = {
        "bce_with_logits": rng.random((n, c)) if seed % 2 else rng.integers(0, c, size=n),
        "huber": 2 * rng.standard_normal((n, c)),
        "l1": rng.standard_normal((n, c)),
        "nll": rng.integers(0, c, size=n),
        "mse": rng.standard_normal((n, c)),
        "softmax_cross_entropy": rng.integers(0, c, size=n),
    }[name]
    x = rng.standard_normal((n, 3))
    labels = ["linear", "log_softmax"][: len(layers)]
    return Network(layers, LOSSES[name](**kwargs), labels=labels, x=x, target=target)


@pytest.mark.parametrize(("name", "kwargs"), FLAT_LOSS_CASES)
@pytest.mark.parametrize("seed", range(4))
def test_loss_passes(name: str, kwargs: dict, seed: int) -> None:
    net = loss_network(name, kwargs, seed)
    result = check_network(net)
    assert result.passed, explain(result)
    if name == "huber":  # both branches were exercised
        assert net.loss.inner.any() and (~net.loss.inner).any()


# -- forward passes against independent (loop / textbook) references ----------------------------


def test_conv2d_matches_a_loop_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    layer = make_layer("conv2d", (3, 7, 6), rng, out_channels=2, kernel=[3, 2], stride=2, padding=1)
    W, b = layer.params["W"], layer.params["b"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = (7 + 2 - 3) // 2 + 1, (6 + 2 - 2) // 2 + 1
    ref = np.zeros((2, 2, ho, wo))
    for n in range(2):
        for f in range(2):
            for h in range(ho):
                for w in range(wo):
                    ref[n, f, h, w] = (xp[n, :, 2 * h : 2 * h + 3, 2 * w : 2 * w + 2] * W[f]).sum()
    np.testing.assert_allclose(layer.forward(x), ref + b[None, :, None, None], rtol=1e-12)


@pytest.mark.parametrize(("name", "op"), [("maxpool2d", np.max), ("avgpool2d", np.mean)])
def test_pooling_matches_a_loop_reference(name: str, op) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 7))
    layer = make_layer(name, (3, 7, 7), kernel=3, stride=2)
    ref = np.array(
        [
            [
                [
                    [op(x[n, c, 2 * h : 2 * h + 3, 2 * w : 2 * w + 3]) for w in range(3)]
                    for h in range(3)
                ]
                for c in range(3)
            ]
            for n in range(2)
        ]
    )
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-13)


def test_norm_layers_match_the_textbook_formulas() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4))
    bn = make_layer("batchnorm", (4,), rng)
    ref = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * bn.params["gamma"] + bn.params["beta"]
    np.testing.assert_allclose(bn.forward(x), ref, rtol=1e-12)
    x4 = rng.standard_normal((3, 2, 3, 3))
    bn4 = make_layer("batchnorm", (2, 3, 3), rng)
    mu, var = x4.mean((0, 2, 3), keepdims=True), x4.var((0, 2, 3), keepdims=True)
    g, b = bn4.params["gamma"][None, :, None, None], bn4.params["beta"][None, :, None, None]
    np.testing.assert_allclose(bn4.forward(x4), (x4 - mu) / np.sqrt(var + 1e-5) * g + b, rtol=1e-12)
    ln = make_layer("layernorm", (2, 3, 3), rng)
    mu, var = x4.mean((1, 2, 3), keepdims=True), x4.var((1, 2, 3), keepdims=True)
    ref = (x4 - mu) / np.sqrt(var + 1e-5) * ln.params["gamma"] + ln.params["beta"]
    np.testing.assert_allclose(ln.forward(x4), ref, rtol=1e-12)
    assert ln.params["gamma"].shape == (2, 3, 3) and bn4.params["gamma"].shape == (2,)


def test_activations_match_their_definitions() -> None:
    x = np.linspace(-6, 6, 49).reshape(7, 7)
    erf = np.vectorize(math.erf)
    gelu = make_layer("gelu", (7,)).forward(x)
    np.testing.assert_allclose(gelu, x * 0.5 * (1 + erf(x / math.sqrt(2))), rtol=1e-14, atol=1e-300)
    tanh = make_layer("gelu", (7,), approximate="tanh").forward(x)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    np.testing.assert_allclose(tanh, 0.5 * x * (1 + np.tanh(u)), rtol=1e-14)
    assert 1e-5 < np.abs(tanh - gelu).max() < 1e-2  # the approximation is not the exact function
    np.testing.assert_allclose(
        make_layer("elu", (7,), alpha=0.7).forward(x), np.where(x > 0, x, 0.7 * (np.exp(x) - 1))
    )
    np.testing.assert_allclose(make_layer("softplus", (7,)).forward(x), np.log(1 + np.exp(x)))
    np.testing.assert_allclose(make_layer("silu", (7,)).forward(x), x / (1 + np.exp(-x)))
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(make_layer("log_softmax", (7,)).forward(x), np.log(p), rtol=1e-13)


def test_smooth_activations_do_not_overflow() -> None:
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):
        for name in ("softplus", "silu", "elu", "log_softmax"):
            layer = make_layer(name, (5,))
            assert np.all(np.isfinite(layer.forward(x))), name
            assert np.all(np.isfinite(layer.backward(np.ones_like(x)))), name
    np.testing.assert_allclose(make_layer("softplus", (5,)).forward(x)[0, [0, 4]], [0.0, 1000.0])


def test_embedding_looks_up_rows_and_accumulates_repeated_ids() -> None:
    layer = make_layer("embedding", (3,), vocab=4, dim=2)
    ids = np.array([[1, 1, 3], [0, 1, 3]])
    np.testing.assert_array_equal(layer.forward(ids), layer.params["W"][ids])
    dx = layer.backward(np.ones((2, 3, 2)))
    np.testing.assert_array_equal(layer.grads["W"], [[1, 1], [3, 3], [0, 0], [2, 2]])
    assert dx.shape == ids.shape and not dx.any()


def test_flatten_and_residual_forward() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    assert make_layer("flatten", (3, 4)).forward(x).tolist() == x.reshape(2, 12).tolist()
    rng = np.random.default_rng(3)
    block = make_layer("residual", (4,), rng, layers=[{"type": "linear", "out": 4}, "tanh"])
    x = rng.standard_normal((5, 4))
    lin = block.layers[0]
    np.testing.assert_allclose(
        block.forward(x), x + np.tanh(x @ lin.params["W"] + lin.params["b"]), rtol=1e-14
    )


# -- losses against the textbook formulas ------------------------------------------------------


def test_losses_match_their_definitions() -> None:
    rng = np.random.default_rng(4)
    z, y = rng.standard_normal((5, 3)), rng.random((5, 3))
    s = 1 / (1 + np.exp(-z))
    bce = L = LOSSES["bce_with_logits"]()
    np.testing.assert_allclose(bce.forward(z, y), -(y * np.log(s) + (1 - y) * np.log(1 - s)).mean())
    np.testing.assert_allclose(bce.backward(), (s - y) / 15)
    labels = np.array([0, 2, 1, 1, 0])
    np.testing.assert_allclose(bce.forward(z, labels), L.forward(z, np.eye(3)[labels]))
    r = 3 * rng.standard_normal((4, 4))
    hub = LOSSES["huber"](delta=1.5)
    ref = np.where(np.abs(r) <= 1.5, 0.5 * r**2, 1.5 * (np.abs(r) - 0.75)).mean()
    np.testing.assert_allclose(hub.forward(r, np.zeros_like(r)), ref)
    np.testing.assert_allclose(LOSSES["l1"]().forward(r, 0 * r), np.abs(r).mean())
    logp = np.log(s / s.sum(1, keepdims=True))
    np.testing.assert_allclose(
        LOSSES["nll"]().forward(logp, labels), -logp[range(5), labels].mean()
    )


def test_bce_with_logits_is_stable_for_large_logits() -> None:
    z = np.array([[-1000.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):
        value = LOSSES["bce_with_logits"]().forward(z, np.array([[1.0, 0.0]]))
    assert value == pytest.approx(1000.0)


# -- complex-step safety, independently of the checker ------------------------------------------

H = 1e-20


def _close(lhs: complex, rhs: float, scale: float) -> bool:
    return abs(lhs - rhs) <= 1e-12 * max(scale, 1e-300)


ALL_CASES = FLAT_CASES + [(n, kw, (4, 5)) for n, kw in SEED_LAYER_CASES]
ALL_IDS = CASE_IDS + [f"{n}-seed{i}" for i, (n, _) in enumerate(SEED_LAYER_CASES)]


@pytest.mark.parametrize(("name", "kwargs", "shape"), ALL_CASES, ids=ALL_IDS)
def test_layer_is_complex_step_safe(name: str, kwargs: dict, shape: tuple) -> None:
    """Im(forward(θ + i·h·v))/h, contracted with g, equals Σ grad ⊙ v from backward(g)."""
    assert LAYERS[name].complex_safe, LAYERS[name].complex_note
    rng = np.random.default_rng(5)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    x = layer_input(name, kwargs, shape, rng)
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    checks: list[tuple[str, Any, np.ndarray]] = []
    if name != "embedding":
        v = rng.standard_normal(x.shape)
        checks.append(("input", layer.forward(x + 1j * H * v), (dx * v).sum()))
        np.testing.assert_allclose(checks[-1][1].real, out, rtol=1e-13, atol=1e-15)
    for key, p in list(layer.params.items()):
        v = rng.standard_normal(p.shape)
        layer.params[key] = p + 1j * H * v
        try:
            checks.append((key, layer.forward(x), (grads[key] * v).sum()))
        finally:
            layer.params[key] = p
    assert checks
    for what, out_c, expected in checks:
        assert np.iscomplexobj(out_c), f"{what}: forward dropped the imaginary part"
        im = out_c.imag / H
        lhs = (g * im).sum()
        assert _close(lhs, expected, np.abs(g * im).sum()), (what, lhs, expected)


@pytest.mark.parametrize(
    ("name", "kwargs"), [*FLAT_LOSS_CASES, ("mse", {}), ("softmax_cross_entropy", {})]
)
def test_loss_is_complex_step_safe(name: str, kwargs: dict) -> None:
    net = loss_network(name, kwargs, seed=1)
    loss = net.loss
    assert type(loss).complex_safe
    rng = np.random.default_rng(6)
    pred = net.forward(net.x)
    v = rng.standard_normal(pred.shape)
    value = loss.forward(pred, net.target)
    expected = (loss.backward() * v).sum()
    value_c = loss.forward(pred + 1j * H * v, net.target)
    assert np.real(value_c) == pytest.approx(value, rel=1e-14)
    lhs = np.imag(value_c) / H
    assert _close(lhs, expected, np.abs(loss.backward() * v).sum() + abs(expected)), (lhs, expected)


# -- deliberately wrong twins are caught, on the right tensor -----------------------------------

TWINS = [
    (bug.FlattenFortranOrder, {}, (3, 2, 3, 2), {"input"}),
    (bug.GELUExactMissingTerm, {}, (4, 5), {"input"}),
    (bug.GELUTanhWithExactDerivative, {}, (4, 5), {"input"}),
    (bug.ELUMissingAlpha, {"alpha": 0.5}, (4, 5), {"input"}),
    (bug.SoftplusWrongSign, {}, (4, 5), {"input"}),
    (bug.SiLUNoProductRule, {}, (4, 5), {"input"}),
    (bug.LogSoftmaxNoSum, {}, (4, 5), {"input"}),
    (bug.LayerNormMissingTerm, {}, (4, 5), {"input"}),
    (bug.BatchNormIgnoresMean, {}, (6, 4), {"input"}),
    (bug.BatchNormIgnoresMean, {}, (3, 2, 3, 3), {"input"}),
    (bug.BatchNormConstantStats, {}, (6, 4), {"input"}),
    (bug.DropoutNoScale, {"p": 0.3}, (4, 5), {"input"}),
    (bug.DropoutFreshMask, {}, (4, 5), {"problem: forward is not deterministic"}),
    (bug.Conv2dFlippedKernel, {"out_channels": 2, "kernel": 3}, (2, 3, 5, 5), {"0.conv.W"}),
    (
        bug.Conv2dIgnoresStrideInDx,
        {"out_channels": 2, "kernel": 3, "stride": 2, "padding": 1},
        (2, 2, 6, 6),
        {"input"},
    ),
    (bug.MaxPoolWrongElement, {"kernel": 2}, (2, 2, 4, 4), {"input"}),
    (bug.AvgPoolNoDivide, {"kernel": 2}, (2, 2, 4, 4), {"input"}),
    (bug.EmbeddingOverwrites, {"vocab": 3, "dim": 2}, (4, 5), {"0.embedding.W"}),
    (
        bug.ResidualNoSkip,
        {"layers": [{"type": "linear", "out": 4}, "tanh"]},
        (5, 4),
        {"input"},
    ),
]
LABELS = {bug.Conv2dFlippedKernel: "conv", bug.EmbeddingOverwrites: "embedding"}


@pytest.mark.parametrize(
    ("cls", "kwargs", "shape", "bad"),
    TWINS,
    ids=[f"{t[0].__name__}-{i}" for i, t in enumerate(TWINS)],
)
@pytest.mark.parametrize("seed", range(3))
def test_wrong_layer_is_caught(cls: type, kwargs: dict, shape: tuple, bad: set, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(f"{BUGGY}:{cls.__name__}", shape[1:], rng, **kwargs)
    name = "embedding" if issubclass(cls, bug.Embedding) else ""
    x = layer_input(name, kwargs, shape, rng)
    result = check_layer(layer, x, seed=seed, label=LABELS.get(cls, cls.__name__))
    assert failing(result) == bad, explain(result)


LOSS_TWINS = [
    ("bce_with_logits", bug.BCENoMean, {}),
    ("huber", bug.HuberUnclipped, {"delta": 0.5}),
    ("huber", bug.HuberWrongDelta, {"delta": 1.0}),
    ("l1", bug.L1NoMean, {}),
    ("nll", bug.NLLSignFlip, {}),
]


@pytest.mark.parametrize(
    ("name", "cls", "kwargs"), LOSS_TWINS, ids=[t[1].__name__ for t in LOSS_TWINS]
)
@pytest.mark.parametrize("seed", range(3))
def test_wrong_loss_is_caught(name: str, cls: type, kwargs: dict, seed: int) -> None:
    net = loss_network(name, kwargs, seed)
    net.loss = cls(**kwargs)
    result = check_network(net)
    assert {"input", "0.linear.W", "0.linear.b"} <= failing(result), explain(result)


# -- kinks and ties ----------------------------------------------------------------------------


def _one_sided(net: Network, x: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward one-sided slopes of L for every input entry."""
    pert = Perturber(net, x)
    ref = net.parameters()[0]
    f, h = pert.losses(ref, np.arange(x.size), np.array([eps, -eps]))
    return (f[:, 0] - pert.f0) / h[:, 0], (pert.f0 - f[:, 1]) / -h[:, 1]


def tied_maxpool_input() -> np.ndarray:
    """Every 2x2 window holds its maximum exactly twice (plus two smaller distinct entries)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 4, 4)) - 5.0
    top = rng.standard_normal((1, 2, 2, 2))
    x[:, :, 0::2, 0::2] = top  # first entry of each window
    x[:, :, 1::2, 1::2] = top  # last entry of each window: the same value → a tie
    return x


def test_maxpool_exact_ties_give_a_valid_subgradient() -> None:
    """At a tie the loss has a kink; the analytic gradient (all to the first maximum) lies
    between the one-sided slopes of every input entry, i.e. it is a valid subgradient."""
    x = tied_maxpool_input()
    layer = make_layer("maxpool2d", (2, 4, 4), kernel=2)
    g = np.random.default_rng(8).standard_normal((1, 2, 2, 2)) + 3.0  # positive upstream grads
    net = Network([layer], WeightedSum(g), x=x)
    net.loss_value(x)
    dx = net.backward()[0]
    assert isinstance(dx, np.ndarray)
    d_plus, d_minus = _one_sided(net, x)
    a = dx.reshape(-1)
    lo, hi = np.minimum(d_plus, d_minus), np.maximum(d_plus, d_minus)
    assert np.all((lo - 1e-8 <= a) & (a <= hi + 1e-8))
    # the kink is real: at each tied pair the one-sided slopes differ by the upstream gradient
    tied = (hi - lo) > 1e-3
    assert tied.sum() == 2 * g.size


def test_maxpool_exact_ties_pass_the_default_check() -> None:
    """Central differences at an exact tie see ½·dout at both tied entries; the one-sided slopes
    show the kink and the analytic value (all to the first maximum) is a valid subgradient."""
    x = tied_maxpool_input()
    result = check_layer(make_layer("maxpool2d", (2, 4, 4), kernel=2), x, seed=0)
    assert result.passed, explain(result)
    assert result.params[0].verdict == "kink" and result.params[0].kinks == 16
    assert not check_layer(make_layer("maxpool2d", (2, 4, 4), kernel=2), x, strict=True).passed


def test_maxpool_ties_below_the_maximum_and_relu_zeros_are_harmless() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 4, 4))
    x[:, :, 0::2, 1::2] = x[:, :, 1::2, 0::2] = -10.0  # tied, but never the maximum
    assert check_layer(make_layer("maxpool2d", (2, 4, 4), kernel=2), x).passed
    # conv → relu → maxpool: windows that are all zero after relu tie at 0 but have no gradient
    cfg = parse_config(
        {
            "input": {"shape": [2, 1, 6, 6]},
            "layers": [
                {"type": "conv2d", "out_channels": 3, "kernel": 3, "padding": 1},
                "relu",
                {"type": "maxpool2d", "kernel": 2},
            ],
        }
    )
    net = build_network(cfg)
    pooled_inputs = net.inputs[2]
    assert (pooled_inputs == 0).any()
    assert check_network(net).passed


def test_l1_at_zero_residual_passes() -> None:
    """|r| has a kink at r = 0; with sign(0) = 0 the analytic value equals the symmetric
    central difference there, so exact zeros do not produce false failures."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 3))
    target = x.copy()
    target[::2] += rng.standard_normal((2, 3))  # half the residuals are exactly zero
    net = Network([make_layer("flatten", (3,))], LOSSES["l1"](), x=x, target=target)
    result = check_network(net)
    assert result.passed, explain(result)
    net.loss_value(x)
    assert (net.loss.sign == 0).sum() == 6


def test_huber_at_exactly_delta_is_a_second_derivative_kink() -> None:
    """Huber is C¹ but not C² at |r| = δ: the central difference there is off by ε/4 per entry
    (O(ε), not O(ε²)). Measured so the report can state it; the analytic value is exact."""
    delta, eps = 1.0, 1e-5
    x = np.array([[0.3, delta, -delta, 2.5]])
    net = Network(
        [make_layer("flatten", (4,))], LOSSES["huber"](delta=delta), x=x, target=np.zeros_like(x)
    )
    pert = Perturber(net, x)
    numeric = estimate(pert, net.parameters()[0], np.arange(4), "central", eps, "float64").numeric
    n = x.size
    np.testing.assert_allclose(numeric[1:3] * n, [delta - eps / 4, -delta + eps / 4], rtol=1e-8)
    result = check_network(net, eps=eps)
    # the second look (smaller steps, extrapolation, one-sided slopes) settles both entries
    assert result.passed and result.params[0].refined == 2, explain(result)
    assert check_network(net, eps=1e-8).passed  # smaller ε: the O(ε) error drops below rtol


# -- row independence, dropout determinism, residual parameter sharing ----------------------------


def test_row_independence_flags() -> None:
    assert LAYERS["batchnorm"].row_independent is False
    # dropout draws its mask per input shape: stacked copies (C·N rows) would get another mask
    assert LAYERS["dropout"].row_independent is False
    for name in set(CASES) - {"batchnorm", "residual", "dropout"}:
        assert LAYERS[name].row_independent is True, name
    rng = np.random.default_rng(0)
    with_bn = make_layer("residual", (4,), rng, layers=["batchnorm", {"type": "linear", "out": 4}])
    without = make_layer("residual", (4,), rng, layers=["layernorm", {"type": "linear", "out": 4}])
    assert with_bn.row_independent is False and without.row_independent is True


def test_dropout_mask_is_drawn_once_and_scaled() -> None:
    x = np.ones((50, 40))
    layer = make_layer("dropout", (40,), np.random.default_rng(0), p=0.25)
    out = layer.forward(x)
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.03
    np.testing.assert_array_equal(layer.forward(2 * x), 2 * out)  # same mask again
    other = make_layer("dropout", (40,), np.random.default_rng(1), p=0.25).forward(x)
    assert (other != out).any()
    np.testing.assert_array_equal(make_layer("dropout", (40,), p=0.0).forward(x), x)


def test_residual_exposes_the_arrays_its_inner_layers_read() -> None:
    rng = np.random.default_rng(11)
    block = make_layer("residual", (3,), rng, layers=[{"type": "linear", "out": 3}])
    assert list(block.params) == ["0.linear.W", "0.linear.b"]
    assert block.params["0.linear.W"] is block.layers[0].params["W"]
    x = rng.standard_normal((2, 3))
    before = block.forward(x)
    block.params["0.linear.b"][0] += 1.0  # in place, as the checker perturbs
    assert np.allclose(block.forward(x)[:, 0], before[:, 0] + 1.0)
    block.params["0.linear.b"] = block.params["0.linear.b"] + 1.0  # replaced entry
    assert np.allclose(block.forward(x), before + np.array([2.0, 1.0, 1.0]))


# -- configs, CLI and errors ------------------------------------------------------------------

NEW_CONFIGS = ["small_cnn", "mlp_batchnorm_dropout", "residual_mlp", "embedding_classifier"]


@pytest.mark.parametrize("config", NEW_CONFIGS)
def test_example_config_results(config: str) -> None:
    r = gc("run", str(CONFIGS / f"{config}.yaml"), "--format", "json")
    assert r.exit_code == 0, r.output
    names = [p["name"] for p in json.loads(r.stdout)["results"]]
    expected = {
        "small_cnn": ["input", "0.conv2d.W", "0.conv2d.b", "4.linear.W", "4.linear.b"],
        "embedding_classifier": ["0.embedding.W", "2.linear.W", "2.linear.b"],
    }
    if config in expected:
        assert names == expected[config]
    if config == "residual_mlp":
        assert "1.residual.0.linear.W" in names and "2.residual.0.layernorm.gamma" in names


def test_layer_command_conv2d() -> None:
    r = gc(
        "layer",
        "conv2d",
        "--shape",
        "2x3x6x6",
        "--arg",
        "out_channels=4",
        "--arg",
        "kernel=3",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["results"]] == ["input", "0.conv2d.W", "0.conv2d.b"]
    assert doc["results"][1]["shape"] == [4, 3, 3, 3]


def test_list_shows_the_new_layers() -> None:
    r = gc("list")
    assert r.exit_code == 0
    for name in [*CASES, *LOSS_CASES]:
        assert name in r.output
    assert "x·Φ(x)" in r.output and "σ(z) − y" in r.output
    assert "pred[n, y_n]" in r.output  # brackets in formulas are text, not Rich markup


NET = """
name: t
seed: 3
dtype: {dtype}
input: {input}
target: {{kind: classes, classes: 2}}
layers:
{layers}
loss: {{type: softmax_cross_entropy}}
"""
EMB = "  - {type: embedding, vocab: 6, dim: 2}\n  - flatten\n  - {type: linear, out: 2}"


def test_integer_input_is_not_cast_and_not_checked(write) -> None:
    cfg = write(
        "e.yaml", NET.format(dtype="float32", input="{shape: [4, 3], integers: 6}", layers=EMB)
    )
    net = build_network(load_config(cfg))
    assert net.x is not None and net.x.dtype == np.int64
    assert net.x.min() >= 0 and net.x.max() < 6
    result = check_network(net)
    assert result.dtype == "float32" and result.passed, explain(result)
    assert "input" not in {p.name for p in result.params}
    given = write(
        "g.yaml",
        NET.format(dtype="float64", input="{values: [[0, 5], [2, 2]], integers: 6}", layers=EMB),
    )
    assert build_network(load_config(given)).x.tolist() == [[0, 5], [2, 2]]


@pytest.mark.parametrize(
    ("input_", "layers", "message"),
    [
        ("{values: [[0, 1.5]], integers: 6}", EMB, "input ids must be integers in 0…5"),
        ("{values: [[0, 6]], integers: 6}", EMB, "input ids must be integers in 0…5"),
        ("{shape: [2, 3], integers: 0}", EMB, "input.integers"),
        ("{shape: [2, 3]}", EMB, "embedding expects integer ids"),
        (
            "{shape: [2, 3]}",
            "  - {type: conv2d, out_channels: 2, kernel: 3}",
            "conv2d expects per-sample input of shape (channels, height, width), got (3,)",
        ),
        (
            "{shape: [2, 1, 3, 3]}",
            "  - {type: conv2d, out_channels: 2, kernel: 5}",
            "kernel 5x5 is larger than the (padded) input 3x3",
        ),
        (
            "{shape: [2, 1, 3, 3]}",
            "  - {type: maxpool2d, kernel: 0}",
            "'kernel' must be a positive",
        ),
        (
            "{shape: [2, 3]}",
            "  - {type: dropout, p: 1}",
            "'p' (drop probability) must be in [0, 1)",
        ),
        ("{shape: [2, 3]}", "  - {type: gelu, approximate: fast}", "'approximate' must be"),
        (
            "{shape: [2, 3]}",
            "  - {type: residual, layers: [{type: linear, out: 4}]}",
            "f(x) has per-sample shape (4,) but x has (3,)",
        ),
        (
            "{shape: [2, 3]}",
            "  - {type: residual, layers: [{type: lineer, out: 3}]}",
            "did you mean 'linear'",
        ),
        ("{shape: [2, 3]}", "  - {type: residual, layers: []}", "non-empty list"),
        ("{shape: [2, 3]}", "  - {type: batchnorm, eps: 0}", "'eps' must be positive"),
    ],
)
def test_bad_layer_configs_exit_2(write, input_: str, layers: str, message: str) -> None:
    cfg = write("bad.yaml", NET.format(dtype="float64", input=input_, layers=layers))
    r = gc("run", str(cfg))
    assert r.exit_code == 2, r.output
    assert message in r.stderr.replace("\n", " ") or message in r.output.replace("\n", " ")
    assert "Traceback" not in r.output


def test_residual_with_a_plugin_inside_and_a_buggy_block(write, tmp_path: Path) -> None:
    shutil.copy(CONFIGS / "my_layers.py", tmp_path / "my_layers.py")
    layers = (
        "  - {type: linear, out: 4}\n  - type: residual\n    layers:\n"
        "      - {type: 'my_layers.py:ScaledTanh'}\n      - {type: linear, out: 4}\n"
        "  - {type: linear, out: 2}"
    )
    cfg = write("ok.yaml", NET.format(dtype="float64", input="{shape: [5, 3]}", layers=layers))
    r = gc("run", str(cfg), "--format", "json")
    assert r.exit_code == 0, r.output
    names = [p["name"] for p in json.loads(r.stdout)["results"]]
    assert "1.residual.0.ScaledTanh.a" in names and "1.residual.1.linear.W" in names
    buggy = layers.replace("type: residual", f"type: '{BUGGY}:ResidualNoSkip'")
    cfg = write("bad.yaml", NET.format(dtype="float64", input="{shape: [5, 3]}", layers=buggy))
    r = gc("run", str(cfg), "--format", "json")
    assert r.exit_code == 1, r.output
    bad = {p["name"] for p in json.loads(r.stdout)["results"] if not p["passed"]}
    assert {"input", "0.linear.W", "0.linear.b"} <= bad
    assert not any(n.startswith("1.") for n in bad)  # the inner grads themselves are right


def test_complex_note_is_declared_for_every_builtin() -> None:
    for cls in [*LAYERS.values(), *LOSSES.values()]:
        assert isinstance(cls.complex_safe, bool)
        assert cls.complex_safe or cls.complex_note, cls.__name__
    assert issubclass(LAYERS["conv2d"], Layer)


def test_shape_error_is_raised_by_the_library() -> None:
    with pytest.raises(ShapeError, match="channels, height, width"):
        make_layer("maxpool2d", (4,), kernel=2)
    with pytest.raises(ConfigError, match="'padding' must be a non-negative"):
        make_layer("conv2d", (1, 4, 4), out_channels=1, kernel=2, padding=-1)


# -- properties over shapes (hypothesis) ------------------------------------------------------


@st.composite
def window_problems(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(window_problems(), st.integers(1, 3))
def test_conv2d_shape_and_adjoint_property(problem, f: int) -> None:
    """out has the documented shape, and backward is the exact adjoint of the (linear in x)
    forward: Σ (out − b) ⊙ g = Σ x ⊙ dx, Σ (out − b) ⊙ g = Σ W ⊙ dW."""
    shape, k, s, p, seed = problem
    rng = np.random.default_rng(seed)
    layer = make_layer(
        "conv2d", shape[1:], rng, out_channels=f, kernel=list(k), stride=list(s), padding=list(p)
    )
    x = rng.standard_normal(shape)
    ho = (shape[2] + 2 * p[0] - k[0]) // s[0] + 1
    wo = (shape[3] + 2 * p[1] - k[1]) // s[1] + 1
    lin = layer.forward(x) - layer.params["b"][None, :, None, None]
    assert lin.shape == (shape[0], f, ho, wo)
    g = rng.standard_normal(lin.shape)
    dx = layer.backward(g)
    scale = np.abs(lin * g).sum()
    assert abs((lin * g).sum() - (x * dx).sum()) <= 1e-12 * scale
    assert abs((lin * g).sum() - (layer.params["W"] * layer.grads["W"]).sum()) <= 1e-12 * scale


@settings(max_examples=60, deadline=None)
@given(window_problems(), st.sampled_from(["maxpool2d", "avgpool2d"]))
def test_pooling_shape_and_adjoint_property(problem, name: str) -> None:
    """Pooling is linear in x (maxpool: for a fixed argmax pattern), so Σ out ⊙ g = Σ x ⊙ dx."""
    shape, k, s, _, seed = problem
    if k[0] > shape[2] or k[1] > shape[3]:
        with pytest.raises(ShapeError, match="larger than"):
            make_layer(name, shape[1:], kernel=list(k), stride=list(s))
        return
    rng = np.random.default_rng(seed)
    layer = make_layer(name, shape[1:], kernel=list(k), stride=list(s))
    x = rng.standard_normal(shape)
    out = layer.forward(x)
    assert out.shape == (*shape[:2], (shape[2] - k[0]) // s[0] + 1, (shape[3] - k[1]) // s[1] + 1)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)
    assert abs((out * g).sum() - (x * dx).sum()) <= 1e-12 * np.abs(out * g).sum()

"""Issue 15 sequence layers and losses: correct ones pass across many seeds, each wrong twin is
caught, the engine's numbers equal the plain loop's, forwards match loop references written
from PyTorch's definitions, masked positions get exactly-zero gradients, and the example
configs pass. (PyTorch parity itself is measured by benchmarks/torch_parity.py; CI needs no
torch.)"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import build_network, check_layer, check_network, load_config, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import ConfigError, GradcheckError, ShapeError
from gradcheck_cli.layers.base import Layer
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.layers.registry import LAYERS, LOSSES
from gradcheck_cli.layers.seq_losses import SequenceCrossEntropy
from gradcheck_cli.spec.config import parse_config

from . import buggy_sequence as bug
from .conftest import CONFIGS
from .test_engine import assert_engine_matches_loop

BUGGY = Path(bug.__file__)
SEEDS = range(8)
runner = CliRunner()

# name → [(layer arguments, input shape with batch axis)]
SEQ_CASES: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {
    "rnn": [
        ({"hidden": 4}, (3, 5, 3)),
        ({"hidden": 3, "nonlinearity": "relu", "learn_h0": True}, (2, 4, 3)),
    ],
    "lstm": [({"hidden": 4}, (3, 5, 3)), ({"hidden": 3, "learn_h0": True}, (2, 4, 2))],
    "gru": [({"hidden": 4}, (3, 5, 3)), ({"hidden": 3, "learn_h0": True}, (2, 4, 2))],
    "attention": [({"heads": 2}, (2, 5, 4)), ({"heads": 2, "causal": True}, (2, 4, 6))],
    "conv1d": [
        ({"out_channels": 3, "kernel": 3}, (2, 2, 7)),
        ({"out_channels": 2, "kernel": 3, "stride": 2, "padding": 1, "dilation": 2}, (2, 3, 9)),
    ],
    "groupnorm": [({"groups": 2}, (3, 4, 5)), ({"groups": 1}, (2, 3, 4)), ({"groups": 2}, (4, 6))],
    "temporal_linear": [({"out": 3}, (2, 4, 5)), ({"out": 2}, (3, 4))],
}
FLAT = [(n, kw, s) for n, cases in SEQ_CASES.items() for kw, s in cases]
IDS = [f"{n}-{i}" for n, cases in SEQ_CASES.items() for i in range(len(cases))]


def explain(result) -> list:
    return [(p.name, p.verdict, p.rel_error, p.worst[:1], p.reason) for p in result.failures]


# -- declarations and formulas -----------------------------------------------------------------


@pytest.mark.parametrize("name", [*SEQ_CASES, "sequence_cross_entropy"])
def test_formulas_docs_and_declarations(name: str) -> None:
    cls = LAYERS.get(name) or LOSSES[name]
    assert cls.forward_formula and cls.backward_formula and (cls.__doc__ or "").strip()
    declared = next(c for c in cls.__mro__ if "complex_safe" in vars(c))
    assert declared not in (Layer, object) and "gradcheck_cli.layers" in declared.__module__
    if name in LAYERS:  # declared by the layer's own module, never inherited from Layer
        owner = next(c for c in cls.__mro__ if "row_independent" in vars(c))
        assert owner is not Layer and owner.row_independent is True
    r = runner.invoke(app, ["list"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and name in r.output


@pytest.mark.parametrize(("name", "kwargs", "shape"), FLAT, ids=IDS)
def test_estimate_equals_the_built_layer(name: str, kwargs: dict, shape: tuple) -> None:
    layer = make_layer(name, shape[1:], np.random.default_rng(0), **kwargs)
    out = layer.forward(np.random.default_rng(1).standard_normal(shape))
    n_params = sum(v.size for v in layer.params.values())
    assert type(layer).estimate(shape[1:], **kwargs) == (n_params, out.shape[1:])


# -- correct layers pass, over many seeds ------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "shape"), FLAT, ids=IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_layer_passes(name: str, kwargs: dict, shape: tuple, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    result = check_layer(layer, rng.standard_normal(shape), seed=seed, label=name)
    assert result.passed, explain(result)
    assert {p.name for p in result.params} == {"input"} | {f"0.{name}.{k}" for k in layer.params}


@pytest.mark.parametrize(("name", "kwargs", "shape"), FLAT, ids=IDS)
def test_layer_passes_the_complex_step(name: str, kwargs: dict, shape: tuple) -> None:
    rng = np.random.default_rng(3)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    result = check_layer(layer, rng.standard_normal(shape), method="complex", label=name)
    assert result.passed, explain(result)


def seq_loss_network(seed: int, loss: Any = None, masked: float = 0.3) -> Network:
    """temporal_linear → sequence_cross_entropy with about ``masked`` of the targets ignored."""
    rng = np.random.default_rng(seed)
    n, t, c = 3, 4, 5
    layer = make_layer("temporal_linear", (t, 3), rng, out=c)
    y = rng.integers(0, c, (n, t))
    y[rng.random((n, t)) < masked] = -100
    y[0, 0] = 2  # at least one position counts
    x = rng.standard_normal((n, t, 3))
    labels = ["temporal_linear"]
    return Network([layer], loss or SequenceCrossEntropy(), labels=labels, x=x, target=y)


@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_cross_entropy_passes(seed: int) -> None:
    result = check_network(seq_loss_network(seed))
    assert result.passed, explain(result)


# -- wrong twins are caught --------------------------------------------------------------------

SEQ = (3, 5, 3)
TWINS: list[tuple[type, dict[str, Any], tuple[int, ...], set[str]]] = [
    (bug.RNNTruncatedBPTT, {"hidden": 4}, SEQ, {"input", "0.rnn.Wx", "0.rnn.Wh", "0.rnn.b"}),
    (bug.RNNWhUsesCurrentState, {"hidden": 4}, SEQ, {"0.rnn.Wh"}),
    (bug.ReluRNNNoMask, {"hidden": 4}, SEQ, {"input", "0.rnn.Wx", "0.rnn.Wh", "0.rnn.b"}),
    (
        bug.LSTMForgetGateUsesNewCell,
        {"hidden": 4},
        SEQ,
        {"input", "0.lstm.Wx", "0.lstm.Wh", "0.lstm.b"},
    ),
    (bug.LSTMNoCellCarry, {"hidden": 4}, SEQ, {"input", "0.lstm.Wx", "0.lstm.Wh", "0.lstm.b"}),
    (
        bug.GRUUpdateGateSignFlipped,
        {"hidden": 4},
        SEQ,
        {"input", "0.gru.Wx", "0.gru.Wh", "0.gru.bx", "0.gru.bh"},
    ),
    (bug.GRUResetBiasOutside, {"hidden": 4}, SEQ, {"0.gru.bh"}),
    (
        bug.AttentionNoSoftmaxJacobian,
        {"heads": 2},
        (2, 4, 4),
        {"input", "0.attention.Wq", "0.attention.Wk", "0.attention.bq"},
    ),
    (
        bug.AttentionMissingScale,
        {"heads": 2, "causal": True},
        (2, 4, 4),
        {"input", "0.attention.Wq", "0.attention.Wk", "0.attention.bq"},
    ),
    (
        bug.Conv1dBackwardIgnoresDilation,
        {"out_channels": 2, "kernel": 3, "dilation": 2},
        (2, 2, 8),
        {"input"},
    ),
    (bug.GroupNormStatisticsAsConstants, {"groups": 2}, (3, 4, 5), {"input"}),
    (bug.TemporalLinearBiasMeanOverTime, {"out": 3}, (2, 4, 5), {"0.temporal_linear.b"}),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "shape", "bad"), TWINS, ids=[t[0].__name__ for t in TWINS]
)
@pytest.mark.parametrize("seed", range(3))
def test_wrong_layer_is_caught(cls: type, kwargs: dict, shape: tuple, bad: set, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(f"{BUGGY}:{cls.__name__}", shape[1:], rng, **kwargs)
    label = next(n for n, c in LAYERS.items() if issubclass(cls, c) and c is not Layer)
    result = check_layer(layer, rng.standard_normal(shape), seed=seed, label=label)
    failing = {p.name for p in result.failures}
    assert bad <= failing, explain(result)
    assert not result.passed


@pytest.mark.parametrize("cls", [bug.SequenceCEMeanOverAllPositions, bug.SequenceCEMaskForgotten])
@pytest.mark.parametrize("seed", range(3))
def test_wrong_sequence_loss_is_caught(cls: type, seed: int) -> None:
    result = check_network(seq_loss_network(seed, cls()))
    assert {"input", "0.temporal_linear.W", "0.temporal_linear.b"} & {
        p.name for p in result.failures
    }, explain(result)
    assert not result.passed


def test_forgotten_mask_shows_as_spurious_gradient_at_ignored_positions() -> None:
    net = seq_loss_network(0, bug.SequenceCEMaskForgotten(), masked=0.5)
    result = check_network(net, include=["input"])
    entry = result.failures[0].worst[0]
    assert net.target[entry.index[:2]] == -100  # the worst entry sits at an ignored position
    assert entry.numeric == 0.0 and entry.analytic != 0.0 and entry.label.startswith("spurious")


# -- masks and kinks ---------------------------------------------------------------------------


def test_ignored_positions_get_exactly_zero_gradient_and_pass() -> None:
    """Logits at ignored positions do not enter L: analytic and numeric are exactly 0 there,
    and the tensor passes (no 'noise', no failure)."""
    net = seq_loss_network(1, masked=0.5)
    net.loss_value(net.x)
    dx = net.backward()[0]
    ignored = net.target == -100
    assert ignored.any() and (~ignored).any()
    assert np.all(dx[ignored] == 0) and np.all(dx[~ignored] != 0)
    pert = Perturber(net, net.x)
    ref = net.parameters()[0]
    idx = np.flatnonzero(np.broadcast_to(ignored[..., None], net.x.shape))
    f, _ = pert.losses(ref, idx, np.array([1e-5, -1e-5]))
    assert np.all(f[:, 0] == f[:, 1])  # L does not move at all: numeric exactly 0
    result = check_network(net)
    assert result.passed and all(p.verdict == "pass" for p in result.params), explain(result)


def test_char_lstm_padding_rows_are_exactly_zero() -> None:
    """In the example LM, id 0 only occurs at padded positions, whose targets are ignored and
    which no later unmasked position reads: its embedding row's gradient is exactly 0."""
    net = build_network(load_config(CONFIGS / "char_lstm.yaml"))
    net.loss_value(net.x)
    net.backward()
    dW = net.layers[0].grads["W"]
    assert np.all(dW[0] == 0) and np.all(dW[1] != 0)
    result = check_network(net)
    assert result.passed and all(p.verdict == "pass" for p in result.params), explain(result)


def relu_rnn_at_kink() -> tuple[Any, np.ndarray]:
    """A relu-RNN whose first pre-activation is exactly 0 in unit 1 (x_0 = 0, b_1 = 0, h0 = 0)."""
    rng = np.random.default_rng(4)
    layer = make_layer("rnn", (4, 3), rng, hidden=3, nonlinearity="relu")
    layer.params["b"][1] = 0.0
    x = rng.standard_normal((2, 4, 3))
    x[:, 0] = 0.0
    return layer, x


def test_relu_rnn_at_zero_is_a_kink_not_a_failure() -> None:
    layer, x = relu_rnn_at_kink()
    layer.forward(x)
    assert np.any(x[:, 0] @ layer.params["Wx"] + layer.params["b"] == 0)
    result = check_layer(layer, x, label="rnn")
    assert result.passed, explain(result)
    b = next(p for p in result.params if p.name == "0.rnn.b")
    assert b.verdict == "kink" and b.kinks == 1
    assert not check_layer(layer, x, label="rnn", strict=True).passed


def test_relu_rnn_without_mask_is_caught_at_the_kink_too() -> None:
    _, x = relu_rnn_at_kink()
    layer = make_layer(f"{BUGGY}:ReluRNNNoMask", (4, 3), np.random.default_rng(4), hidden=3)
    layer.params["b"][1] = 0.0
    assert not check_layer(layer, x, label="rnn").passed


# -- the engine's numbers equal the plain loop ---------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "shape"), FLAT, ids=IDS)
@pytest.mark.parametrize("chunk_bytes", [1, 2**20])
def test_engine_equals_loop(name: str, kwargs: dict, shape: tuple, chunk_bytes: int) -> None:
    rng = np.random.default_rng(7)
    layer = make_layer(name, shape[1:], rng, **kwargs)
    x = rng.standard_normal(shape)
    out = layer.forward(x.copy())
    net = Network([layer], WeightedSum(rng.standard_normal(out.shape)), x=x, trusted=[True])
    assert_engine_matches_loop(net, x, chunk_bytes)


@pytest.mark.parametrize("config", ["char_lstm", "transformer_block", "conv1d_net"])
def test_engine_equals_loop_on_the_example_configs(config: str) -> None:
    net = build_network(load_config(CONFIGS / f"{config}.yaml"))
    assert_engine_matches_loop(net, net.x, 4096, inputs=config != "char_lstm")


@pytest.mark.parametrize("chunk_bytes", [1, 2**20])
def test_engine_equals_loop_through_the_sequence_loss(chunk_bytes: int) -> None:
    """Input rows reach the loss as rows (forward_rows), parameters as dense copies
    (forward_copies): both equal the loop, with ignored positions."""
    rng = np.random.default_rng(2)
    layers = [
        make_layer("gru", (4, 3), rng, hidden=4),
        make_layer("attention", (4, 4), rng, heads=2, causal=True),
        make_layer("temporal_linear", (4, 4), rng, out=5),
    ]
    y = rng.integers(0, 5, (3, 4))
    y[1, 2:] = -100
    x = rng.standard_normal((3, 4, 3))
    net = Network(layers, SequenceCrossEntropy(), x=x, target=y, trusted=[True] * 3)
    assert_engine_matches_loop(net, x, chunk_bytes)


# -- forwards against loop references written from PyTorch's definitions -----------------------


def sig(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def test_recurrent_forwards_match_step_by_step_references() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3))
    lstm = make_layer("lstm", (4, 3), rng, hidden=2, learn_h0=True)
    p = lstm.params
    h, c = np.tile(p["h0"], (2, 1)), np.tile(p["c0"], (2, 1))
    for t in range(4):
        a = x[:, t] @ p["Wx"] + h @ p["Wh"] + p["b"]
        i, f, g, o = sig(a[:, :2]), sig(a[:, 2:4]), np.tanh(a[:, 4:6]), sig(a[:, 6:])
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(lstm.forward(x)[:, t], h, rtol=1e-13)
    gru = make_layer("gru", (4, 3), rng, hidden=2)
    q = gru.params
    h = np.zeros((2, 2))
    for t in range(4):
        ax, ah = x[:, t] @ q["Wx"] + q["bx"], h @ q["Wh"] + q["bh"]
        r, z = sig(ax[:, :2] + ah[:, :2]), sig(ax[:, 2:4] + ah[:, 2:4])
        n = np.tanh(ax[:, 4:] + r * ah[:, 4:])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(gru.forward(x)[:, t], h, rtol=1e-13)
    rnn = make_layer("rnn", (4, 3), rng, hidden=2, nonlinearity="relu")
    s = rnn.params
    h = np.zeros((2, 2))
    for t in range(4):
        h = np.maximum(0, x[:, t] @ s["Wx"] + h @ s["Wh"] + s["b"])
        np.testing.assert_allclose(rnn.forward(x)[:, t], h, rtol=1e-13)


def test_attention_matches_a_per_head_loop_reference() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 6))
    layer = make_layer("attention", (4, 6), rng, heads=3, causal=True)
    p = layer.params
    q, k, v = (x @ p["W" + s] + p["b" + s] for s in "qkv")
    heads = []
    for hd in range(3):
        sl = slice(2 * hd, 2 * hd + 2)
        s = q[..., sl] @ k[..., sl].transpose(0, 2, 1) / math.sqrt(2)
        s = np.where(np.tril(np.ones((4, 4), bool)), s, -np.inf)
        w = np.exp(s - s.max(-1, keepdims=True))
        heads.append((w / w.sum(-1, keepdims=True)) @ v[..., sl])
    ref = np.concatenate(heads, axis=-1) @ p["Wo"] + p["bo"]
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-13)


def test_conv1d_and_groupnorm_match_loop_references() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 10))
    conv = make_layer(
        "conv1d", (3, 10), rng, out_channels=2, kernel=3, stride=2, padding=1, dilation=2
    )
    W, b = conv.params["W"], conv.params["b"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    lo = (10 + 2 - 2 * 2 - 1) // 2 + 1
    ref = np.array(
        [
            [
                [(xp[n, :, 2 * o : 2 * o + 5 : 2] * W[f]).sum() + b[f] for o in range(lo)]
                for f in range(2)
            ]
            for n in range(2)
        ]
    )
    np.testing.assert_allclose(conv.forward(x), ref, rtol=1e-13)
    gn = make_layer("groupnorm", (4, 5), rng, groups=2)
    x = rng.standard_normal((3, 4, 5))
    xg = x.reshape(3, 2, 10)
    xhat = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(
        x.shape
    )
    ref = xhat * gn.params["gamma"][:, None] + gn.params["beta"][:, None]
    np.testing.assert_allclose(gn.forward(x), ref, rtol=1e-12)


def test_layernorm_dims_normalises_each_position() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 4))
    ln = make_layer("layernorm", (3, 4), rng, dims=1)
    assert ln.params["gamma"].shape == (4,)
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(
        ln.forward(x), xhat * ln.params["gamma"] + ln.params["beta"], rtol=1e-12
    )
    assert check_layer(ln, x, label="layernorm").passed
    with pytest.raises(ConfigError, match="dims"):
        make_layer("layernorm", (3, 4), rng, dims=3)


def test_linear_refuses_sequences_and_points_to_temporal_linear() -> None:
    """The documented rule: linear takes (N, D) only; temporal_linear is its per-position form
    and equals linear applied to every (n, t) row."""
    with pytest.raises(ShapeError, match="temporal_linear"):
        make_layer("linear", (3, 4), out=2)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 4))
    tl = make_layer("temporal_linear", (3, 4), rng, out=2)
    lin = make_layer("linear", (4,), out=2)
    lin.params = tl.params
    ref = lin.forward(x.reshape(6, 4)).reshape(2, 3, 2)
    np.testing.assert_allclose(tl.forward(x), ref, rtol=1e-14, atol=1e-15)


def test_sequence_cross_entropy_is_the_mean_over_unmasked_positions() -> None:
    rng = np.random.default_rng(9)
    z = rng.standard_normal((2, 3, 4))
    y = np.array([[1, -100, 3], [0, 2, -100]])
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ref = -np.mean([logp[n, t, y[n, t]] for n in range(2) for t in range(3) if y[n, t] != -100])
    loss = SequenceCrossEntropy()
    np.testing.assert_allclose(loss.forward(z, y), ref, rtol=1e-14)
    assert SequenceCrossEntropy(ignore_index=-1).forward(
        z, np.where(y == -100, -1, y)
    ) == pytest.approx(ref)
    with pytest.raises(GradcheckError, match="every target equals ignore_index"):
        loss.forward(z, np.full((2, 3), -100))


# -- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["char_lstm", "transformer_block", "conv1d_net"])
def test_example_config_passes_quickly(config: str) -> None:
    start = time.perf_counter()
    r = runner.invoke(app, ["run", str(CONFIGS / f"{config}.yaml")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert time.perf_counter() - start < 10


def seq_config(target: dict) -> dict:
    return {
        "input": {"shape": [2, 3], "integers": 5},
        "target": target,
        "layers": [
            {"type": "embedding", "vocab": 5, "dim": 2},
            {"type": "temporal_linear", "out": 4},
        ],
        "loss": {"type": "sequence_cross_entropy"},
    }


@pytest.mark.parametrize(
    ("target", "message", "field"),
    [
        (
            {"kind": "classes", "values": [[0, 1, 4], [1, 2, 3]]},
            "0…3 or -100 (ignore_index)",
            "target",
        ),
        ({"kind": "classes", "values": [0, 1]}, "shape (2, 3)", "target"),
        ({"kind": "classes", "classes": 3}, "network outputs 4 classes", "target.classes"),
        (
            {"kind": "classes", "values": [[-100] * 3] * 2},
            "every target equals ignore_index",
            "loss",
        ),
        ({"kind": "values"}, "needs a target of kind classes", "target.kind"),
    ],
)
def test_bad_sequence_targets_are_config_errors(target: dict, message: str, field: str) -> None:
    with pytest.raises(GradcheckError) as info:
        build_network(parse_config(seq_config(target)))
    assert message in str(info.value) and info.value.field == field


def test_softmax_cross_entropy_on_sequences_points_to_the_sequence_loss() -> None:
    cfg = seq_config({"kind": "classes"}) | {"loss": {"type": "softmax_cross_entropy"}}
    with pytest.raises(GradcheckError) as info:
        build_network(parse_config(cfg))
    assert "sequence_cross_entropy" in (info.value.hint or "")


def test_random_sequence_targets_have_one_label_per_position() -> None:
    net = build_network(parse_config(seq_config({"kind": "classes", "classes": 4})))
    assert net.target.shape == (2, 3) and net.target.min() >= 0 and net.target.max() < 4
    assert check_network(net).passed


def test_torch_parity_when_torch_is_installed() -> None:
    """benchmarks/torch_parity.py, only where torch happens to be installed (never in CI)."""
    pytest.importorskip("torch")
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "torch_parity.py"
    spec = importlib.util.spec_from_file_location("torch_parity", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main_with(3) == 0

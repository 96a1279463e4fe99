"""`gradcheck sweep`: the ε V-curve, the Taylor-remainder verdict, and the terminal renderers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.engine.build import build_network
from gradcheck_cli.engine.network import Network
from gradcheck_cli.spec.config import default_config_path, load_config, parse_config
from gradcheck_cli.sweep.plot import Series, VMark, heatmap, loglog
from gradcheck_cli.sweep.vcurve import EPS_GRID, MAX_ENTRIES, SweepResult, sweep_network

from .conftest import CONFIGS

runner = CliRunner()

#: Deliberately wrong layers, written next to the configs in tmp_path (each test gets its own).
PLUGIN = '''
import numpy as np
from gradcheck_cli.layers.activations import ReLU
from gradcheck_cli.layers.linear import Linear


class LinearScaled(Linear):
    """Bug: dW is 1.01 times too large."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * 1.01
        return dx


class ReLUNoMask(ReLU):
    """Bug: passes the upstream gradient through everywhere."""

    def backward(self, dout):
        return dout


class Jitter:
    """A forward that is not deterministic: adds fresh noise of size 1e-9 on every call."""

    def __init__(self):
        self.params, self.grads = {}, {}
        self.rng = np.random.default_rng()

    def forward(self, x):
        return x + 1e-9 * self.rng.standard_normal(x.shape)

    def backward(self, dout):
        return dout
'''


def gc(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def net_from(layers: list[Any], *, seed: int = 0, loss: str | None = "ce", **extra: Any) -> Network:
    cfg: dict[str, Any] = {"name": "t", "seed": seed, "input": {"shape": [4, 3]}, "layers": layers}
    if loss == "ce":
        cfg |= {"target": {"kind": "classes"}, "loss": {"type": "softmax_cross_entropy"}}
    elif loss == "mse":
        cfg |= {"target": {"kind": "values"}, "loss": {"type": "mse"}}
    cfg |= extra
    return build_network(parse_config(cfg, base_dir=Path(".")))


def write_config(tmp_path: Path, layers: str, seed: int = 0) -> Path:
    (tmp_path / "bugs.py").write_text(PLUGIN, encoding="utf-8")
    path = tmp_path / "net.yaml"
    path.write_text(
        f"name: bugs\nseed: {seed}\ninput: {{shape: [4, 3]}}\n"
        "target: {kind: classes}\nloss: {type: softmax_cross_entropy}\n"
        f"layers:\n{layers}\n",
        encoding="utf-8",
    )
    return path


def curve(result: SweepResult, name: str) -> Any:
    return next(c for c in result.curves if c.name == name)


def taylor(result: SweepResult, name: str) -> Any:
    return next(t for t in result.taylor or () if t.name == name)


def snapshot(net: Network) -> list[bytes]:
    arrays = [net.x] + [p for layer in net.layers for p in layer.params.values()]
    return [np.asarray(a).tobytes() for a in arrays]


# -- the V-curve ---------------------------------------------------------------------------------


def test_default_network_v_curve_bottoms_out_where_expected() -> None:
    cfg = load_config(default_config_path())
    res = sweep_network(build_network(cfg), eps=cfg.check.eps, seed=cfg.seed)
    assert [c.name for c in res.curves] == [
        "input",
        "0.linear.W",
        "0.linear.b",
        "2.linear.W",
        "2.linear.b",
    ]
    for c in res.curves:
        assert 1e-8 <= c.best_eps <= 1e-3, (c.name, c.best_eps)
        assert c.best_error < 1e-8, (c.name, c.best_error)
        assert c.verdict == "pass", (c.name, c.reason)
        assert len(c.error) == len(EPS_GRID) == 23 and c.eps[0] == 0.1 and c.eps[-1] == 1e-12
    assert res.used_eps == 1e-5 and res.passed


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_v_curve_has_both_arms_on_a_curved_network(act: str, seed: int) -> None:
    net = net_from([{"type": "linear", "out": 4}, act, {"type": "linear", "out": 3}], seed=seed)
    for c in sweep_network(net, seed=seed).curves:
        j = EPS_GRID.index(c.best_eps)
        assert 0 < j < len(EPS_GRID) - 1, c.name  # an interior minimum
        assert c.error[-1] > 100 * c.best_error, (c.name, "round-off arm (ε = 1e-12)")
        assert c.error[0] > 100 * c.best_error, (c.name, "truncation arm (ε = 1e-1)")
        assert c.verdict == "pass"


def test_eps_used_defaults_to_the_dtype_default() -> None:
    net = net_from([{"type": "linear", "out": 3}, "tanh"], loss="mse", dtype="float32")
    res = sweep_network(net)
    assert res.used_eps == 1e-3 and res.eps_source == "float32 default"


def test_big_tensor_is_swept_on_a_seeded_sample() -> None:
    layers = [{"type": "linear", "out": 30}, "tanh"]
    net = net_from(layers, loss="mse", input={"shape": [5, 20]})
    res = sweep_network(net, param="0.linear.W", seed=3)
    c = res.curves[0]
    assert c.checked == MAX_ENTRIES and c.total == 600 and c.sampled and c.verdict == "pass"
    again = sweep_network(
        net_from(layers, loss="mse", input={"shape": [5, 20]}), param="0.linear.W", seed=3
    )
    assert again.curves[0].error == c.error


def test_wrong_gradient_fails_the_v_curve(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, "  - {type: 'bugs.py:LinearScaled', out: 4}\n  - tanh\n  - {type: linear, out: 3}"
    )
    res = sweep_network(build_network(load_config(cfg)))
    bad = curve(res, "0.LinearScaled.W")
    assert bad.verdict == "fail" and 1e-3 < bad.best_error < 1e-2  # ≈ 0.01 / 2
    assert curve(res, "0.LinearScaled.b").verdict == "pass"
    assert res.failures == ("0.LinearScaled.W",)


BUGGY = Path(__file__).with_name("buggy_layers.py")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_v_curve_catches_a_1e_5_bug_and_taylor_a_1e_3_bug(seed: int) -> None:
    def scaled(rel: float) -> Network:
        first = {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": rel}
        return net_from([first, "tanh", {"type": "linear", "out": 3}], seed=seed)

    small = sweep_network(scaled(1e-5), param="0.LinearScaled.W", seed=seed)
    assert small.curves[0].verdict == "fail" and small.failures == ("0.LinearScaled.W",)
    medium = sweep_network(scaled(1e-3), param="0.LinearScaled.W", taylor=True, seed=seed)
    assert taylor(medium, "0.LinearScaled.W").verdict == "fail"
    exact = sweep_network(scaled(0.0), param="0.LinearScaled.W", taylor=True, seed=seed)
    assert exact.passed and taylor(exact, "0.LinearScaled.W").verdict == "pass"


def test_kink_entries_are_counted_not_failed() -> None:
    """ReLU on an input with exact zeros: the input gradient sits on kinks there."""
    net = net_from(
        ["relu", {"type": "linear", "out": 2}, "tanh"],
        loss="mse",
        input={"values": [[0.0, 1.0, -2.0], [0.5, 0.0, 0.3]]},
    )
    res = sweep_network(net, taylor=True, seed=1)
    c = curve(res, "input")
    assert c.verdict == "inconclusive" and "2 of 6 entries sit on a kink" in c.reason
    t = taylor(res, "input")
    assert t.verdict == "inconclusive" and "kink" in t.reason and "lies between" in t.reason
    assert res.passed  # a kink is not a failure


def test_kinks_do_not_hide_a_wrong_gradient_elsewhere() -> None:
    """Negative twin: the same kinked input through a ReLU without its mask must fail."""
    net = net_from(
        [f"{BUGGY}:ReLUNoMask", {"type": "linear", "out": 2}, "tanh"],
        loss="mse",
        input={"values": [[0.0, 1.0, -2.0], [0.5, 0.0, 0.3]]},
    )
    res = sweep_network(net, seed=1)
    assert curve(res, "input").verdict == "fail" and not res.passed


class _Downcast:
    """Returns float32 whatever it is given: a float32 network with it keeps float32 numerics."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


def test_float32_numerics_run_in_float64_when_the_layers_allow() -> None:
    path = Path(default_config_path()).read_text().replace("dtype: float64", "dtype: float32")
    net = build_network(parse_config(yaml.safe_load(path)))
    res = sweep_network(net, eps=1e-3, param="0.linear.W")
    c = res.curves[0]
    assert np.all(np.isfinite(c.error)) and c.verdict == "pass"


def test_float32_steps_below_resolution_are_gaps_not_numbers() -> None:
    path = Path(default_config_path()).read_text().replace("dtype: float64", "dtype: float32")
    net = build_network(parse_config(yaml.safe_load(path)))
    net.layers.insert(1, _Downcast())  # float32 numerics: steps below float32 spacing vanish
    net.labels.insert(1, "Downcast")
    net.trusted.insert(1, False)
    res = sweep_network(net, eps=1e-3, param="0.linear.W")
    c = res.curves[0]
    assert np.isnan(c.error[-1]) and np.isfinite(c.error[0]) and c.verdict == "pass"
    assert res.to_dict()["curves"][0]["error"][-1] is None  # JSON null, not NaN


# -- the Taylor test -----------------------------------------------------------------------------

CORRECT = {
    "relu": ([{"type": "linear", "out": 5}, "relu", {"type": "linear", "out": 3}], "ce"),
    "tanh": ([{"type": "linear", "out": 5}, "tanh", {"type": "linear", "out": 3}], "ce"),
    "sigmoid-mse": ([{"type": "linear", "out": 4}, "sigmoid", {"type": "linear", "out": 2}], "mse"),
}


@pytest.mark.parametrize("case", sorted(CORRECT))
@pytest.mark.parametrize("seed", range(6))
def test_taylor_slope_is_two_for_correct_layers(case: str, seed: int) -> None:
    layers, loss = CORRECT[case]
    res = sweep_network(net_from(layers, seed=seed, loss=loss), taylor=True, seed=seed)
    for t in res.taylor or ():
        assert t.verdict == "pass", (t.name, t.slope, t.reason)
        assert abs(t.slope - 2) < 0.1, (t.name, t.slope)


@pytest.mark.parametrize(
    ("layers", "bad"),
    [
        (
            "  - {type: 'bugs.py:LinearScaled', out: 4}\n  - tanh\n  - {type: linear, out: 3}",
            ["0.LinearScaled.W"],
        ),
        (
            "  - {type: linear, out: 5}\n  - {type: 'bugs.py:ReLUNoMask'}\n  - {type: linear, out: 3}",
            ["input", "0.linear.W", "0.linear.b"],
        ),
    ],
    ids=["dW-x1.01", "relu-no-mask"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_taylor_slope_is_one_for_a_wrong_layer(
    tmp_path: Path, layers: str, bad: list[str], seed: int
) -> None:
    r = gc("sweep", str(write_config(tmp_path, layers, seed)), "--taylor", "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    for t in doc["taylor"]:
        if t["name"] in bad:
            assert t["verdict"] == "fail" and abs(t["slope"] - 1) < 0.2, t
        else:
            assert t["verdict"] == "pass" and abs(t["slope"] - 2) < 0.1, t


def test_loss_linear_in_the_tensor_passes() -> None:
    """One linear layer, L = Σ out ⊙ g: L is exactly linear in W, b and x; r(h) is round-off."""
    for seed in range(4):
        res = sweep_network(
            net_from([{"type": "linear", "out": 3}], seed=seed, loss=None), taylor=True
        )
        for t in res.taylor or ():
            assert t.verdict == "pass", (t.name, t.reason)
            assert t.reason == "loss is linear in this tensor; remainder is round-off"


def test_loss_linear_in_the_tensor_with_a_wrong_gradient_fails(tmp_path: Path) -> None:
    (tmp_path / "bugs.py").write_text(PLUGIN, encoding="utf-8")
    cfg = parse_config(
        {"input": {"shape": [4, 3]}, "layers": [{"type": "bugs.py:LinearScaled", "out": 3}]},
        base_dir=tmp_path,
    )
    res = sweep_network(build_network(cfg), taylor=True)
    assert taylor(res, "0.LinearScaled.W").verdict == "fail"
    assert taylor(res, "0.LinearScaled.b").verdict == "pass"


@pytest.mark.parametrize("seed", [1, 2, 10])
def test_linear_tensor_with_cancellation_inside_the_loss_passes(seed: int) -> None:
    """softmax → linear, L = Σ out ⊙ g: linear in the last W and b, but L is a sum of many terms
    that cancel, so its rounding noise is far above u·|L|; the probe steps must measure that."""
    net = net_from(
        [{"type": "linear", "out": 16}, "softmax", {"type": "linear", "out": 4}],
        seed=seed,
        loss=None,
        input={"shape": [8, 10]},
    )
    res = sweep_network(net, param="2.linear.b", taylor=True, seed=seed)
    t = taylor(res, "2.linear.b")
    assert t.verdict == "pass" and "linear" in t.reason, t.reason


def test_piecewise_linear_network_passes_on_its_round_off_tail() -> None:
    """linear → relu → linear without a loss is piecewise linear: kinks only at larger h."""
    net = net_from(
        [{"type": "linear", "out": 3}, "relu", {"type": "linear", "out": 2}], seed=1, loss=None
    )
    res = sweep_network(net, taylor=True, seed=1)
    assert all(t.verdict == "pass" for t in res.taylor or ()), res.taylor


def test_noisy_forward_is_inconclusive_not_a_slope(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "  - {type: linear, out: 3}\n  - {type: 'bugs.py:Jitter'}")
    res = sweep_network(build_network(load_config(cfg)), taylor=True)
    for t in res.taylor or ():
        assert t.verdict == "inconclusive" and "not deterministic" in t.reason, t.reason


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_parameters_are_restored_bit_exactly(dtype: str) -> None:
    net = net_from(
        [{"type": "linear", "out": 5}, "tanh", {"type": "linear", "out": 3}], dtype=dtype
    )
    before = snapshot(net)
    loss_before = float(net.loss_value(np.array(net.x, copy=True)))
    res = sweep_network(net, taylor=True)
    assert res.taylor is not None and len(res.taylor) == 5
    assert snapshot(net) == before
    assert float(net.loss_value(np.array(net.x, copy=True))) == loss_before


# -- the command -----------------------------------------------------------------------------------


def test_sweep_command_default_network() -> None:
    r = gc("sweep")
    assert r.exit_code == 0, r.output
    for text in ("ε used (1e-05)", "★ best", "0.linear.W", "2.linear.b", "no gradient is wrong"):
        assert text in r.output


def test_sweep_json_has_the_curve() -> None:
    r = gc("sweep", "--format", "json", "--param", "0.linear.W", "--taylor")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["passed"] is True and doc["used_eps"] == 1e-5 and doc["seed"] == 0
    (c,) = doc["curves"]
    assert c["name"] == "0.linear.W" and len(c["eps"]) == len(c["error"]) == 23
    assert c["eps"][0] == 0.1 and c["best_error"] == min(c["error"])
    (t,) = doc["taylor"]
    assert t["verdict"] == "pass" and len(t["h"]) == len(t["remainder"]) == 21


def test_sweep_json_without_taylor_and_a_missing_gradient(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: {shape: [4, 3]}\n"
        f"layers: [{{type: '{BUGGY}:LinearMissingGrad', out: 3}}, tanh]\n",
        encoding="utf-8",
    )
    r = gc("sweep", str(path), "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["taylor"] is None and doc["failures"] == ["0.LinearMissingGrad.b"]
    (bad,) = [c for c in doc["curves"] if c["verdict"] == "fail"]
    assert "did not set grads['b']" in bad["reason"] and bad["best_error"] is None
    r = gc("sweep", str(path), "--taylor")  # no Taylor test for a tensor without a gradient
    assert r.exit_code == 1 and "did not set grads['b']" in r.output


def test_eps_of_another_method_is_not_marked_on_the_central_curve(tmp_path: Path) -> None:
    text = (
        default_config_path()
        .read_text()
        .replace("check: {eps: 1.0e-5, inputs: true}", "check: {eps: 1.0e-20, method: complex}")
    )
    assert "method: complex" in text
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    doc = json.loads(gc("sweep", str(tmp_path / "c.yaml"), "--format", "json").stdout)
    assert doc["used_eps"] == 1e-5 and doc["eps_source"] == "float64 default"


def test_integer_input_is_not_swept() -> None:
    cfg = str(CONFIGS / "embedding_classifier.yaml")
    doc = json.loads(gc("sweep", cfg, "--taylor", "--format", "json").stdout)
    assert [c["name"] for c in doc["curves"]] == ["0.embedding.W", "2.linear.W", "2.linear.b"]
    assert doc["passed"] and doc["dtype"] == "float64"
    r = gc("sweep", cfg, "--param", "input")
    assert r.exit_code == 2 and "integer ids and has no gradient" in r.output


def test_a_tensor_the_loss_ignores_passes_and_says_why() -> None:
    """linear → batchnorm: the batch mean cancels the linear bias, so ∂L/∂b = 0 up to round-off."""
    cfg = str(CONFIGS / "mlp_batchnorm_dropout.yaml")
    r = gc("sweep", cfg, "--param", "0.linear.b", "--taylor", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (c,), (t,) = doc["curves"], doc["taylor"]
    assert c["verdict"] == "pass" and c["best_error"] > 0.1 and "round-off alone" in c["reason"]
    assert t["verdict"] == "pass" and "does not change with this tensor" in t["reason"]


def test_unknown_param_exits_2_listing_names() -> None:
    r = gc("sweep", "--param", "0.linear.Q")
    assert r.exit_code == 2
    assert "no tensor named '0.linear.Q'" in r.output
    assert "input, 0.linear.W, 0.linear.b, 2.linear.W, 2.linear.b" in r.output
    assert "Traceback" not in r.output


def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("input: {shape: [4, 3]}\nlayers: [{type: linaer}]\n")
    r = gc("sweep", str(path))
    assert r.exit_code == 2 and "linaer" in r.output


# -- renderers -------------------------------------------------------------------------------------


def render(renderable: Any, width: int = 120) -> tuple[str, list[Any]]:
    console = Console(record=True, width=width, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    segments = list(console.render(renderable))
    return console.export_text(), segments


def grid_lines(text: str) -> list[str]:
    return text.splitlines()[1:-1]  # drop the title and the legend


def test_heatmap_cells_and_counts() -> None:
    v = np.array([[0.0, 0.05, 0.5, 0.99], [1.0, 7.0, np.nan, np.inf]])
    text, segments = render(heatmap(v, "0.linear.W: |a−n| / tol"))
    cells = "".join(grid_lines(text))
    assert (cells.count("░"), cells.count("▒"), cells.count("█"), cells.count("?")) == (2, 2, 3, 1)
    assert "░ < 0.1: 2" in text and "▒ 0.1 … 1: 2" in text and "█ ≥ 1: 3" in text
    assert "? NaN: 1" in text
    colours = {s.text: s.style.color.name for s in segments if s.text in "░▒█?" and s.style}
    assert colours == {"░": "green", "▒": "yellow", "█": "red", "?": "grey50"}


def test_heatmap_caps_big_tensors() -> None:
    v = np.full((40, 70), 0.01)
    v[39, 69] = 5.0  # hidden, but still counted
    text, _ = render(heatmap(v, "big"))
    lines = grid_lines(text)
    assert len(lines) == 32
    assert all(line.count("░") == 64 and "… +6 columns" in line for line in lines)
    assert "8 more rows not shown" in text and "█ ≥ 1: 1" in text and "2800 entries" in text


def test_heatmap_wraps_1d() -> None:
    text, _ = render(heatmap(np.linspace(0, 2, 100), "b"))
    lines = grid_lines(text)
    assert [line.split()[0] for line in lines] == ["0", "64"]
    assert sum(line.count(c) for line in lines for c in "░▒█") == 100


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2)), np.array([-1.0])])
def test_heatmap_rejects_what_it_cannot_show(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        heatmap(bad, "x")


def test_loglog_places_points_and_marks() -> None:
    xs = [10.0**-k for k in range(1, 13)]
    ys = [abs(k - 6) * 1e-3 + 1e-9 for k in range(1, 13)]  # a V with its bottom at 1e-6
    text, _ = render(loglog([Series("v", xs, ys, best=1e-6)], marks=[VMark(1e-5, "used")]))
    plot = text.splitlines()
    assert text.count("★") == 2  # the point and the legend
    star_row = next(i for i, line in enumerate(plot) if "★" in line)
    dot_rows = [i for i, line in enumerate(plot) if "•" in line and "legend" not in line]
    assert star_row > max(dot_rows[:-1])  # the best point is the lowest one
    assert "┊ used" in text and sum(line.count("┊") for line in plot) >= 10


def test_loglog_with_nothing_to_plot() -> None:
    text, _ = render(loglog([Series("v", [1e-3], [0.0])]))
    assert "nothing to plot" in text

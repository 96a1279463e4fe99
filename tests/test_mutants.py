"""Behaviours a mutation audit found unpinned (issue 28): each test names the behaviour a user
relies on and fails when the mechanism behind it breaks. Small and fast on purpose: the mutation
script (benchmarks/mutate.py) runs this file first for every mutant."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.draws import sample_indices
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import LimitError
from gradcheck_cli.functions.pairs import backward_name
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.plan.limits import Limits
from gradcheck_cli.report.junit import result_to_junit
from gradcheck_cli.spec.config import load_config
from gradcheck_cli.verdict.steps import ecnoise, error_bounds, ladder

from .conftest import CONFIGS

runner = CliRunner()
U64 = float(np.finfo(np.float64).eps) / 2


def _tanh_case() -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(0)
    return make_layer("tanh", (6,), rng), rng.standard_normal((4, 6))


# -- 1. the resolution promise: a tensor resolved less finely than promised is not a pass --------


def test_a_pass_never_claims_more_resolution_than_the_promise() -> None:
    """Sweep the promised resolution down past what the estimate can reach: every "pass" has a
    reported resolution within the promise, every tensor resolved worse than the promise (even
    2× worse, not only 10×) is inconclusive, and --strict fails it."""
    layer, x = _tanh_case()
    near_misses = 0
    for promise in np.geomspace(1e-8, 1e-13, 11):
        p = check_layer(layer, x, seed=0, resolution=promise).params[0]
        if p.verdict == "pass":
            assert p.resolution <= promise, (promise, p.resolution)
        else:
            assert p.verdict == "inconclusive" and p.resolution > promise, (promise, p)
            near_misses += p.resolution < 10 * promise
            assert not check_layer(layer, x, seed=0, resolution=promise, strict=True).passed
    assert near_misses >= 1  # the sweep did reach a tensor resolved to 1–10× the promise


# -- 2. the ladder's error bound bounds the error ----------------------------------------------


class Cube:
    """out = x³ (L = Σ x³·g): a central difference's error is exactly g·h² (no h⁴ term)."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x**3

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return 3 * self.x**2 * dout


def test_the_ladder_error_bound_covers_the_actual_error_at_every_step() -> None:
    """E(h) is what a verdict and the reported resolution rest on: at every ladder step it must
    be at least the estimate's actual error (here truncation, known exactly), not an
    underestimate of it (the Richardson difference alone is 15/16 of the truncation)."""
    x = np.array([[0.3, -0.7, 1.1, 0.05]])
    g = np.array([[1.0, 2.0, -0.5, 3.0]])
    net = Network([Cube()], WeightedSum(g), x=x, trusted=[False])
    pert = Perturber(net, x)
    ref = net.parameters()[0]
    lad = ladder(pert, ref, np.arange(x.size))
    err = error_bounds(lad, 0.0, U64)
    actual = np.abs(lad.central - (3 * x**2 * g).reshape(-1, 1))
    usable = np.isfinite(err)
    assert usable.sum() > 20
    assert np.all(err[usable] >= actual[usable]), np.max(actual[usable] / err[usable])


# -- 3. ECnoise measures the noise it is given -------------------------------------------------


def test_ecnoise_measures_white_noise_at_its_true_level() -> None:
    """On tables of a smooth function plus white noise of level σ, the estimate is σ within
    ±25 % (median over many tables): a level 1.4–2× too high would make correct layers
    inconclusive, one too low would pass noise as resolution."""
    rng = np.random.default_rng(0)
    sigma = 1e-6
    t = np.linspace(-3, 3, 7) * 1e-3
    found = []
    for _ in range(300):
        level, info = ecnoise(np.sin(1 + t) + sigma * rng.standard_normal(7))
        if info == 1:
            found.append(level / sigma)
    assert len(found) > 200
    assert 0.8 <= float(np.median(found)) <= 1.25, np.median(found)


# -- 4. a kink needs evidence: a wrong mask near (not at) the kink fails ------------------------


class NearZeroMaskReLU:
    """relu with a wrong mask: backward passes dout where x > −1e-2 (true slope 0 for x < 0)."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (self.x > -1e-2)


def test_a_wrong_relu_mask_near_zero_fails_and_is_not_called_a_kink() -> None:
    """Entries just below 0 (at δ, the ladder's nearest step 1.3·δ): the one-sided gap shrinks by
    more than 2× between the two finest steps that straddle 0, so there is no kink at θ. The
    wrong mask must fail (exit 1), not pass as a "kink"."""
    steps = 0.1 * 4.0 ** -np.arange(2, 6)  # 6.25e-3 … 9.8e-5: ladder steps of |θ| < 1
    x = -(steps / 1.3).reshape(1, -1)
    res = check_layer(NearZeroMaskReLU(), x, seed=0, dout=np.ones_like(x))
    (p,) = res.params
    assert not res.passed and p.verdict == "fail" and p.kinks == 0, (p.verdict, p.note)


def test_a_correct_relu_near_zero_passes() -> None:
    """The negative twin: the same inputs with the correct mask pass."""
    steps = 0.1 * 4.0 ** -np.arange(2, 6)
    x = -(steps / 1.3).reshape(1, -1)
    res = check_layer(make_layer("relu", (4,)), x, seed=0, dout=np.ones_like(x))
    assert res.passed and res.params[0].verdict in ("pass", "zero"), res.params[0].note


# -- 5. a stratified sample can reach every entry -----------------------------------------------


@pytest.mark.parametrize("size, k", [(10, 5), (7, 3), (100, 50), (9, 8)])
def test_every_entry_can_be_sampled(size: int, k: int) -> None:
    """Over seeds, the sample of k of n entries reaches every entry (the last of each stratum
    too), k distinct sorted entries each time, one per stratum."""
    seen = np.zeros(size, dtype=bool)
    edges = np.linspace(0, size, k + 1).astype(np.int64)
    for seed in range(200):
        idx = sample_indices(size, k, seed, "W")
        assert len(idx) == k and np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < size
        assert np.all((idx >= edges[:-1]) & (idx < edges[1:]))
        seen[idx] = True
    assert seen.all(), np.flatnonzero(~seen)


# -- 6. complex step: a non-analytic loss is refused (exit 2), never judged ----------------------


class AbsCubeLoss:
    """Σ |r|³ written as |r|·r² (r = pred − y): not complex-analytic, yet Im L is not 0 (it is
    2/3 of the true slope), so only the probe can tell; the backward is correct."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> Any:
        self.r = pred - target
        return np.sum(np.abs(self.r) * self.r**2)

    def backward(self) -> np.ndarray:
        return 3 * np.abs(self.r) * self.r


def test_complex_step_refuses_a_non_analytic_plugin_loss() -> None:
    """--method complex with a loss that mangles the imaginary part: a PluginError (exit 2)
    naming the loss, not a false failure of a correct network."""
    from gradcheck_cli.errors import PluginError

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    net = Network(
        [make_layer("linear", (4,), rng, out=2)], AbsCubeLoss(), loss_label="l.py:AbsCubeLoss", x=x,
        target=rng.standard_normal((3, 2)), trusted=[True],
    )  # fmt: skip
    with pytest.raises(PluginError, match=r"the loss \(l.py:AbsCubeLoss\)"):
        check_network(net, method="complex", inputs=False)
    assert check_network(net).passed  # the loss is right: central differences pass it


# -- 7. a report never writes into an input, however it is linked ------------------------------


def test_a_step_summary_hard_linked_to_the_config_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$GITHUB_STEP_SUMMARY a hard link to the config being checked: nothing is appended to the
    config (exit 2, the input named)."""
    cfg = tmp_path / "net.yaml"
    cfg.write_bytes((CONFIGS / "seed_mlp.yaml").read_bytes())
    before = cfg.read_bytes()
    link = tmp_path / "summary.md"
    os.link(cfg, link)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(link))
    r = runner.invoke(app, ["run", str(cfg), "--format", "github"], env={"COLUMNS": "240"})
    assert cfg.read_bytes() == before
    assert r.exit_code == 2 and "input of this run" in r.output


# -- 8. the memory limit counts what is held together ------------------------------------------


def test_memory_is_refused_on_the_running_total_not_per_allocation(tmp_path: Path) -> None:
    """Input and layer outputs each under the limit, together over it: refused before building
    (LimitError naming the total), and the same config fits a limit above the total."""
    from gradcheck_cli.engine.build import build_network

    cfg_path = tmp_path / "big.yaml"
    cfg_path.write_text("input: {shape: [1000, 50]}\nlayers: [relu, tanh, sigmoid]\n")
    cfg = load_config(cfg_path)
    one = 1000 * 50 * 8  # 400 kB per array
    with pytest.raises(LimitError, match="refused before allocating"):
        build_network(cfg, limits=Limits(max_bytes=2.5 * one))
    assert len(build_network(cfg, limits=Limits(max_bytes=5 * one)).layers) == 3


# -- 9. JUnit: every failing tensor has a <failure> element ------------------------------------


def test_junit_has_a_failure_element_for_every_strict_inconclusive_tensor() -> None:
    """--strict + an inconclusive tensor fails the run; the JUnit report must show it as a
    <failure> (CI dashboards count those), not only in the failures attribute."""
    layer, x = _tanh_case()
    res = check_layer(layer, x, seed=0, resolution=1e-13, strict=True)
    assert not res.passed and res.params[0].verdict == "inconclusive"
    root = ET.fromstring(result_to_junit(res))
    cases = root.iter("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == sum(not p.passed for p in res.params) >= 1
    assert sum(int(s.get("failures", 0)) for s in root.iter("testsuite")) == len(failed)


# -- 10. attribution names a layer only on evidence ---------------------------------------------


def test_strict_attribution_does_not_blame_a_correct_inconclusive_layer() -> None:
    """Under --strict a correct network whose tensors are only inconclusive fails the run, but no
    layer is named as failing on its own: inconclusive is not evidence of a wrong backward."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    net = Network(
        [make_layer("linear", (3,), rng, out=4), make_layer("tanh", (4,), rng)],
        SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 4), trusted=[True, True],
    )  # fmt: skip
    res = check_network(net, strict=True, resolution=1e-13)
    assert not res.passed and {p.verdict for p in res.params} == {"inconclusive"}
    assert res.attribution == ()


class WrongScale:
    """out = x·W with dW 10 % too large."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.params = {"W": rng.standard_normal((3, 4)) / 2}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": 1.1 * (self.x.T @ dout)}
        return dout @ self.params["W"].T


def test_strict_attribution_names_the_wrong_layer_and_not_a_correct_inconclusive_one() -> None:
    """Attribution runs only when a gradient disagrees (issue 22's counted outcomes); then, under
    --strict with a promise no estimate resolves, the correct tanh's own re-check is only
    inconclusive: the wrong layer is named, the tanh is not."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    net = Network(
        [WrongScale(rng), make_layer("tanh", (4,), rng)],
        SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 4), trusted=[False, True],
    )  # fmt: skip
    res = check_network(net, strict=True, resolution=1e-13)
    assert {p.name: p.verdict for p in res.params} == {
        "input": "inconclusive",
        "0.WrongScale.W": "fail",
    }
    assert res.attribution == ("layer 0 (WrongScale) fails on its own (WrongScale.W)",)
    alone = check_layer(make_layer("tanh", (4,)), x @ net.layers[0].params["W"], seed=0,
                        resolution=1e-13, strict=True)  # fmt: skip
    assert not alone.passed and {p.verdict for p in alone.params} == {"inconclusive"}


# -- 11. function pairs: the last "forward" word names the backward -----------------------------


def test_the_last_forward_word_is_swapped_for_the_backward() -> None:
    assert backward_name("scale_forward_forward") == "scale_forward_backward"
    assert backward_name("conv_forward_naive") == "conv_backward_naive"
    assert backward_name("lstm_step_fwd") == "lstm_step_bwd"
    assert backward_name("relu") is None


def test_fn_finds_the_backward_of_a_name_with_two_forward_words(tmp_path: Path) -> None:
    """`gradcheck fn ops.py:scale_forward_forward` checks the pair (exit 0), not exit 2."""
    ops = tmp_path / "ops.py"
    ops.write_text(
        "def scale_forward_forward(x, w):\n    return x * w, (x, w)\n\n"
        "def scale_forward_backward(dout, cache):\n"
        "    x, w = cache\n    return dout * w, (dout * x).sum(0)\n"
    )
    r = runner.invoke(
        app, ["fn", f"{ops}:scale_forward_forward", "--shape", "x=3x4", "--shape", "w=4", "-q"]
    )
    assert r.exit_code == 0, r.output

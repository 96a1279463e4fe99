"""Speed II: measured estimates, budgets that hold, sampled checks that probe, bounded
localisation of a failed probe."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy
from gradcheck_cli.plan.limits import estimate_time
from gradcheck_cli.plan.localise import LEAF, MAX_BLOCK_TESTS, MAX_LEAF_ENTRIES
from gradcheck_cli.plan.modes import choose, evaluation_operations


class OneEntryLinear:
    """x @ W + b whose dW is wrong by a factor (1 + r) at one flat entry (None: correct)."""

    row_independent = True

    def __init__(self, rng: Any, d: int, out: int, entry: int | None, r: float = 0.5) -> None:
        self.params = {
            "W": rng.standard_normal((d, out)) / np.sqrt(d),
            "b": rng.standard_normal(out),
        }
        self.grads: dict[str, Any] = {}
        self.entry, self.r = entry, r

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, d: Any) -> Any:
        dw = self.x.T @ d
        if self.entry is not None:
            dw.flat[self.entry] *= 1 + self.r
        self.grads = {"W": dw, "b": d.sum(0)}
        return d @ self.params["W"].T


def wide(seed: int, entry: int | None, *, d: int = 120, out: int = 50, r: float = 0.5) -> Network:
    rng = np.random.default_rng(seed)
    layers = [
        OneEntryLinear(rng, d, out, entry, r),
        make_layer("tanh", (out,)),
        make_layer("linear", (out,), rng, out=5),
    ]
    x = rng.standard_normal((8, d))
    return Network(
        layers,
        SoftmaxCrossEntropy(),
        x=x,
        target=rng.integers(0, 5, 8),
        trusted=[False, True, True],
    )


# -- sample mode also probes; a failed probe is localised, within bounds ----------------------------
@pytest.mark.parametrize("seed", range(6))
def test_sample_mode_finds_one_wrong_entry_it_did_not_sample(seed: int) -> None:
    entry = int(np.random.default_rng(100 + seed).integers(0, 120 * 50))
    counted: list[int] = []
    result = check_network(
        wide(seed, entry), mode="sample", samples=8, seed=seed, attribute=False, inputs=False,
        progress=lambda done, planned: counted.append(done),
    )  # fmt: skip
    bad = {p.name: p for p in result.failures}
    assert list(bad) == ["0.OneEntryLinear.W"], result.failures
    w = bad["0.OneEntryLinear.W"]
    assert w.mode == "sample+probes→localised" and w.worst
    assert w.worst[0].index == tuple(int(i) for i in np.unravel_index(entry, (120, 50)))
    # bounded: far fewer evaluations than the 12,000 an entry-by-entry sweep of W needs
    bound = 4 * MAX_BLOCK_TESTS + 2 * (MAX_LEAF_ENTRIES + 8) + 200
    assert counted[-1] <= bound and w.checked <= MAX_LEAF_ENTRIES + 8


@pytest.mark.parametrize("seed", range(12))
def test_sample_mode_with_probes_passes_correct_layers(seed: int) -> None:
    result = check_network(wide(seed, None), mode="sample", samples=8, seed=seed, inputs=True)
    assert result.passed, [(p.name, p.mode, p.note) for p in result.failures]
    modes = {p.name: p.mode for p in result.params}
    assert modes["0.OneEntryLinear.W"] == modes["input"] == "sample+probes", modes


def test_directional_failure_is_localised_not_swept() -> None:
    entry = 4321
    result = check_network(wide(3, entry), mode="directional", seed=3, attribute=False)
    w = next(p for p in result.failures)
    assert w.name == "0.OneEntryLinear.W" and w.mode == "directional→localised"
    assert w.checked <= MAX_LEAF_ENTRIES and w.checked <= 4 * LEAF
    assert w.worst[0].index == tuple(int(i) for i in np.unravel_index(entry, (120, 50)))


def test_a_spread_error_still_fails_when_no_entry_stands_out() -> None:
    """Every entry of W 1 % wrong: whatever localisation finds or not, the tensor fails."""

    class AllScaled(OneEntryLinear):
        def backward(self, d: Any) -> Any:
            dx = super().backward(d)
            self.grads["W"] = self.grads["W"] * 1.01
            return dx

    net = wide(4, None)
    old = net.layers[0]
    net.layers[0] = AllScaled(np.random.default_rng(4), 120, 50, None)
    net.layers[0].params = old.params
    result = check_network(net, mode="directional", seed=4, attribute=False, inputs=False)
    assert [p.name for p in result.failures] == ["0.OneEntryLinear.W"]


# -- budgets hold -------------------------------------------------------------------------------------
class SlowScalars:
    """n scalar parameters, each a tensor of its own; forward costs ~``delay`` seconds."""

    def __init__(self, n: int, delay: float) -> None:
        self.params = {f"g{i}": np.array([1.0 + 0.01 * i]) for i in range(n)}
        self.grads: dict[str, Any] = {}
        self.delay = delay

    def forward(self, x: Any) -> Any:
        time.sleep(self.delay)
        self.x = x
        return x * sum(float(v[0]) for v in self.params.values())

    def backward(self, d: Any) -> Any:
        g = float((d * self.x).sum())
        self.grads = {k: np.array([g]) for k in self.params}
        return d * sum(float(v[0]) for v in self.params.values())


def slow_net(n: int = 400, delay: float = 0.002) -> Network:
    from gradcheck_cli.layers.losses import MSE

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    return Network([SlowScalars(n, delay)], MSE(), x=x, target=rng.standard_normal((4, 3)))


class TickClock:
    """A clock that advances by ``delay`` per forward call of SlowScalars (no real time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("mode", ["auto", "full", "sample"])
def test_budget_holds_and_says_what_was_not_checked(mode: str) -> None:
    budget, delay = 0.4, 0.002
    clock = TickClock()
    net = slow_net(400, 0.0)
    layer = net.layers[0]
    forward = layer.forward

    def ticking(x: Any) -> Any:
        clock.now += delay
        return forward(x)

    layer.forward = ticking
    result = check_network(net, mode=mode, budget=budget, inputs=False, attribute=False, clock=clock)
    # every tensor gets its cheap look (one-entry tensors: the entry itself), so the budget ends
    # within itself plus that round (2 evaluations per tensor) plus one engine step
    assert len(result.params) == 400
    assert clock.now <= budget + 400 * 2 * delay + 4 * delay, clock.now
    assert all(p.verdict != "not checked" for p in result.params)


# -- estimates are measured, and auto's rule -----------------------------------------------------------
class WeakShift:
    """x @ W + 1e-7·c: W matters, the scalar c barely does (its gradient is ~1e-7 of L's scale,
    so the first central estimates cannot resolve it: every entry gets a second look)."""

    def __init__(self, rng: Any) -> None:
        self.params = {"W": rng.standard_normal((3, 3)), "c": np.array([0.5])}
        self.grads: dict[str, Any] = {}

    def forward(self, x: Any) -> Any:
        self.x = x
        return x @ self.params["W"] + 1e-7 * self.params["c"]

    def backward(self, d: Any) -> Any:
        self.grads = {"W": self.x.T @ d, "c": np.array([1e-7 * d.sum()])}
        return d @ self.params["W"].T


def test_the_pilot_foresees_the_second_looks_and_counts_them() -> None:
    """The pilot's own estimates say which tensors the judge will look at again (the same test
    of resolution), and such a tensor is estimated with its step ladder and noise table."""
    from gradcheck_cli.layers.losses import MSE
    from gradcheck_cli.plan.timing import JUDGE_ENTRY_SECONDS, JUDGE_TENSOR_SECONDS, time_engine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    net = Network([WeakShift(rng)], MSE(), x=x, target=rng.standard_normal((5, 3)))
    result = check_network(net, mode="full", inputs=False, attribute=False)
    assert result.passed
    looked = tuple(p.refined > 0 for p in result.params)
    assert looked == (False, True)
    # the clock counts rows through the layer (copies × batch), never real time
    clock = TickClock()
    layer = net.layers[0]
    forward = layer.forward

    def counted(x: Any) -> Any:
        clock.now += x.shape[0] if np.ndim(x) else 1
        return forward(x)

    layer.forward = counted
    refs = net.parameters(include_input=False)
    timing = time_engine(Perturber(net, x), refs, eps=1e-5, clock=clock, cap=float("inf"))
    assert tuple(t > 0 for t in timing.look_entry) == tuple(t > 0 for t in timing.look_fixed)
    assert tuple(t > 0 for t in timing.look_entry) == looked
    # a ladder is ~15 evaluation pairs: well above one pair, the first estimate's
    assert timing.look_entry[1] > 3 * timing.per_entry[1]
    book = JUDGE_ENTRY_SECONDS  # bookkeeping besides the engine, per entry and per tensor
    assert timing.entry_costs()[1] == pytest.approx(
        timing.per_entry[1] + timing.look_entry[1] + book
    )
    assert timing.fixed() == pytest.approx(timing.look_fixed[1] + 2 * JUDGE_TENSOR_SECONDS)
    # a four-point stencil doubles the first estimate's share, not the ladder's
    four = 2 * timing.per_entry[1] + timing.look_entry[1] + book
    assert timing.entry_costs(2.0)[1] == pytest.approx(four)
    # no second looks at all for the complex step or directional probes
    none = time_engine(
        Perturber(net, x), net.parameters(include_input=False), eps=1e-5, resolution=None
    )
    assert none.look_entry == none.look_fixed == (0.0, 0.0)


def test_a_float32_network_is_estimated_as_checked_in_float64() -> None:
    """A float32 network is checked against float64 numerics (precision.py), whose first
    estimates resolve the promise; the estimate must not foresee float32's second looks (it
    said 3.2 s for a 0.08 s check)."""
    rng = np.random.default_rng(0)
    layers = [
        make_layer("linear", (64,), rng, out=128, dtype="float32"),
        make_layer("tanh", (128,)),
        make_layer("linear", (128,), rng, out=10, dtype="float32"),
    ]
    x = rng.standard_normal((16, 64)).astype(np.float32)
    net = Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 10, 16), trusted=[True] * 3
    )
    cost = estimate_time(net, inputs=True, eps=1e-5)
    result = check_network(net, mode="full", attribute=False)
    assert result.passed and result.reference == "float64"
    assert not any(p.refined for p in result.params)
    assert "second look" not in cost.detail, cost.detail
    assert all(a.dtype == np.float32 for la in net.layers for a in la.params.values())


def test_auto_never_picks_a_less_thorough_mode_that_costs_more() -> None:
    """Many one-entry tensors: a full check costs what directional probes cost, or less (counted
    operations: the same answer on any machine)."""
    net = slow_net(50, 0.0)
    pert = Perturber(net, net.x)
    refs = net.parameters(include_input=False)
    sizes = [pert.array(r).size for r in refs]
    est = choose(sizes, evaluation_operations(pert, refs), samples=16, probes=2, limit=1e-9)
    assert est.full <= est.directional
    assert est.chosen == "full"


# -- a suite uses the machine: --jobs ------------------------------------------------------------------
def _suite_dir(tmp_path: Any) -> Any:
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    d = tmp_path / "suite"
    d.mkdir()
    for name in ("seed_mlp.yaml", "small_cnn.yaml", "custom_layer.yaml", "my_layers.py",
                 "regression_mse.yaml", "residual_mlp.yaml"):  # fmt: skip
        shutil.copy(root / name, d / name)
    (d / "broken.yaml").write_text("layers: [{type: nope}]\n")
    (d / "wrong.yaml").write_text(
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\ncheck: {rtol: 0.0, atol: 0.0, eps: 0.5}\n"
    )
    return d


def test_jobs_gives_the_bytes_of_a_serial_run(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    d = _suite_dir(tmp_path)
    runs = {}
    for jobs in ("1", "2", "auto"):
        xml = tmp_path / f"j{jobs}.xml"
        r = CliRunner().invoke(
            app, ["run", str(d), "--format", "json", "--junit-xml", str(xml), "--jobs", jobs]
        )
        runs[jobs] = (r.exit_code, r.stdout, xml.read_bytes())
    assert runs["1"][0] == 2  # broken.yaml
    assert runs["2"] == runs["1"] and runs["auto"] == runs["1"]
    table1 = CliRunner().invoke(app, ["run", str(d), "-j", "1"])
    table2 = CliRunner().invoke(app, ["run", str(d), "-j", "2"])
    assert (table2.exit_code, table2.stdout) == (table1.exit_code, table1.stdout)


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_jobs_must_be_a_count_or_auto(bad: str) -> None:
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    r = CliRunner().invoke(app, ["run", "--jobs", bad])
    assert r.exit_code == 2 and "--jobs must be a number of worker processes" in r.output


@pytest.mark.parametrize("mode", ["full", "sample", "directional"])
def test_progress_never_overruns_its_total(mode: str) -> None:
    """Refinement of failing entries and localisation after a failed probe are counted in the
    total: the bar never shows more done than planned, and ends full."""
    ticks: list[tuple[int, int]] = []
    check_network(
        wide(1, 777), mode=mode, samples=8 if mode == "sample" else None, seed=1, attribute=False,
        progress=lambda done, planned: ticks.append((done, planned)),
    )  # fmt: skip
    assert ticks and all(done <= planned for done, planned in ticks)
    assert ticks[-1][0] == ticks[-1][1]


def test_progress_counts_attribution_too() -> None:
    """A failing network is re-checked layer by layer: that work is in the same count, whose
    total grows as each layer starts; it never shows more done than planned and ends full."""
    from itertools import pairwise

    from gradcheck_cli.layers.activations import ReLU
    from gradcheck_cli.layers.losses import WeightedSum

    from .buggy_layers import LinearBiasMean

    def run(attribute: bool) -> tuple[Any, list[tuple[int, int]]]:
        rng = np.random.default_rng(0)
        net = Network(
            [LinearBiasMean((4,), rng, out=5), ReLU(), LinearBiasMean((5,), rng, out=3)],
            WeightedSum(rng.standard_normal((6, 3))),
            x=rng.standard_normal((6, 4)),
        )
        ticks: list[tuple[int, int]] = []
        res = check_network(net, attribute=attribute, progress=lambda d, p: ticks.append((d, p)))
        return res, ticks

    res, ticks = run(attribute=True)
    _, alone = run(attribute=False)
    assert not res.passed and res.attribution  # attribution ran ...
    assert ticks[-1][0] > alone[-1][0]  # ... and its evaluations were counted
    assert all(done <= planned for done, planned in ticks)
    assert all(b[0] >= a[0] for a, b in pairwise(ticks))  # done never goes back
    assert ticks[-1][0] == ticks[-1][1]

"""Every ✓ earned: coverage before depth under a budget, outcomes counted like pytest, plans that
do not depend on the clock, attribution that never replaces a verdict.

No test here reads a wall clock: budgets run on an injected clock that advances with every loss
evaluation (a "slow layer" costs clock time, not real time), plans are compared across clocks.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import numpy as np
import pytest

from gradcheck_cli import check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy
from gradcheck_cli.plan import modes
from gradcheck_cli.report.github import annotation_lines
from gradcheck_cli.report.jsondoc import to_json_dict
from gradcheck_cli.report.junit import result_to_junit
from gradcheck_cli.report.tables import summary
from gradcheck_cli.results import CheckResult, ParamResult
from gradcheck_cli.spec.schemas import report_schema


class Clock:
    """Seconds that pass only when a slow layer runs (``cost`` per forward call)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowLinear:
    """A correct linear layer whose every forward costs ``cost`` seconds of ``clock``."""

    def __init__(self, rng: Any, d: int, out: int, clock: Clock, cost: float, bug: float = 0.0):
        self.params = {"W": rng.standard_normal((d, out)) * 0.3, "b": np.zeros(out)}
        self.grads: dict[str, Any] = {}
        self.clock, self.cost, self.bug = clock, cost, bug

    def forward(self, x: Any) -> Any:
        self.clock.now += self.cost
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: Any) -> Any:
        self.grads = {"W": self.x.T @ dout * (1 + self.bug), "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


def slow_net(clock: Clock, *, cost: float = 0.005, bug_last: float = 0.0, seed: int = 0) -> Network:
    """D4's shape: three slow linear layers with tanh between, softmax cross-entropy."""
    rng = np.random.default_rng(seed)
    layers = [
        SlowLinear(rng, 30, 20, clock, cost),
        make_layer("tanh", (20,)),
        SlowLinear(rng, 20, 20, clock, cost),
        make_layer("tanh", (20,)),
        SlowLinear(rng, 20, 3, clock, cost, bug=bug_last),
    ]
    return Network(
        layers, SoftmaxCrossEntropy(), x=rng.standard_normal((4, 30)), target=rng.integers(0, 3, 4)
    )


# -- coverage before depth, budgets that hold ---------------------------------------------------------
@pytest.mark.parametrize(("budget", "cost"), [(2.0, 0.005), (0.5, 0.005), (5.0, 0.02), (1.0, 0.001)])
def test_every_tensor_gets_a_look_and_the_budget_holds(budget: float, cost: float) -> None:
    clock = Clock()
    result = check_network(slow_net(clock, cost=cost), budget=budget, clock=clock, attribute=False)
    assert len(result.params) == 7
    assert all(p.verdict != "not checked" for p in result.params)  # every tensor looked at
    assert all(p.probes > 0 or p.checked >= 1 for p in result.params)
    # the budget ends a round: at most the cheap looks (a few evaluations per tensor, 3 forward
    # calls each) and one engine step past it
    looks = 7 * 8 * 3 * cost
    assert clock.now <= budget + looks + 2 * 3 * cost, clock.now
    assert result.passed  # nothing is wrong ...
    if not result.verified:  # ... but what the budget cut short is not under a ✓
        line = summary(result).plain.splitlines()[-2:]
        assert "⚠" in line[0] and "✓" not in "\n".join(line), line
        assert "partly checked (budget)" in line[0]
        other = Clock()
        strict = check_network(
            slow_net(other, cost=cost), budget=budget, clock=other, attribute=False, strict=True
        )
        assert not strict.passed  # --strict fails everything not verified


def test_a_roomy_budget_verifies_everything() -> None:
    clock = Clock()
    result = check_network(slow_net(clock, cost=1e-4), budget=1e3, clock=clock, attribute=False)
    assert result.verified and all(p.checked == int(np.prod(p.shape)) for p in result.params)
    assert summary(result).plain.splitlines()[-1].startswith("✓ all 7 gradients agree")


@pytest.mark.parametrize("seed", range(4))
def test_a_bug_in_the_last_layer_of_a_slow_network_is_caught_within_its_budget(seed: int) -> None:
    clock = Clock()
    net = slow_net(clock, cost=0.005, bug_last=1e-3, seed=seed)
    result = check_network(net, budget=1.0, clock=clock, attribute=False)
    assert [p.name for p in result.failures] == ["4.SlowLinear.W"]
    assert clock.now <= 1.0 + 7 * 8 * 3 * 0.005 + 0.05


def test_a_chunk_of_copies_never_stretches_the_budget() -> None:
    """Five slow layers, the last one wrong: localising it judges its entries with step ladders,
    thousands of copies a chunk, each a forward call of the slow layer. Under a budget chunks
    are capped from the tensor's own cheap look, so the budget is checked often enough."""
    clock, cost = Clock(), 0.005
    rng = np.random.default_rng(0)
    layers: list[Any] = []
    for i in range(5):
        out = 3 if i == 4 else 20
        layers.append(SlowLinear(rng, 30 if i == 0 else 20, out, clock, cost, bug=1e-3 * (i == 4)))
        if i < 4:
            layers.append(make_layer("tanh", (20,)))
    x = rng.standard_normal((4, 30))
    net = Network(layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 4))
    result = check_network(net, budget=3.0, clock=clock)
    assert [p.name for p in result.failures] == ["8.SlowLinear.W"]
    looks = 11 * 8 * 5 * cost  # the cheap looks: ≤ 8 evaluations per tensor, ≤ 5 slow layers
    assert clock.now <= 3.0 + looks + 0.05 * 3.0 + 5 * cost, clock.now


def test_attribution_never_stretches_a_budget_that_ran_out() -> None:
    clock = Clock()
    net = slow_net(clock, cost=0.005, bug_last=1e-3)
    result = check_network(net, budget=0.5, clock=clock)
    assert [p.name for p in result.failures] == ["4.SlowLinear.W"] and not result.attribution
    assert any(n.startswith("not attributed to a layer: the budget ran out") for n in result.notes)
    assert clock.now <= 0.5 + 7 * 8 * 3 * 0.005 + 0.05


def test_without_a_budget_the_plan_does_not_depend_on_the_clock() -> None:
    """The same config and seed check the same entries whatever the clock says (a busy machine
    is a slow clock): auto decides from counts."""

    def run(per_call: float) -> list[tuple[str, str, int, Any]]:
        clock = Clock()
        rng = np.random.default_rng(0)
        net = Network(
            [
                SlowLinear(rng, 300, 120, clock, per_call),
                make_layer("tanh", (120,)),
                SlowLinear(rng, 120, 10, clock, per_call),
            ],
            SoftmaxCrossEntropy(), x=rng.standard_normal((8, 300)), target=rng.integers(0, 10, 8),
        )  # fmt: skip
        res = check_network(net, clock=clock, attribute=False, mode="auto")
        return [
            (p.name, p.mode, p.checked, None if p.numeric is None else np.isnan(p.numeric).tobytes())
            for p in res.params
        ]

    assert run(0.0) == run(10.0)


def test_auto_chooses_from_counts() -> None:
    sizes, ops = [1000, 10, 200_000], [1e3, 1e3, 1e6]
    est = modes.choose(sizes, ops, samples=16, probes=2, grow=True, limit=1e12)
    assert est.chosen == "full" and est.full <= 1e12
    est = modes.choose(sizes, ops, samples=16, probes=2, grow=True, limit=1e9)
    assert est.chosen == "sample" and est.sample <= 1e9 and est.samples > 16
    # one more entry per tensor would not fit
    bigger = modes.choose(sizes, ops, samples=est.samples + 1, probes=2, limit=1e9)
    assert bigger.sample > 1e9
    est = modes.choose(sizes, ops, samples=16, probes=2, limit=1e3)
    assert est.chosen == "directional"
    # never a less thorough mode that costs more: one-entry tensors are cheapest checked fully
    est = modes.choose([1] * 50, [1.0] * 50, samples=16, probes=2, limit=1e-9)
    assert est.full <= est.directional and est.chosen == "full"
    assert modes.choose(sizes, ops, samples=16, probes=2, grow=True) == modes.choose(
        sizes, ops, samples=16, probes=2, grow=True
    )


def test_operations_are_counted_from_sizes() -> None:
    # a linear layer: rows × |W| multiply-adds (+ input, output and the call's overhead)
    out = np.zeros((32, 256))
    ops = modes.layer_operations(32 * 784, out, [np.zeros((784, 256)), np.zeros(256)])
    assert ops == modes.CALL_OPERATIONS + 32 * 784 + out.size + 32 * 784 * 256 + 32 * 256
    # a conv kernel (F, C, k, k) onto (N, F, H, W): |out| · C·k·k
    out = np.zeros((8, 8, 16, 16))
    ops = modes.layer_operations(8 * 3 * 256, out, [np.zeros((8, 3, 3, 3))])
    assert ops == modes.CALL_OPERATIONS + 8 * 3 * 256 + out.size + out.size * 27


# -- outcomes counted like pytest ------------------------------------------------------------------
def _p(name: str, verdict: str = "pass", passed: bool = True, cut: str | None = None) -> ParamResult:
    return ParamResult(name, (3,), passed, 1e-9, 1e-12, 3, 0, verdict=verdict, cut=cut)


def _result(*params: ParamResult, strict: bool = False) -> CheckResult:
    return CheckResult(
        name="net", seed=0, method="central", eps=1e-5, rtol=1e-7, atol=0.0, dtype="float64",
        loss=1.0, params=params, strict=strict,
    )  # fmt: skip


MIXED = (
    _p("a"), _p("b"), _p("c", "zero"), _p("d", "inconclusive"), _p("e", "kink"),
    _p("f", cut="budget: probes only"),
)  # fmt: skip


def test_the_closing_line_counts_every_outcome() -> None:
    r = _result(*MIXED)
    assert r.passed and not r.verified
    assert r.counts == {
        "agree": 2, "zero here": 1, "at a kink": 1, "inconclusive": 1, "partly checked (budget)": 1,
    }  # fmt: skip
    text = summary(r).plain
    assert "✓" not in text
    assert text.startswith(
        "⚠ 2 agree · 1 zero here · 1 at a kink · 1 inconclusive · 1 partly checked (budget)"
    )
    assert "inconclusive: d" in text and "partly checked (budget): f" in text
    verified = _result(_p("a"), _p("b", "zero"))
    assert summary(verified).plain.startswith("✓ 1 agree · 1 zero here")
    assert summary(_result(_p("a"), _p("b"))).plain.startswith("✓ all 2 gradients agree")
    failed = _result(_p("a"), _p("w", "fail", passed=False), _p("d", "inconclusive"))
    assert summary(failed).plain.startswith(
        "✗ 1 of 3 gradients disagree: w (1 disagree · 1 agree · 1 inconclusive)"
    )


def test_json_junit_and_github_carry_the_counts() -> None:
    r = _result(*MIXED)
    doc = to_json_dict(r)
    jsonschema.validate(json.loads(json.dumps(doc)), report_schema())
    assert doc["counts"]["partly checked (budget)"] == 1 and doc["verified"] is False
    assert [x["outcome"] for x in doc["results"]][-1] == "partly checked (budget)"
    root = ET.fromstring(result_to_junit(r))
    skipped = {c.get("name"): c.find("skipped") for c in root.iter("testcase")}
    assert {n for n, s in skipped.items() if s is not None} == {"d", "e", "f"}
    assert "budget" in (skipped["f"].get("message") or "")
    assert root.get("skipped") == "3" and root.get("failures") == "0"
    warnings = [line for line in annotation_lines(r) if line.startswith("::warning")]
    assert len(warnings) == 3 and any("inconclusive" in w for w in warnings)


def test_strict_fails_what_the_budget_left_unverified() -> None:
    clock = Clock()
    result = check_network(slow_net(clock), budget=0.3, clock=clock, strict=True, attribute=False)
    cut = [p for p in result.params if p.cut]
    assert cut and all(not p.passed for p in cut)
    assert summary(result).plain.splitlines()[-1].startswith("✗")
    assert "not shown right (--strict)" in summary(result).plain
    # the API's failure message (assert_gradients, the pytest plugin) says the same
    from gradcheck_cli.report.text import failure_report

    assert failure_report(result).startswith(f"{len(cut)} of 7 tensors not shown right (--strict)")


# -- attribution never replaces a verdict ------------------------------------------------------------
class IdsEmbedding:
    """An embedding that takes integer ids (no ``takes_ids`` declared) with the classic
    ``dW[ids] += dout`` bug (repeated ids keep one contribution)."""

    def __init__(self, rng: Any, vocab: int, dim: int, *, fixed: bool = False) -> None:
        self.params = {"W": rng.standard_normal((vocab, dim))}
        self.grads: dict[str, Any] = {}
        self.fixed = fixed

    def forward(self, ids: Any) -> Any:
        self.ids = ids
        return self.params["W"][ids]

    def backward(self, dout: Any) -> Any:
        dW = np.zeros_like(self.params["W"])
        if self.fixed:
            np.add.at(dW, self.ids, dout)
        else:
            dW[self.ids] += dout
        self.grads = {"W": dW}
        return np.zeros(self.ids.shape)


def _emb_net(seed: int, layer: Any) -> Network:
    rng = np.random.default_rng(seed)
    layers = [layer, make_layer("flatten", (6, 3)), make_layer("linear", (18,), rng, out=5)]
    ids = rng.integers(0, 4, (3, 6))
    return Network(layers, SoftmaxCrossEntropy(), x=ids, target=rng.integers(0, 5, 3), discrete=True)


@pytest.mark.parametrize("seed", range(3))
def test_attribution_rechecks_an_integer_input_layer_with_ids(seed: int) -> None:
    net = _emb_net(seed, IdsEmbedding(np.random.default_rng(seed), 4, 3))
    result = check_network(net)
    assert [p.name for p in result.failures] == ["0.IdsEmbedding.W"]
    assert result.attribution and result.attribution[0].startswith("layer 0")
    assert not any("could not be re-checked" in n for n in result.notes)


class BreaksAlone(IdsEmbedding):
    """Fine inside its network; its forward raises whenever it is re-checked alone."""

    calls = 0

    def forward(self, ids: Any) -> Any:
        BreaksAlone.calls += 1
        if getattr(self, "alone", False):
            raise RuntimeError("this layer cannot run alone")
        return super().forward(ids)


def test_a_layer_that_cannot_be_rechecked_alone_is_a_note_not_a_new_verdict() -> None:
    from gradcheck_cli.verdict import attribution

    layer = BreaksAlone(np.random.default_rng(0), 4, 3)
    net = _emb_net(0, layer)
    result = check_network(net, attribute=False)
    assert not result.passed

    def check_one(one: Network) -> CheckResult:
        layer.alone = True
        try:
            return check_network(one, attribute=False)
        finally:
            layer.alone = False

    blamed = attribution.with_attribution(result, net, check_one, discrete=True)
    assert not blamed.passed and blamed.failures == result.failures
    assert any("could not be re-checked alone" in n and "layer 0" in n for n in blamed.notes)

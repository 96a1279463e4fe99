"""Mechanisms a verdict, a refusal or a plan rests on, pinned by behaviour (issue 28, the survivors
of a fresh sample outside the kernels): a loss without a target, the float64 reference of a
gated float32 plugin, the complex-step probe on integer ids, a loss that drifts by far more than
round-off, directional probes on a strongly curved loss, the probes' memory refusal, and the
counted work of a parameter that maps onto no output axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import LimitError
from gradcheck_cli.layers.losses import MSE
from gradcheck_cli.plan.limits import Limits, preflight
from gradcheck_cli.plan.modes import choose, evaluation_operations

runner = CliRunner()


def _gc(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def _clean(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    flat = " ".join(r.output.split())
    for needle in needles:
        assert needle in flat, f"{needle!r} not in:\n{r.output}"


# -- engine/contracts.py: a plugin loss with no target --------------------------------------------

SUMSQ = """
import numpy as np
class SumSq:
    def forward(self, pred, target):
        assert target is None
        self.pred = pred.copy()
        return float(0.5 * (pred ** 2).sum())
    def backward(self):
        return self.pred
"""


def test_a_plugin_loss_without_a_target_is_checked_not_crashed_on(tmp_path: Path) -> None:
    """target: {kind: none} hands the loss None; the in-place guard must not compare None with
    None (NumPy cannot: a TypeError, an internal error instead of a verdict)."""
    (tmp_path / "l.py").write_text(SUMSQ)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}, tanh]\n"
        "loss: {type: 'l.py:SumSq'}\ntarget: {kind: none}\n"
    )
    _clean(_gc("run", cfg), 0, "gradients agree")


# -- engine/precision.py: a float32 plugin that reads its params only inside a window ------------


class Window:
    """out = x · max(0, 1 − |w − 1|) in float32, w = 0 at construction: w only matters inside
    (0, 2), so replacing it by 0, −w − 1 or 2 leaves the output unchanged, 2w + 1 does not.
    Reads params['w'] (or its own copy, ``keeps_own``)."""

    row_independent = True

    def __init__(self, keeps_own: bool = False) -> None:
        self.params = {"w": np.zeros(3, np.float32)}
        self.own = self.params["w"]
        self.keeps_own = keeps_own
        self.grads: dict[str, np.ndarray] = {}

    def _gate(self) -> np.ndarray:
        w = self.own if self.keeps_own else self.params["w"]
        return np.maximum(0, 1 - np.abs(w - 1))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self._gate()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        w = self.own if self.keeps_own else self.params["w"]
        slope = np.where(np.abs(w - 1) < 1, -np.sign(w - 1), 0).astype(w.dtype)
        self.grads = {"w": (dout * self.x * slope).sum(0)}
        return dout * self._gate()


@pytest.mark.parametrize("keeps_own", [False, True])
def test_a_float32_plugin_gated_by_its_params_gets_a_float64_reference(keeps_own: bool) -> None:
    """Only a layer that ignores params['w'] is said to keep its own reference (numerics stay
    float32); one whose output moves for w = 2w + 1 reads it, and gets the float64 reference."""
    x = np.random.default_rng(0).uniform(1, 2, (4, 3)).astype(np.float32)
    res = check_layer(Window(keeps_own), x)
    said = any("keeps its own reference" in n for n in res.notes)
    assert said == keeps_own, res.notes
    assert res.reference == ("float32" if keeps_own else "float64")


# -- engine/probes.py: the complex-step probe on integer ids -------------------------------------

EMBED = """
import numpy as np
class Embed:
    def __init__(self, input_shape, rng, vocab=5, dim=3):
        self.params = {"E": rng.standard_normal((vocab, dim))}
        self.grads = {}
    def forward(self, ids):
        self.ids = ids
        return self.params["E"][ids]
    def backward(self, dout):
        g = np.zeros_like(self.params["E"])
        np.add.at(g, self.ids, dout)
        self.grads = {"E": g}
        return np.zeros(self.ids.shape)
"""


def test_a_plugin_that_takes_integer_ids_is_checked_with_the_complex_step(tmp_path: Path) -> None:
    """Ids are not perturbed, so the complex-safety probe must not feed the layer complex ids
    (an IndexError, taken for a layer that cannot be evaluated at complex values: exit 2)."""
    (tmp_path / "emb.py").write_text(EMBED)
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {shape: [4, 6], integers: 5}\nlayers: [{type: 'emb.py:Embed'}, tanh]\n")
    _clean(_gc("run", cfg, "--method", "complex"), 0, "agrees")


# -- engine/structure.py: a loss that drifts between identical passes ----------------------------


class Drift:
    """out = x · (1 + 3e-12 · calls): the same θ gives a loss 3e-12 (relative) apart on the next
    call — ~13,000 float64 units in the last place, not round-off; through a step of 1e-6 it
    moves the difference quotient by ~3e-6 of L."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.calls = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x * (1 + 3e-12 * self.calls)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.copy()


def test_a_forward_that_drifts_far_above_round_off_is_not_deterministic() -> None:
    res = check_layer(Drift(), np.linspace(1, 2, 6).reshape(3, 2), seed=0)
    assert not res.passed and any("not deterministic" in p for p in res.problems), res.problems


# -- plan/directional.py: the truncation estimate of a strongly curved loss ------------------------


class Sine:
    """out = sin(w · x), one parameter; correct backward."""

    row_independent = True

    def __init__(self, w: float) -> None:
        self.params = {"w": np.array([w])}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.sin(self.params["w"] * x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        c = np.cos(self.params["w"] * self.x)
        self.grads = {"w": (dout * c * self.x).sum(0)}
        return dout * c * self.params["w"]


@pytest.mark.parametrize("w", [0.3, 1.0, 2.0])
def test_directional_probes_never_fail_a_correct_gradient_of_large_truncation(w: float) -> None:
    """L = g·sin(w) with ε = 0.1: the central difference is off by ~ε²/6 ≈ 0.2 % of ∇L·v, far
    above rtol; the ±2ε look's Richardson estimate (n − n₂)/3 is that error (to O(ε⁴)), so
    with its factor the bound covers it: inconclusive at worst (resolution ≈ 2 %), never fail."""
    res = check_layer(Sine(w), np.ones((1, 1)), seed=0, mode="directional", probes=2, eps=0.1)
    p = next(q for q in res.params if q.name.endswith("w"))
    assert p.mode == "directional" and p.verdict != "fail", (p.verdict, p.note)
    assert res.passed and 0.005 < p.resolution < 0.05, p.resolution


# -- plan/limits.py: probes that do not fit are refused before any is drawn -----------------------


class Table:
    """out = x + mean(table): a parameter read as a whole, mapping onto no output axis."""

    row_independent = True

    def __init__(self, n: int) -> None:
        self.params = {"table": np.linspace(-1, 1, n)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + self.params["table"].mean()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n = self.params["table"].size
        self.grads = {"table": np.full(n, dout.sum() / n)}
        return dout.copy()


def _table_net(n: int) -> Network:
    x = np.random.default_rng(0).standard_normal((2, 3))
    net = Network([Table(n)], MSE(), x=x, target=np.zeros((2, 3)))
    net.forward(x)
    return net


def test_directional_probes_that_do_not_fit_the_memory_limit_are_refused_up_front() -> None:
    """10 probes × 10,000 entries × 4 arrays × 8 bytes = 3.2 MB: refused under a 1 MB limit
    (naming the tensor and check.probes), accepted under 4 MB and with 2 probes."""
    net = _table_net(10_000)
    run = {"inputs": False, "eps": 1e-6, "timed": False}
    with pytest.raises(LimitError, match=r"10 directional probes of 0\.Table\.table") as err:
        preflight(net, limits=Limits(max_bytes=1e6), probes=10, **run)
    assert err.value.field == "check.probes"
    preflight(net, limits=Limits(max_bytes=4e6), probes=10, **run)
    preflight(net, limits=Limits(max_bytes=1e6), probes=2, **run)


# -- plan/modes.py: a parameter that maps onto no output axis still costs its entries -------------


def test_auto_does_not_check_every_entry_of_a_large_table_read_as_a_whole() -> None:
    """A 10⁶-entry table behind a (2, 3) output: one evaluation reads all 10⁶ entries, so a full
    check (10⁶ entries × 2 evaluations) is far over the work limit; auto picks a cheaper mode."""
    net = _table_net(1_000_000)
    pert = Perturber(net, net.x)
    refs = net.parameters(include_input=False)
    ops = evaluation_operations(pert, refs)
    assert ops[0] >= 1_000_000
    est = choose([pert.array(r).size for r in refs], ops, samples=16, probes=2)
    assert est.chosen != "full" and est.full > est.directional


# -- plan/modes.py preflight_plan: what the time limit counts, per mode ---------------------------


def _wide() -> Network:
    """x (6, 32) → linear 64 → linear 4: tensors of 192 (input), 2,048, 64, 256 and 4 entries
    (2,564 in all: a full check is 5,128 evaluations, over the 2,000 that are never timed)."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.layers.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (32,), rng, out=64), make_layer("linear", (64,), rng, out=4)]
    x = rng.standard_normal((6, 32))
    return Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 6), trusted=[True] * 2
    )


def _pilot(monkeypatch: pytest.MonkeyPatch, asked: list[float | None]) -> None:
    """Inject the pilot (no clock): 1 ms per entry, and 1 s per entry of second looks when it is
    asked to foresee them (a resolution), as the real pilot does for a tensor it cannot
    resolve at first."""
    from gradcheck_cli.plan import timing

    def fake(pert: object, refs: list[object], **kw: object) -> timing.Timing:
        res = kw["resolution"]
        asked.append(res)  # type: ignore[arg-type]
        n = len(refs)
        looks = (1.0 if res is not None else 0.0,) * n
        return timing.Timing((1e-3,) * n, (1e-3,) * n, n, 0.0, looks, (0.0,) * n)

    monkeypatch.setattr(timing, "time_engine", fake)


def _preflight(net: Network, **given: Any):
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.plan.modes import preflight_plan

    how = preflight_plan(CheckOptions.build(**given))
    return preflight(net, inputs=True, limits=Limits(max_seconds=60), **how)


def test_a_full_check_too_slow_for_the_limit_is_refused_unless_a_budget_bounds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--mode full counts every entry (2,564 × 2 evaluations, timed) and foresees second looks:
    ~43 minutes, refused under a 60 s limit; with --budget the check bounds its own time and is
    not timed."""
    asked: list[float | None] = []
    _pilot(monkeypatch, asked)
    with pytest.raises(LimitError, match=r"2,564 entries × 2 loss"):
        _preflight(_wide(), mode="full")
    assert asked and asked[0] is not None
    cost = _preflight(_wide(), mode="full", budget=10.0)
    assert cost.entries == 2564 and cost.seconds == 0


def test_directional_probes_count_min_of_probes_and_size_and_foresee_no_second_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--mode directional --probes 3: 3 directions per tensor (15), never timed. With 1,000
    probes per tensor (1,000 + 192 + 64 + 256 + 4 = 1,516 entries: timed) the pilot is not asked
    for second looks (probes take none): ~1.5 s of engine, within 60 s."""
    asked: list[float | None] = []
    _pilot(monkeypatch, asked)
    assert _preflight(_wide(), mode="directional", probes=3).entries == 15
    assert asked == []
    cost = _preflight(_wide(), mode="directional", probes=1000)
    assert cost.entries == 1516 and asked == [None]
    assert 0 < cost.seconds < 60


# -- plan/passes.py: a budget's depth rounds spread the entries over the tensors ------------------


class _Evaluations:
    """A progress callback that counts loss evaluations (the injected clock reads it)."""

    def __init__(self) -> None:
        self.done = 0

    def stage(self, mode: str, tensor: str) -> None:
        pass

    def __call__(self, done: int, planned: int) -> None:
        self.done = done


def test_a_tight_budget_gives_every_tensor_its_first_round_not_one_tensor_everything() -> None:
    """At 10 ms an evaluation (a clock that counts them) a 2 s budget holds ~200 evaluations:
    the probes, then a first depth round of 16 entries per tensor (the 4-entry bias: 4), each
    tensor cut there — not one tensor judged to its whole target while the rest keep only
    their two probes."""
    from gradcheck_cli import check_network, make_layer
    from gradcheck_cli.layers.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(0)
    layers = [
        make_layer("linear", (8,), rng, out=16),
        make_layer("tanh", (16,)),
        make_layer("linear", (16,), rng, out=4),
    ]
    x = rng.standard_normal((6, 8))
    net = Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 6), trusted=[True] * 3
    )
    bar = _Evaluations()
    res = check_network(
        net, mode="full", budget=2.0, clock=lambda: 0.01 * bar.done, progress=bar,
        attribute=False,
    )  # fmt: skip
    assert res.passed, [(p.name, p.verdict, p.note) for p in res.params]
    assert [p.checked for p in res.params] == [16, 16, 16, 16, 4]


class OwnCopy:
    """out = x @ self.own where params['W'] is a copy (the forward never reads params['W']);
    its backward reports a vanishing grads['W'] (1e-300·xᵀ·dout)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"W": np.linspace(-1, 1, 40).reshape(8, 5)}
        self.own = self.params["W"].copy()
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.own

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": 1e-300 * (self.x.T @ dout)}
        return dout @ self.own.T


def test_a_sampled_tensor_refused_as_unread_is_not_labelled_as_checked_by_probes() -> None:
    """Sample mode: W's probes see ∇L·v ≈ 1e-300 and L flat ("zero": they pass), then the
    sampled entries are refused as a contract failure (params['W'] is not read). That verdict
    rests on the entries alone: its mode is "sample", not "sample+probes"; the input, checked
    by both, is "sample+probes"."""
    x = np.random.default_rng(0).standard_normal((3, 8))
    res = check_layer(OwnCopy(), x, seed=0, mode="sample", samples=4)
    modes = {p.name: (p.mode, p.verdict) for p in res.params}
    assert modes == {"input": ("sample+probes", "pass"), "0.OwnCopy.W": ("sample", "fail")}
    (w,) = [p for p in res.params if p.name == "0.OwnCopy.W"]
    assert w.reason is not None and "does not change the layer's output" in w.reason

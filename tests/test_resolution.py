"""A pass is a claim about resolution: steps chosen from measured noise, zero and inconclusive
verdicts, kinks that need evidence, domain edges, attribution on the same rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.verdict.steps import ecnoise

from .bug_corpus import Bugged

SCALES = (1e-4, 1e-2, 1.0, 1e2, 1e4)


class ScaledLinear:
    """y = x·W + b with W ~ N(0, 1)/(s·√d) so pre-activations stay O(1) whatever the input
    scale s; optional planted bug dW × (1 + r) (or on one entry, or on dx)."""

    row_independent = True

    def __init__(self, d: int, out: int, s: float, rng: Any, r: float = 0.0, on: str = "W"):
        self.params = {
            "W": rng.standard_normal((d, out)) / (s * np.sqrt(d)),
            "b": rng.standard_normal(out),
        }
        self.grads: dict[str, np.ndarray] = {}
        self.r, self.on = r, on

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        grads = {"W": self.x.T @ dout, "b": dout.sum(0)}
        dx = dout @ self.params["W"].T
        if self.on == "dx":
            dx = dx * (1 + self.r)
        else:
            grads[self.on] = grads[self.on] * (1 + self.r)
        self.grads = grads
        return dx


def _mlp(seed: int, s: float, r: float = 0.0, on: str = "W", loss: str = "ce") -> Network:
    rng = np.random.default_rng(seed)
    x = s * rng.standard_normal((5, 4))
    layers = [
        ScaledLinear(4, 6, s, rng, r, on),
        make_layer("tanh", (6,), rng),
        make_layer("linear", (6,), rng, out=3),
    ]
    if loss == "ce":
        lossf = make_loss_ce()
        target = rng.integers(0, 3, size=5)
    else:
        lossf = WeightedSum(rng.standard_normal((5, 3)))
        target = None
    return Network(layers, lossf, x=x, target=target, name=f"s={s:g}")


def make_loss_ce() -> Any:
    return SoftmaxCrossEntropy()


def _verdicts(res: Any) -> dict[str, str]:
    return {p.name: p.verdict for p in res.params}


@pytest.mark.parametrize("s", SCALES)
def test_a_1e5_bug_in_the_first_weights_is_caught_at_every_input_scale(s: float) -> None:
    """A fixed ε = 1e-5 passed this bug at s = 1e-4 (V_scale_and_noise): the step now follows
    the measured noise and the entry's scale."""
    for seed in range(2):
        res = check_network(_mlp(seed, s, r=1e-5), attribute=False)
        assert _verdicts(res)["0.ScaledLinear.W"] == "fail", (seed, _verdicts(res))


@pytest.mark.parametrize("s", SCALES)
def test_correct_networks_pass_at_every_input_scale(s: float) -> None:
    for seed in range(4):
        res = check_network(_mlp(seed, s), attribute=False)
        assert res.passed, (seed, _verdicts(res))
        assert all(v in ("pass", "zero") for v in _verdicts(res).values()), (seed, _verdicts(res))


def test_a_dx_bug_is_caught_when_the_loss_is_exactly_zero_by_cancellation() -> None:
    """L = Σ out ⊙ g with g ⟂ out: L ≈ 0 while its terms are not; the noise model must use the
    terms (a bound from |L| alone collapses and accuses correct layers)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    for r, want in ((0.0, True), (1e-5, False)):
        layer = ScaledLinear(5, 4, 1.0, np.random.default_rng(0), r=r, on="dx")
        out = layer.forward(x)
        g = rng.standard_normal(out.shape)
        g -= out * np.sum(g * out) / np.sum(out * out)  # Σ out ⊙ g = 0
        res = check_layer(layer, x, dout=g)
        assert abs(res.loss) < 1e-12
        assert res.passed is want, _verdicts(res)


@pytest.mark.parametrize("seed", range(3))
def test_perfect_fit_and_confident_softmax_do_not_fail(seed: int) -> None:
    """Losses at 0: every gradient is ~0; "zero", never a failure."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6))
    net = Network(
        [make_layer("linear", (6,), rng, out=8), make_layer("tanh", (8,), rng),
         make_layer("linear", (8,), rng, out=3)],
        None, x=x, name="fit",
    )  # fmt: skip
    net.loss, net.target = MSE(), net.forward(x.copy())
    res = check_network(net, strict=True)
    assert res.passed and set(_verdicts(res).values()) == {"zero"}, _verdicts(res)
    # confident softmax CE: logits ~ 100s with the target the argmax
    lin = make_layer("linear", (6,), rng, out=5)
    xc = 60 * rng.standard_normal((4, 6))
    target = np.argmax(lin.forward(xc), axis=1)
    net = Network([lin], SoftmaxCrossEntropy(), x=xc, target=target, name="ce")
    res = check_network(net)
    assert res.passed and "fail" not in _verdicts(res).values(), _verdicts(res)


class SteepTanh:
    """out = tanh(k·x); ``bug`` multiplies the backward."""

    row_independent = True

    def __init__(self, k: float, bug: float = 1.0) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.k, self.bug = k, bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(self.k * x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.bug * dout * self.k * (1 - self.out**2)


@pytest.mark.parametrize("bug", [0.9, 0.99])
@pytest.mark.parametrize("strict", [False, True])
def test_steep_smooth_bugs_fail_and_are_not_called_kinks(bug: float, strict: bool) -> None:
    x = 1e-5 * np.random.default_rng(0).standard_normal((4, 5))
    res = check_layer(SteepTanh(3e5, bug), x, seed=0, strict=strict)
    (p,) = res.params
    assert not res.passed and p.verdict == "fail" and p.kinks == 0, (p.verdict, p.note)


def test_a_correct_steep_smooth_layer_passes() -> None:
    for seed in range(3):
        x = 1e-5 * np.random.default_rng(seed).standard_normal((4, 5))
        res = check_layer(SteepTanh(3e5), x, seed=seed, strict=True)
        assert res.passed and res.params[0].verdict == "pass", res.params[0].note


class Sqrt:
    row_independent = True

    def __init__(self, bug: float = 1.0) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.sqrt(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.bug * dout / (2 * self.out)


def test_sqrt_near_the_domain_edge_takes_steps_inside_the_domain() -> None:
    x = np.array([[4e-6, 1.0, 2.0], [0.5, 3e-6, 1.5], [7e-7, 0.25, 9.0]])
    res = check_layer(Sqrt(), x, seed=0, strict=True)
    assert res.passed and res.params[0].verdict == "pass", res.params[0].note
    res = check_layer(Sqrt(bug=1.001), x, seed=0)
    assert not res.passed and res.params[0].verdict == "fail"


class Rough:
    """y = 2x + 1e-6·sin(1e17·x): the second term is noise at every step a difference can use
    (its period, 6e-17, is below the spacing of float64 numbers near x ~ 1: no step, however
    fine, sees it as a smooth function), so nothing resolves the gradient to 1e-6. (With a
    period of 6e-13 the ladder, extended to steps ~1e-15, resolves the true derivative
    2 + 1e7·cos(1e13·x) — and the backward 2·dout is then wrong.)"""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return 2.0 * x + 1e-6 * np.sin(1e17 * x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return 2.0 * dout


def test_inconclusive_when_no_step_resolves_and_strict_fails_it() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    res = check_layer(Rough(), x, seed=0)
    (p,) = res.params
    assert p.verdict == "inconclusive" and p.passed and res.passed
    assert p.resolution > 1e-6 and np.isfinite(p.resolution)
    assert res.to_dict()["results"][0]["verdict"] == "inconclusive"
    assert not check_layer(Rough(), x, seed=0, strict=True).passed


def test_a_bias_before_batchnorm_is_zero_and_never_fails_under_strict() -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((6, 4))
        net = Network(
            [make_layer("linear", (4,), rng, out=5), make_layer("batchnorm", (5,), rng),
             make_layer("tanh", (5,), rng)],
            WeightedSum(rng.standard_normal((6, 5))), x=x, name="bn",
            labels=["linear", "batchnorm", "tanh"], trusted=[True, True, True],
        )  # fmt: skip
        res = check_network(net, strict=True)
        assert res.passed, _verdicts(res)
        assert _verdicts(res)["0.linear.b"] == "zero"


class DoubleForgot:
    """out = 2·x, backward forgets the 2."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return 2 * x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.copy()


@pytest.mark.parametrize("seed", range(6))
def test_attribution_names_only_the_wrong_layer_behind_batchnorm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 4))
    net = Network(
        [make_layer("linear", (4,), rng, out=6), make_layer("batchnorm", (6,), rng), DoubleForgot()],
        WeightedSum(rng.standard_normal((6, 6))), x=x, name="att",
        labels=["linear", "batchnorm", "DoubleForgot"], trusted=[True, True, False],
    )  # fmt: skip
    res = check_network(net)
    assert not res.passed
    assert len(res.attribution) == 1 and "DoubleForgot" in res.attribution[0], res.attribution


def test_ecnoise_finds_the_level_of_added_noise_and_not_of_a_smooth_function() -> None:
    rng = np.random.default_rng(0)
    t = 1e-4 * np.arange(7)  # h small enough that the smooth part's high differences vanish
    for sigma in (1e-12, 1e-9, 1e-6):
        level, info = ecnoise(np.exp(t) + sigma * rng.standard_normal(7))
        assert info == 1 and sigma / 4 < level < 4 * sigma
    assert ecnoise(np.exp(100 * t))[1] == 3  # smooth at this h: no noise level
    assert ecnoise(np.zeros(7))[1] == 2  # flat: h too small


def _saturated(seed: int, r: float = 0.0, key: str | None = "W", kind: str = "scale") -> Network:
    """linear → tanh → linear with softmax CE on inputs of size 100: tanh saturates, the first
    layer's gradients are ~1e-5 of the last's and L is strongly curved along them."""
    rng = np.random.default_rng(seed)
    x = 100.0 * rng.standard_normal((4, 6))
    layers: list[Any] = [
        make_layer("linear", (6,), rng, out=6),
        make_layer("tanh", (6,), rng),
        make_layer("linear", (6,), rng, out=3),
    ]
    target = rng.integers(0, 3, size=4)
    if r:
        at = 0 if key is not None else 1
        layers[at] = Bugged(layers[at], kind, r, key, seed)
        layers[at].row_independent = True
    labels = ["linear", "tanh", "linear"]
    return Network(layers, SoftmaxCrossEntropy(), labels=labels, x=x, target=target, name="sat")


@pytest.mark.parametrize(("key", "kind"), [("W", "scale"), ("W", "one-entry"), (None, "scale")])
def test_a_1e6_bug_behind_a_saturated_tanh_is_caught(key: str | None, kind: str) -> None:
    """The central-difference ladder cannot resolve these gradients to 1e-6 (round-off at small
    steps, curvature ~100³ at large ones): the wide 8th-order stencil does, so a 1e-6 bug fails
    instead of being called inconclusive."""
    include = ["0.linear.W"] if key else ["input", "0.linear.W", "0.linear.b"]
    for seed in range(2):
        res = check_network(_saturated(seed, 1e-6, key, kind), attribute=False, include=include)
        assert not res.passed and "fail" in _verdicts(res).values(), (seed, _verdicts(res))


@pytest.mark.parametrize("method", ["central", "complex"])
def test_a_correct_network_behind_a_saturated_tanh_passes(method: str) -> None:
    """Central differences resolve every tensor to the promise (the verdict is "pass", not
    inconclusive); the complex step, whose promise is far tighter, never fails (some tensors may
    be inconclusive against the analytic round-off bound: exit 0, a fail only under --strict)."""
    for seed in range(4):
        res = check_network(_saturated(seed), attribute=False, method=method)
        verdicts = _verdicts(res)
        assert res.passed and "fail" not in verdicts.values(), (seed, verdicts)
        if method == "central":
            assert set(verdicts.values()) == {"pass"}, (seed, verdicts)


def test_entries_whose_analytic_floor_is_above_the_promise_still_get_the_second_look() -> None:
    """A raw feature of ~1.7e9 makes the a-priori round-off floor of the first layer's
    gradients larger than the promise: the first estimate cannot be refined into a pass, but
    the ladder still resolves a 1 % bug in b, which must fail (not be left inconclusive)."""
    for seed in range(2):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((8, 4))
        x[:, 0] = 1.7e9 + 1e6 * rng.standard_normal(8)
        layers: list[Any] = [
            Bugged(make_layer("linear", (4,), rng, out=6), "scale", 0.01, "b", seed),
            make_layer("relu", (6,), rng),
            make_layer("linear", (6,), rng, out=3),
        ]
        net = Network(layers, WeightedSum(rng.standard_normal((8, 3))), x=x, name="timestamp")
        res = check_network(net, attribute=False, include=["0.*.b"])
        assert not res.passed and list(_verdicts(res).values()) == ["fail"], (seed, _verdicts(res))


def test_many_inconclusive_tensors_are_summarised_not_listed() -> None:
    """Thousands of unresolved tensors (a layer of scalar gates under a large loss): the
    summary names the first few and counts the rest, in the terminal and on GitHub."""
    from dataclasses import replace

    from gradcheck_cli.report.github import summary_line
    from gradcheck_cli.report.tables import summary

    x = np.random.default_rng(0).standard_normal((3, 4))
    res = check_layer(Rough(), x, seed=0)
    (p,) = res.params
    many = replace(res, params=tuple(replace(p, name=f"gate{i}") for i in range(30)))
    for text in (summary(many).plain, summary_line(many)):
        assert "gate0, gate1" in text and "gate7 and 22 more" in text and "gate8" not in text


def test_a_zero_tensor_does_not_set_the_suite_summarys_worst_error() -> None:
    """A ``zero`` tensor's relative error is a ratio of two round-offs (up to ~1): the suite's
    "worst rel err" column is the worst of the tensors it verified."""
    from gradcheck_cli.report.console import worst_rel_error

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    net = Network(
        [make_layer("linear", (4,), rng, out=5), make_layer("batchnorm", (5,), rng)],
        WeightedSum(rng.standard_normal((6, 5))), x=x, trusted=[True, True],
    )  # fmt: skip
    res = check_network(net)
    zero = [p for p in res.params if p.verdict == "zero"]
    assert res.passed and zero and max(p.rel_error for p in zero) > 1e-3
    assert worst_rel_error(res) == max(p.rel_error for p in res.params if p.verdict == "pass")
    assert worst_rel_error(res) < 1e-6
    # and the tensor's own row shows no relative error either (its max|a−n| stays)
    from rich.console import Console

    from gradcheck_cli.report.tables import result_table

    console = Console(width=200, record=True)
    console.print(result_table(res))
    rows = [line.split() for line in console.export_text().splitlines()]
    (row,) = [r for r in rows if r and r[0] == zero[0].name]
    assert row[2] == "—", row

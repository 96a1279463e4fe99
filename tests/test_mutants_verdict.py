"""Verdict mechanisms pinned by behaviour (issue 28): the noise the verdict measures, the
rounding floor at a perfect fit, kinks that need an analytic value between the one-sided
slopes."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import check_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import MSE, WeightedSum
from gradcheck_cli.verdict.steps import ecnoise, measure_noise, rounding_floor

U64 = float(np.finfo(np.float64).eps) / 2


class Noisy:
    """out = x + σ·sin(10⁹·x): deterministic, but noise-like at any step above 1e-9."""

    row_independent = True

    def __init__(self, sigma: float) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.sigma = sigma

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + self.sigma * np.sin(x * 1e9)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.copy()


@pytest.mark.parametrize("sigma", [1e-9, 1e-7])
def test_the_noise_of_the_loss_is_measured_at_its_level(sigma: float) -> None:
    """L = Σ g·(x + σ·sin(10⁹x)): the noise of L along a unit direction is about σ‖g‖/√2; the
    measurement (ECnoise, confirmed at h/16) finds it within 3×, above the rounding floor."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    net = Network([Noisy(sigma)], WeightedSum(g), x=x, trusted=[False])
    pert = Perturber(net, x)
    level = measure_noise(pert, net.parameters()[0], 1e-6, U64, 0)
    want = sigma * float(np.linalg.norm(g)) / np.sqrt(2)
    assert want / 3 <= level.measured <= 3 * want, (level, want)
    assert level.level == max(level.measured, level.floor) and level.floor < want / 100


def test_a_smooth_loss_has_no_noise_but_its_rounding() -> None:
    """No noise planted: the level found is the rounding of the loss (~u·|L|), not more."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    net = Network([Noisy(0.0)], WeightedSum(g), x=x, trusted=[False])
    pert = Perturber(net, x)
    level = measure_noise(pert, net.parameters()[0], 1e-6, U64, 0)
    assert level.level < 1e-14  # what rounding of L ≈ 1 shows, no more


def test_ecnoise_does_not_take_curvature_for_noise() -> None:
    """A smooth table at a minimum (first differences change sign) is "too smooth", not noise."""
    t = np.linspace(-3, 3, 7) * 1e-2
    assert ecnoise(np.cos(t)) == (0.0, 3)
    assert ecnoise(np.full(7, 2.0)) == (0.0, 2)  # flat: the step is too small


def test_the_rounding_floor_holds_at_a_perfect_fit() -> None:
    """At a perfect fit L = 0, but the loss still subtracts numbers the size of its inputs: the
    floor is u·max|pred| there, never u·|L| = 0."""
    rng = np.random.default_rng(0)
    x = 10 * rng.standard_normal((4, 5))
    net = Network([Noisy(0.0)], MSE(), x=x, target=x.copy(), trusted=[False])
    pert = Perturber(net, x)
    assert float(pert.f0) == 0.0
    assert rounding_floor(pert, U64) == pytest.approx(
        U64 * float(np.abs(x).max()), rel=1e-12, abs=0
    )


class Relu:
    """relu whose backward sends ``at_zero``·dout where x == 0 (any value in [0, 1] is a valid
    one-sided slope), the true slope elsewhere."""

    row_independent = True

    def __init__(self, at_zero: float) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.at_zero = at_zero

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * np.where(self.x == 0, self.at_zero, (self.x > 0).astype(float))


@pytest.mark.parametrize("at_zero, verdict", [(0.0, "kink"), (1.0, "kink"), (0.5, "pass"),
                                               (1.5, "fail"), (-0.5, "fail")])  # fmt: skip
def test_at_a_kink_only_a_value_between_the_one_sided_slopes_passes(
    at_zero: float, verdict: str
) -> None:
    """ReLU at exactly 0 (slopes 0 | 1): either one-sided slope is a kink (passes unless
    --strict), their mean is what the central difference sees (a pass), a value outside the
    slopes fails."""
    x = np.array([[0.0, 0.7, -0.4, 0.0], [1.2, 0.0, -2.0, 0.3]])
    res = check_layer(Relu(at_zero), x, seed=0, dout=np.ones_like(x))
    (p,) = res.params
    assert p.verdict == verdict, (p.verdict, p.note)
    assert res.passed == (verdict != "fail")
    if verdict == "kink":
        assert p.kinks == 3
        assert not check_layer(Relu(at_zero), x, seed=0, dout=np.ones_like(x), strict=True).passed


# -- what a failing tensor reports ---------------------------------------------------------------


class Masked:
    """out = x·w; backward leaves out entry ``drop`` of dw (0) and scales entry ``wrong`` by
    ``bug``; the rest is right."""

    row_independent = True

    def __init__(self, drop: int | None = None, wrong: int | None = None, bug: float = 1.0):
        self.params = {"w": np.linspace(0.5, 2.0, 6)}
        self.grads: dict[str, np.ndarray] = {}
        self.drop, self.wrong, self.bug = drop, wrong, bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dw = (dout * self.x).sum(0)
        if self.drop is not None:
            dw[self.drop] = 0.0
        if self.wrong is not None:
            dw[self.wrong] *= self.bug
        self.grads = {"w": dw}
        return dout * self.params["w"]


def _w_result(layer: Masked, **given: object):  # type: ignore[no-untyped-def]
    x = np.random.default_rng(0).standard_normal((3, 6))
    res = check_layer(layer, x, seed=0, inputs=False, **given)
    (p,) = res.params
    return res, p


def test_the_worst_entries_start_with_the_failing_ones() -> None:
    res, p = _w_result(Masked(wrong=4, bug=1.001))
    assert not res.passed and p.failed == 1
    assert p.worst[0].index == (4,) and p.worst[0].status == "fail"
    assert all(e.status != "fail" for e in p.worst[1:])


def test_a_gradient_left_at_zero_is_labelled_missing() -> None:
    res, p = _w_result(Masked(drop=2))
    assert not res.passed and p.worst[0].index == (2,)
    assert p.worst[0].label == "missing (analytic is 0)"


def test_failed_counts_kinks_and_inconclusive_entries_only_under_strict() -> None:
    """`failed` is what the verdict holds against the tensor: kinks and an inconclusive tensor's
    entries count under --strict only."""
    x = np.array([[0.0, 0.7, -0.4, 0.0], [1.2, 0.0, -2.0, 0.3]])
    kink = check_layer(Relu(0.0), x, seed=0, dout=np.ones_like(x)).params[0]
    assert kink.verdict == "kink" and kink.failed == 0
    strict = check_layer(Relu(0.0), x, seed=0, dout=np.ones_like(x), strict=True).params[0]
    assert strict.failed == 3
    res, p = _w_result(Masked(), resolution=1e-14)
    assert p.verdict == "inconclusive" and p.failed == 0 and res.passed
    res, p = _w_result(Masked(), resolution=1e-14, strict=True)
    assert p.failed == p.checked == 6 and not res.passed


def test_a_noisy_but_correct_layer_passes_within_its_measured_noise() -> None:
    """Noise of 1e-9 on every output: the error bound (k·ε_f/h with the measured ε_f) covers it;
    the same layer with its backward wrong by 1e-3 fails."""
    x = np.random.default_rng(0).standard_normal((4, 5))
    res = check_layer(Noisy(1e-9), x, seed=0)
    assert res.passed and res.params[0].verdict == "pass", res.params[0].note
    wrong = Noisy(1e-9)
    wrong.backward = lambda dout: 1.001 * dout  # type: ignore[method-assign]
    assert not check_layer(wrong, x, seed=0).passed


# -- the complex step ----------------------------------------------------------------------------


class OwnW:
    """out = x·W through its own reference to W (complex copies put in params are not seen);
    the gradient of W's first row is 0 (x's first column is 0)."""

    row_independent = True

    def __init__(self) -> None:
        self.W = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
        self.params = {"W": self.W}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout}
        return dout @ self.W.T


def test_complex_step_judges_correct_and_wrong_layers() -> None:
    from gradcheck_cli import make_layer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    good = check_layer(make_layer("tanh", (5,)), x, seed=0, method="complex")
    assert good.passed and all(p.verdict == "pass" for p in good.params)
    bad = check_layer(Masked(wrong=1, bug=1 + 1e-6), rng.standard_normal((3, 6)), method="complex")
    assert not bad.passed and [p.name for p in bad.failures] == ["0.Masked.w"]


def test_complex_step_refuses_a_layer_that_does_not_read_its_params() -> None:
    """Im L stays 0 for every entry of W (the layer reads its own W): exit 2, even though some
    analytic entries are 0 too."""
    from gradcheck_cli.errors import PluginError

    x = np.random.default_rng(0).standard_normal((3, 4))
    x[:, 0] = 0.0
    with pytest.raises(PluginError, match="Im L stayed exactly 0"):
        check_layer(OwnW(), x, seed=0, method="complex", inputs=False)


# -- attribution names the layer and what of it is wrong -----------------------------------------


class TanhDxBug:
    """tanh whose dx is ×(1 + 1e-3) (no parameters)."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return 1.001 * dout * (1 - self.out**2)


def test_attribution_names_the_wrong_layer_and_the_wrong_gradient() -> None:
    """A wrong dW names layer 0 and its W; a wrong dx in layer 1 names layer 1 and dx (the
    tensors below it fail too, but only layer 1 fails on its own)."""
    from gradcheck_cli import check_network, make_layer
    from gradcheck_cli.layers.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 6))
    first = Masked(wrong=2, bug=1.001)
    net = Network(
        [first, make_layer("linear", (6,), rng, out=3)], SoftmaxCrossEntropy(), x=x,
        target=rng.integers(0, 3, 6), trusted=[False, True],
    )  # fmt: skip
    assert check_network(net).attribution == ("layer 0 (Masked) fails on its own (Masked.w)",)
    net = Network(
        [make_layer("linear", (6,), rng, out=5), TanhDxBug(), make_layer("linear", (5,), rng, out=3)],
        SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 6), trusted=[True, False, True],
    )  # fmt: skip
    assert check_network(net).attribution == ("layer 1 (TanhDxBug) fails on its own (dx)",)


# -- diagnosis: a fingerprint needs evidence ------------------------------------------------------


def test_one_significant_entry_is_no_evidence_of_a_constant_factor() -> None:
    """a = 2·n on the only entry that is not ~0: too little to name a factor ("scale")."""
    from gradcheck_cli.verdict.diagnosis import Context, diagnose

    n = np.zeros((4, 5))
    n[1, 2] = 3.0
    a = 2 * n
    tol = np.full_like(n, 1e-6)
    found = diagnose(a, n, tol, Context("W"))
    assert found is None or found.kind != "scale", found
    n[3, 4] = -1.5
    a = 2 * n  # two entries: a factor 2 is named
    found = diagnose(a, n, tol, Context("W"))
    assert found is not None and found.kind == "scale" and found.params["factor"] == 2.0


def test_an_unnamed_factor_below_one_is_found_within_the_tolerances() -> None:
    """a = 0.37·n + δ with |δ| up to 0.6·tol per entry: the fitted factor explains every entry
    within its tolerance (the tolerance is not shrunk by |c| < 1)."""
    from gradcheck_cli.verdict.diagnosis import Context, diagnose

    rng = np.random.default_rng(0)
    n = rng.standard_normal((6, 5))
    tol = np.full_like(n, 1e-3)
    a = 0.37 * n + 0.6e-3 * np.where(rng.random(n.shape) < 0.5, -1.0, 1.0)
    found = diagnose(a, n, tol, Context("W"))
    assert found is not None and found.kind == "scale", found
    assert abs(found.params["factor"] - 0.37) < 1e-3


def test_few_entries_means_at_most_a_third_of_a_small_tensor() -> None:
    """In a tensor of 6 entries, 2 wrong entries are "few" (an indexing bug); 3 are not."""
    from gradcheck_cli.verdict.diagnosis import Context, diagnose

    rng = np.random.default_rng(0)
    n = rng.standard_normal(6)
    tol = np.full_like(n, 1e-6)
    two = n.copy()
    two[[1, 4]] += np.array([0.8, -1.3])
    found = diagnose(two, n, tol, Context("b"))
    assert found is not None and found.kind == "few_entries", found
    three = n.copy()
    three[[0, 2, 5]] += np.array([0.8, -1.3, 2.1])
    found = diagnose(three, n, tol, Context("b"))
    assert found is None or found.kind != "few_entries", found


class Pow15:
    """out = x·√x (defined for x ≥ 0 only); backward 1.5·√x."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        with np.errstate(invalid="ignore"):
            return x * np.sqrt(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return 1.5 * np.sqrt(self.x) * dout


def test_an_entry_at_the_edge_of_the_domain_is_inconclusive_not_failed() -> None:
    """At x = 0, L(x − h) is not finite for every step: that entry cannot be estimated, so the
    tensor is inconclusive (it fails only under --strict), never a false failure."""
    x = np.array([[0.0, 0.5, 1.3], [2.0, 0.7, 0.9]])
    res = check_layer(Pow15(), x, seed=0)
    (p,) = res.params
    assert p.verdict == "inconclusive" and res.passed, (p.verdict, p.note)
    assert "1 entry: L is not finite at any step tried" in (p.note or "")
    assert not check_layer(Pow15(), x, seed=0, strict=True).passed


def test_every_entry_that_passes_is_within_its_tolerance() -> None:
    """The ratio |a − n| / tolerance reported per entry is ≤ 1 for every entry of a passing
    tensor, and > 1 exactly at the failing entry of a failing one."""
    x = np.random.default_rng(0).standard_normal((3, 6))
    good = check_layer(Masked(), x, seed=0, inputs=False).params[0]
    assert good.verdict == "pass" and good.ratios is not None
    assert np.all(good.ratios <= 1.0), good.ratios
    bad = check_layer(Masked(wrong=4, bug=1.001), x, seed=0, inputs=False).params[0]
    assert bad.ratios is not None and list(np.flatnonzero(bad.ratios > 1.0)) == [4]


@pytest.mark.parametrize("offset", [1e2, 1e4])
def test_batchnorm_on_inputs_far_from_zero_passes(offset: float) -> None:
    """x = offset + N(0, 1): the forward cancels (x − mean), so the analytic gradient carries
    rounding ~u·offset; that rounding is measured (input jitter) and allowed, not a failure."""
    from gradcheck_cli import make_layer

    rng = np.random.default_rng(0)
    x = offset + rng.standard_normal((8, 5))
    res = check_layer(make_layer("batchnorm", (5,), rng), x, seed=0)
    assert res.passed, [(p.name, p.verdict, p.note) for p in res.params]


def test_a_float32_layer_resolved_to_the_promise_passes() -> None:
    """float32 tanh against float64 numerics resolves to ~6e-7 of max|g|: it passes a promise of
    1e-6 (its floor is the measured float32 rounding, the twin's; no more is added to it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    from gradcheck_cli import make_layer

    res = check_layer(make_layer("tanh", (6,)), x, seed=0, resolution=1e-6)
    assert res.passed and res.params[0].verdict == "pass", res.params[0].note


def test_a_constant_offset_of_a_vector_is_named_as_the_same_at_every_entry() -> None:
    from gradcheck_cli.verdict.diagnosis import Context, diagnose

    n = np.random.default_rng(0).standard_normal(7)
    found = diagnose(n + 0.25, n, np.full_like(n, 1e-6), Context("b"))
    assert found is not None and "is the same 0.25 at every entry" in found.sentence, found

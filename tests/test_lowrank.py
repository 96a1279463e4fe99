"""Rank-1 copies (gradcheck_cli/engine/lowrank.py): a one-entry change of a linear layer carried as a
changed column and then as base + u ⊗ w, evaluated by the loss without dense copies. Every fast
path equals the plain one-entry loop to round-off; a wrong twin shows the comparison can fail."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine.lowrank import Rank1, mse_rank1, softmax_ce_rank1
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy
from tests.test_engine import EPS, assert_engine_matches_loop


def _net(
    seed: int, n: int, widths: list[int], act: str, loss: str, labels: bool = True
) -> tuple[Network, np.ndarray]:
    """Linear layers of ``widths``, each hidden one followed by an activation: ``act``, or
    ``a+b`` for a, b, a, … (e.g. relu+tanh: ReLU then tanh, as in bench ``medium``)."""
    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    acts = itertools.cycle(act.split("+"))
    for d, m in itertools.pairwise(widths[:-1]):
        layers += [make_layer("linear", (d,), rng, out=m), make_layer(next(acts), (m,))]
    layers.append(make_layer("linear", (widths[-2],), rng, out=widths[-1]))
    x = rng.standard_normal((n, widths[0]))
    k = widths[-1]
    target: np.ndarray
    if loss == "mse":
        lf: Any = MSE()
        target = rng.standard_normal((n, k))
    else:
        lf = SoftmaxCrossEntropy()
        target = rng.integers(0, k, n) if labels else SoftmaxCrossEntropy.random_target(rng, (n, k))
    return Network(layers, lf, x=x, target=target, trusted=[True] * len(layers)), x


CASES = [
    (n, widths, act)
    for n, widths in [(5, [4, 6, 3]), (16, [7, 9, 5, 4]), (3, [5, 8, 1])]
    for act in ("relu", "tanh", "sigmoid", "relu+tanh")
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "widths", "act"), CASES)
@pytest.mark.parametrize("loss", ["ce_labels", "ce_values", "mse"])
def test_rank1_losses_equal_the_loop(
    seed: int, n: int, widths: list[int], act: str, loss: str
) -> None:
    net, x = _net(seed, n, widths, act, loss, labels=loss == "ce_labels")
    assert_engine_matches_loop(net, x, chunk_bytes=3000)


def test_the_rank1_path_is_the_one_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every parameter of a linear→relu→linear net reaches the loss as a rank-1 form (W1, b1)
    or a changed column (W2, b2): the dense per-copy loss is never called."""
    net, x = _net(0, 8, [6, 7, 4], "relu", "ce_labels")
    calls = {"rank1": 0}
    real = SoftmaxCrossEntropy.forward_rank1

    def counted(self: Any, copies: Rank1, target: np.ndarray) -> np.ndarray:
        calls["rank1"] += 1
        return real(self, copies, target)

    def refuse(*args: Any) -> np.ndarray:
        raise AssertionError("dense copies reached the loss")

    monkeypatch.setattr(SoftmaxCrossEntropy, "forward_rank1", counted)
    monkeypatch.setattr(SoftmaxCrossEntropy, "forward_copies", refuse)
    pert = Perturber(net, x)
    for ref in net.parameters(include_input=False):
        pert.losses(ref, np.arange(pert.array(ref).size), np.array([EPS, -EPS]))
    assert calls["rank1"] >= 4


def test_a_wrong_rank1_loss_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong twin: a rank-1 loss that pairs u with the wrong row of W (rolled by one class)
    differs from the loop, so the equality tests above can fail."""

    def wrong(self: Any, copies: Rank1, target: np.ndarray) -> np.ndarray:
        rolled = Rank1(copies.base, copies.u, np.roll(copies.w, 1, axis=1))
        return softmax_ce_rank1(rolled, target)

    monkeypatch.setattr(SoftmaxCrossEntropy, "forward_rank1", wrong)
    net, x = _net(1, 6, [5, 6, 4], "tanh", "ce_labels")
    with pytest.raises(AssertionError):
        assert_engine_matches_loop(net, x)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("scale", "change"), [(1e-6, 1e-6), (1.0, 1.0), (300.0, 300.0), (300.0, 1e-3), (1.0, 20.0)]
)
def test_rank1_losses_equal_dense_copies(seed: int, scale: float, change: float) -> None:
    """Against the plain loss on each dense copy, for random forms: logits in the hundreds,
    changes small (the shift by the base rows' max) and large (the copy's own max), so that
    nothing overflows either way."""
    rng = np.random.default_rng(seed)
    n, k, c = 7, 5, 9
    copies = Rank1(
        scale * rng.standard_normal((n, k)),
        change * rng.standard_normal((c, n)),
        rng.standard_normal((c, k)),
    )
    dense = copies.dense()
    assert np.array_equal(copies.by_class().transpose(1, 2, 0), dense)
    labels = rng.integers(0, k, n)
    rows = SoftmaxCrossEntropy.random_target(rng, (n, k))
    ce = SoftmaxCrossEntropy()
    for target in (labels, rows):
        want = np.array([ce.forward(dense[j], target) for j in range(c)])  # the plain loss
        for got in (softmax_ce_rank1(copies, target), ce.forward_copies(dense, target)):
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * scale)
    y = rng.standard_normal((n, k))
    want = MSE().forward_copies(dense, y)
    np.testing.assert_allclose(mse_rank1(copies, y), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", ["ce_labels", "mse"])
@pytest.mark.parametrize(("widths", "act"), [([5, 7, 3], "tanh"), ([5, 9, 7, 3], "relu+tanh")])
def test_complex_step_through_the_rank1_path(loss: str, widths: list[int], act: str) -> None:
    """Im L(θ + ih)/h from the rank-1 and changed-rows losses equals the analytic gradient."""
    net, x = _net(4, 6, widths, act, loss)
    net.loss_value(x)
    _, grads = net.backward()
    h = 1e-20
    pert = Perturber(net, x)
    for ref in net.parameters(include_input=False):
        f, _ = pert.losses(ref, np.arange(pert.array(ref).size), np.array([1j * h]))
        analytic = grads[ref.layer][ref.key]  # type: ignore[index]
        np.testing.assert_allclose(f[:, 0].imag / h, np.ravel(analytic), rtol=1e-12, atol=1e-15)


def test_a_loss_subclass_with_its_own_forward_is_run() -> None:
    """A user subclass overriding forward loses forward_rank1: the engine calls its forward
    (a shifted loss here), so batched still equals the loop."""

    class Shifted(SoftmaxCrossEntropy):
        def forward(self, pred: np.ndarray, target: np.ndarray) -> Any:
            return super().forward(pred, target) + float(pred[0, 0]) ** 2

    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (4,), rng, out=5), make_layer("relu", (5,))]
    layers.append(make_layer("linear", (5,), rng, out=3))
    x = rng.standard_normal((6, 4))
    net = Network(layers, Shifted(), x=x, target=rng.integers(0, 3, 6), trusted=[True] * 3)
    assert_engine_matches_loop(net, x, inputs=False)


def _count(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, calls: dict[str, int]) -> None:
    real = getattr(cls, name)

    def counted(*args: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
        return real(*args)

    monkeypatch.setattr(cls, name, counted)


def test_relu_then_tanh_goes_as_changed_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """linear→relu→linear→tanh→linear (bench ``medium``'s shape): a change of the first W
    reaches the tanh as a rank-1 form with the ReLU's zero rows unchanged, which goes on as
    changed rows (the tanh and the last linear on those rows only) to the
    loss's per-row terms; no dense copy reaches the loss. Equal to the loop."""
    net, x = _net(3, 12, [6, 10, 8, 4], "relu+tanh", "ce_labels")
    calls: dict[str, int] = {}
    _count(monkeypatch, SoftmaxCrossEntropy, "row_terms", calls)
    _count(monkeypatch, SoftmaxCrossEntropy, "forward_copies", calls)
    ref = net.parameters(include_input=False)[0]
    fast, slow = Perturber(net, x), Perturber(net, x, batched=False)
    idx = np.arange(fast.array(ref).size)
    fb, _ = fast.losses(ref, idx, np.array([EPS, -EPS]))
    assert calls.get("row_terms", 0) >= 2
    assert "forward_copies" not in calls
    fl, _ = slow.losses(ref, idx, np.array([EPS, -EPS]))
    np.testing.assert_allclose(fb, fl, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        (fb[:, 0] - fb[:, 1]) / (2 * EPS), (fl[:, 0] - fl[:, 1]) / (2 * EPS), atol=1e-13 / EPS
    )


def test_a_wrong_row_total_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong twin of the changed-rows path: a total that forgets the base rows' terms of the
    changed rows (adds the new terms without subtracting the old) differs from the loop."""
    from gradcheck_cli.engine.lowrank import RowSet

    def wrong(self: Any, base_terms: np.ndarray, new_terms: np.ndarray) -> np.ndarray:
        change = np.bincount(self.copy, new_terms, self.n_copies)
        return np.asarray(base_terms.sum() + change)

    monkeypatch.setattr(RowSet, "losses", wrong)
    net, x = _net(3, 12, [6, 10, 8, 4], "relu+tanh", "ce_labels")
    with pytest.raises(AssertionError):
        assert_engine_matches_loop(net, x, inputs=False)


@pytest.mark.parametrize("step", [1e-5, 0.3])
@pytest.mark.parametrize("loss", ["ce_values", "mse"])
def test_large_and_small_steps_equal_the_loop(step: float, loss: str) -> None:
    """A step too large for tanh's series (|u·w| ≥ 1e-3) takes the changed rows through
    tanh's forward instead; both equal the loop, in chunks of a few copies."""
    net, x = _net(5, 9, [5, 12, 7, 3], "relu+tanh", loss, labels=False)
    fast, slow = Perturber(net, x, chunk_bytes=4000), Perturber(net, x, batched=False)
    for ref in net.parameters(include_input=False):
        idx = np.arange(fast.array(ref).size)
        fb, _ = fast.losses(ref, idx, np.array([step, -step]))
        fl, _ = slow.losses(ref, idx, np.array([step, -step]))
        np.testing.assert_allclose(fb, fl, rtol=0, atol=1e-13, err_msg=ref.name)
        np.testing.assert_allclose(
            (fb[:, 0] - fb[:, 1]) / (2 * step),
            (fl[:, 0] - fl[:, 1]) / (2 * step),
            atol=1e-13 / step,
            err_msg=ref.name,
        )


def test_lean_paths_keep_the_memory_cap() -> None:
    """Paths that never become dense get larger chunks for speed (chunks.lean), but a chunk's
    dense-equivalent arrays still stay within the caller's chunk_bytes (the hard cap)."""
    from gradcheck_cli.engine import chunks

    net, x = _net(0, 16, [6, 20, 12, 4], "relu+tanh", "ce_labels")
    tanh_net, tx = _net(0, 16, [6, 20, 12, 4], "tanh", "ce_labels")
    first = net.parameters(include_input=False)[0]
    assert chunks.lean(Perturber(net, x), first) == "rows"
    assert chunks.lean(Perturber(tanh_net, tx), first) == ""  # tanh rows all change: dense
    assert chunks.lean(Perturber(net, x), net.parameters(include_input=False)[-2]) == "rank1"
    for budget in (2**12, 2**15, 2**20):
        pert = Perturber(net, x, chunk_bytes=budget)
        for ref in net.parameters(include_input=False):
            c = pert.chunk_size(ref)
            assert c == 1 or c * chunks.copy_bytes(pert, ref) * 8 <= budget, (ref.name, c)

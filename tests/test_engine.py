"""The batched engine equals the plain one-at-a-time loop (to round-off) on every built-in layer,
with plugin layers in the middle, in any chunk size; the caller's arrays are never modified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.errors import GradcheckError
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.layers.registry import LAYERS

EPS = 1e-5
#: Attempts to build a layer we know nothing about: (per-sample input shape, args).
ATTEMPTS: list[tuple[tuple[int, ...], dict[str, Any]]] = [
    ((5,), {}),
    ((5,), {"out": 3}),
    ((2, 6, 6), {}),
    ((2, 6, 6), {"out_channels": 2, "kernel": 3}),
    ((2, 6, 6), {"kernel": 2}),
    ((5,), {"layers": [{"type": "linear", "out": 5}, "tanh"]}),
]
#: Layers that cannot take float input at all, and where they are covered instead.
NOT_FLOAT = {"embedding": "takes integer ids; see test_embedding_network_equals_loop"}


def _build(name: str, rng: np.random.Generator) -> tuple[Any, tuple[int, ...]]:
    if name in NOT_FLOAT:
        pytest.skip(f"'{name}' {NOT_FLOAT[name]}")
    errors = []
    for shape, args in ATTEMPTS:
        try:
            layer = make_layer(name, shape, rng, **args)
            layer.forward(rng.standard_normal((3, *shape)))
            return layer, shape
        except (GradcheckError, TypeError, ValueError) as exc:
            errors.append(f"{shape} {args}: {exc}")
    pytest.skip(f"layer '{name}' takes none of the float inputs tried: {'; '.join(errors)}")


def assert_engine_matches_loop(
    net: Network, x: np.ndarray, chunk_bytes: int = 2**20, inputs: bool = True
) -> None:
    """Every entry of every tensor: batched losses == loop losses, numerics equal to round-off."""
    fast = Perturber(net, x, chunk_bytes=chunk_bytes)
    slow = Perturber(net, x, batched=False)
    offsets = np.array([EPS, -EPS, 2 * EPS])
    for ref in net.parameters(include_input=inputs):
        idx = np.arange(fast.array(ref).size)
        fb, hb = fast.losses(ref, idx, offsets)
        fl, hl = slow.losses(ref, idx, offsets)
        np.testing.assert_array_equal(hb, hl, err_msg=f"{ref.name}: steps differ")
        scale = max(1.0, float(np.abs(fl).max()))
        np.testing.assert_allclose(fb, fl, rtol=0, atol=1e-13 * scale, err_msg=ref.name)
        nb = (fb[:, 0] - fb[:, 1]) / (hb[:, 0] - hb[:, 1])
        nl = (fl[:, 0] - fl[:, 1]) / (hl[:, 0] - hl[:, 1])
        np.testing.assert_allclose(nb, nl, rtol=0, atol=1e-13 * scale / EPS, err_msg=ref.name)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("chunk_bytes", [1, 4096, 2**20])
def test_every_builtin_layer_batched_equals_loop(name: str, chunk_bytes: int) -> None:
    rng = np.random.default_rng(7)
    layer, shape = _build(name, rng)
    x = rng.standard_normal((3, *shape))
    out = layer.forward(x.copy())
    net = Network([layer], WeightedSum(rng.standard_normal(out.shape)), x=x, trusted=[True])
    assert_engine_matches_loop(net, x, chunk_bytes)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_builtin_backward_overwrites_and_is_linear(name: str) -> None:
    """The structural check a check skips for built-in layers (structure.backward_consistency
    calls only user layers again), held here: called again as if it were a user layer, no
    built-in backward accumulates into its grads or is non-linear in dout."""
    from gradcheck_cli.engine.structure import backward_consistency

    rng = np.random.default_rng(5)
    layer, shape = _build(name, rng)
    x = rng.standard_normal((3, *shape))
    out = layer.forward(x.copy())
    net = Network([layer], WeightedSum(rng.standard_normal(out.shape)), x=x, trusted=[False])
    net.loss_value(x)
    dx, grads = net.backward()
    assert backward_consistency(net, grads, dx) == []
    net.trusted = [True]
    assert backward_consistency(net, grads, dx) == []  # not called again: nothing to find


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_every_builtin_layer_inside_a_network(name: str, loss: str) -> None:
    """linear → layer → linear → loss: short-cuts, stacked copies and per-copy losses together."""
    rng = np.random.default_rng(11)
    layer, shape = _build(name, rng)
    if len(shape) != 1:
        pytest.skip(f"'{name}' takes {shape}-shaped samples; covered by the single-layer test")
    first = make_layer("linear", (4,), rng, out=shape[0])
    x = rng.standard_normal((5, 4))
    mid = layer.forward(first.forward(x))
    last = make_layer("linear", mid.shape[1:], rng, out=3)
    if loss == "ce":
        lossf: Any = SoftmaxCrossEntropy()
        target = rng.integers(0, 3, size=5)
    else:
        lossf, target = MSE(), rng.standard_normal((5, 3))
    net = Network([first, layer, last], lossf, x=x, target=target, trusted=[True] * 3)
    assert_engine_matches_loop(net, x, chunk_bytes=3000)


class RowPlugin:
    """User layer declaring row independence: out = x·s (per-feature scale)."""

    row_independent = True

    def __init__(self, d: int, rng: np.random.Generator) -> None:
        self.params = {"s": 1 + 0.1 * rng.standard_normal(d)}
        self.grads = {"s": np.zeros(d)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["s"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads["s"] = (dout * self.x).sum(axis=0)
        return dout * self.params["s"]


class Centering(RowPlugin):
    """User layer mixing rows (x − batch mean)·s; does not declare row independence."""

    row_independent = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x - x.mean(axis=0)
        return self.x * self.params["s"]


class PluginLoss:
    """A user loss (no per-copy method): the engine calls its forward once per copy."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self.d = pred - target
        return float((self.d**4).mean())

    def backward(self) -> np.ndarray:
        return 4 * self.d**3 / self.d.size


def _plugin_net(mid: Any, loss: Any, rng: np.random.Generator) -> tuple[Network, np.ndarray]:
    x = rng.standard_normal((6, 4))
    layers = [
        make_layer("linear", (4,), rng, out=5),
        make_layer("tanh", (5,)),
        mid,
        make_layer("linear", (5,), rng, out=3),
        make_layer("sigmoid", (3,)),
    ]
    target = rng.standard_normal((6, 3)) if not isinstance(loss, SoftmaxCrossEntropy) else None
    target = rng.integers(0, 3, size=6) if target is None else target
    trusted = [True, True, False, True, True]
    return Network(layers, loss, x=x, target=target, trusted=trusted), x


@pytest.mark.parametrize("mid_cls", [RowPlugin, Centering])
@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, PluginLoss])
def test_plugin_layer_in_the_middle(mid_cls: type, loss_cls: type) -> None:
    rng = np.random.default_rng(3)
    net, x = _plugin_net(mid_cls(5, rng), loss_cls(), rng)
    assert_engine_matches_loop(net, x, chunk_bytes=2000)


def test_a_row_mixing_layer_that_claims_independence_is_run_once_per_copy() -> None:
    """A layer that mixes rows but declares row_independent = True: the engine's probe sees the
    false declaration, runs it one copy at a time (equal to the loop) and names it."""

    class Liar(Centering):
        row_independent = True

    rng = np.random.default_rng(3)
    net, x = _plugin_net(Liar(5, rng), SoftmaxCrossEntropy(), rng)
    assert_engine_matches_loop(net, x)
    assert any("layer 2 (Liar) declares row_independent" in f for f in net.findings)


def test_stacking_through_a_row_mixing_layer_would_be_wrong() -> None:
    """Negative twin: the equality test can fail — forced past the probe, stacked copies through
    the same layer give different losses, which is why the declaration is verified."""

    class Liar(Centering):
        row_independent = True

    rng = np.random.default_rng(3)
    net, x = _plugin_net(Liar(5, rng), SoftmaxCrossEntropy(), rng)
    fast, slow = Perturber(net, x), Perturber(net, x, batched=False)
    fast._stackable = dict.fromkeys(range(len(net.layers)), True)  # skip the probe
    ref = net.parameters()[1]
    idx = np.arange(fast.array(ref).size)
    fb, _ = fast.losses(ref, idx, np.array([EPS, -EPS]))
    fl, _ = slow.losses(ref, idx, np.array([EPS, -EPS]))
    nb, nl = (fb[:, 0] - fb[:, 1]) / (2 * EPS), (fl[:, 0] - fl[:, 1]) / (2 * EPS)
    assert np.max(np.abs(nb - nl)) > 1e-3 * np.max(np.abs(nl))


def test_subclass_overriding_forward_loses_the_shortcut() -> None:
    """A user subclass of linear with its own forward must be run, not short-cut."""
    from gradcheck_cli.engine.lowrank import declares as _declares
    from gradcheck_cli.layers.linear import Linear

    class Doubled(Linear):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return 2 * super().forward(x)

    rng = np.random.default_rng(0)
    lin, dbl = Linear((3,), rng, out=2), Doubled((3,), rng, out=2)
    assert _declares(lin, "perturbed_columns") and not _declares(dbl, "perturbed_columns")
    x = rng.standard_normal((4, 3))
    net = Network([dbl, make_layer("relu", (2,))], MSE(), x=x, target=np.zeros((4, 2)))
    assert_engine_matches_loop(net, x)


def test_callers_arrays_are_never_modified_and_restored_bit_exactly() -> None:
    rng = np.random.default_rng(5)
    net, x = _plugin_net(Centering(5, rng), SoftmaxCrossEntropy(), rng)
    before = [{k: v.copy() for k, v in la.params.items()} for la in net.layers]
    x_before = x.copy()
    pert = Perturber(net, x, chunk_bytes=500)
    for ref in net.parameters():
        pert.losses(ref, np.arange(pert.array(ref).size), np.array([1e-3, -1e-3]))
        pert.along(ref, rng.standard_normal(pert.array(ref).shape), np.array([1e-3, -1e-3]))
    for la, b in zip(net.layers, before, strict=True):
        for k, v in la.params.items():
            assert v.tobytes() == b[k].tobytes(), k
    assert x.tobytes() == x_before.tobytes()


def test_chunks_respect_the_memory_budget() -> None:
    rng = np.random.default_rng(0)
    lin = make_layer("linear", (8,), rng, out=16)
    x = rng.standard_normal((32, 8))
    net = Network([lin, make_layer("tanh", (16,))], MSE(), x=x, target=np.zeros((32, 16)))
    pert = Perturber(net, x, chunk_bytes=2**16)
    per_copy = 32 * 16 * 8
    assert 1 <= pert.chunk_size(net.parameters()[1]) * per_copy <= 2**16


def test_complex_offsets_give_the_complex_step_derivative() -> None:
    """Seam for complex step: Im L(θ + ih)/h equals the analytic gradient, batched and looped."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    layers = [
        make_layer("linear", (3,), rng, out=4),
        make_layer("tanh", (4,)),
        RowPlugin(4, rng),
        make_layer("linear", (4,), rng, out=2),
    ]
    net = Network(layers, MSE(), x=x, target=rng.standard_normal((4, 2)), trusted=[True] * 4)
    net.loss_value(x)
    dx, grads = net.backward()
    h = 1e-20
    for batched in (True, False):
        pert = Perturber(net, x, batched=batched)
        for ref in net.parameters():
            arr = pert.array(ref)
            f, steps = pert.losses(ref, np.arange(arr.size), np.array([1j * h]))
            analytic = dx if ref.key is None else grads[ref.layer][ref.key]  # type: ignore[index]
            np.testing.assert_allclose(f[:, 0].imag / h, np.ravel(analytic), rtol=1e-12)
            assert not np.iscomplexobj(arr) and np.iscomplexobj(steps)


def test_configs_plugin_without_declaration_runs_once_per_copy() -> None:
    """configs/my_layers.py:ScaledTanh declares nothing, so it is never given stacked copies."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "configs" / "my_layers.py"
    spec = importlib.util.spec_from_file_location("my_layers_engine_test", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(4)
    calls: list[int] = []

    class Counting(mod.ScaledTanh):  # type: ignore[name-defined,misc]
        def forward(self, x: np.ndarray) -> np.ndarray:
            calls.append(x.shape[0])
            return super().forward(x)

    x = rng.standard_normal((6, 4))
    layers = [make_layer("linear", (4,), rng, out=5), Counting((5,), rng), make_layer("relu", (5,))]
    net = Network(layers, MSE(), x=x, target=np.zeros((6, 5)), trusted=[True, False, True])
    assert_engine_matches_loop(net, x)
    assert set(calls) == {6}


def test_peak_memory_is_bounded_by_the_chunk_budget_not_the_entry_count() -> None:
    """Checking 20× more entries must not need more memory: copies are evaluated in chunks."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32))
    layers = [
        make_layer("linear", (32,), rng, out=64),
        make_layer("tanh", (64,)),
        make_layer("linear", (64,), rng, out=64),
        make_layer("relu", (64,)),
        make_layer("linear", (64,), rng, out=10),
    ]
    net = Network(layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 10, 64))
    budget = 2**20
    pert = Perturber(net, x, chunk_bytes=budget)
    ref = net.parameters()[1]  # 0.linear.W: every copy becomes dense after the second linear
    peaks = []
    for n in (100, 2000):
        tracemalloc.start()
        pert.losses(ref, np.arange(n), np.array([1e-5, -1e-5]))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] <= 1.5 * peaks[0] + 2**16, peaks
    assert peaks[1] <= budget, peaks


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_deep_tanh_stack_equals_loop(eps: float) -> None:
    """Dense copies through several tanh layers (tanh's addition-theorem path for small steps,
    its forward for large ones) equal the plain loop."""
    rng = np.random.default_rng(9)
    layers: list[Any] = []
    for _ in range(3):
        layers += [make_layer("linear", (6,), rng, out=6), make_layer("tanh", (6,))]
    layers.append(make_layer("linear", (6,), rng, out=3))
    x = rng.standard_normal((4, 6))
    net = Network(layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 4))
    fast, slow = Perturber(net, x, chunk_bytes=5000), Perturber(net, x, batched=False)
    for ref in net.parameters():
        idx = np.arange(fast.array(ref).size)
        fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
        fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
        np.testing.assert_allclose(fb, fl, rtol=0, atol=1e-14, err_msg=ref.name)
        np.testing.assert_allclose(
            (fb[:, 0] - fb[:, 1]) / (2 * eps), (fl[:, 0] - fl[:, 1]) / (2 * eps), atol=1e-14 / eps
        )


def test_float32_tensors_move_by_float32_steps() -> None:
    """θ + o is rounded to the tensor's dtype: a step below float32 resolution is 0, batched or not."""
    rng = np.random.default_rng(0)
    lin = make_layer("linear", (3,), rng, out=2, dtype="float32")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    net = Network([lin], MSE(), x=x, target=np.zeros((4, 2), np.float32), trusted=[True])
    for batched in (True, False):
        pert = Perturber(net, x, batched=batched)
        f, steps = pert.losses(net.parameters()[1], np.arange(6), np.array([1e-2, 1e-12]))
        assert np.all(steps[:, 1] == 0) and np.all(steps[:, 0] != 0)
        assert np.all(f[:, 1] == pert.f0)


def test_embedding_network_equals_loop() -> None:
    """Integer ids in, embedding rows perturbed one copy at a time, then stacked downstream."""
    rng = np.random.default_rng(6)
    emb = make_layer("embedding", (3,), rng, vocab=7, dim=4)
    ids = rng.integers(0, 7, size=(5, 3))
    h = emb.forward(ids)
    layers = [emb, make_layer("flatten", h.shape[1:])]
    flat = layers[1].forward(h)
    layers += [make_layer("linear", flat.shape[1:], rng, out=3), make_layer("tanh", (3,))]
    net = Network(layers, MSE(), x=ids, target=rng.standard_normal((5, 3)), trusted=[True] * 4)
    assert_engine_matches_loop(net, ids, chunk_bytes=3000, inputs=False)


def test_builtin_layers_in_a_watched_block_keep_fp_events_and_errors_named() -> None:
    """Inside ``Network.watching`` (every forward pass and every chunk of the engine) a built-in
    layer runs without a stage of its own: its floating-point events are still recorded under
    its name, and what it raises is still the user's error naming it."""
    from gradcheck_cli.errors import PluginError

    rng = np.random.default_rng(0)
    layer = make_layer("linear", (2,), rng, out=2)
    layer.params["W"][...] = 1e308
    net = Network([layer], MSE(), x=np.full((1, 2), 10.0), target=np.zeros((1, 2)), trusted=[True])
    with net.watching():
        net.run_layer(0, np.full((1, 2), 10.0))
        with pytest.raises(PluginError, match=r"layer 0 \(Linear\)\.forward raised ValueError"):
            net.run_layer(0, np.ones((1, 3)))
    assert net.fp.notes() == ["NumPy overflow in layer 0 (Linear).forward (1 time)"]
    with pytest.raises(KeyboardInterrupt), net.watching():
        net.layers[0].forward = _interrupt
        net.run_layer(0, np.ones((1, 2)))


def _interrupt(x: Any) -> Any:
    raise KeyboardInterrupt

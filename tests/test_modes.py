"""Modes: full, stratified sample, directional (with elementwise fallback), auto; progress and
Ctrl-C; the CLI options and config keys that select them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_network, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.draws import directions, sample_indices
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy
from tests.buggy_layers import LinearScaled

runner = CliRunner()


def mlp(seed: int, *, bug: float | None = None, act: str = "tanh", loss: str = "ce") -> Network:
    """8 → linear(16) → act → linear(12) → sigmoid → linear(4) → loss; ``bug`` scales the
    middle linear's dW by (1 + bug)."""
    rng = np.random.default_rng(seed)
    mid = (
        LinearScaled((16,), rng, 12, rel=bug)
        if bug is not None
        else make_layer("linear", (16,), rng, out=12)
    )
    layers = [
        make_layer("linear", (8,), rng, out=16),
        make_layer(act, (16,)),
        mid,
        make_layer("sigmoid", (12,)),
        make_layer("linear", (12,), rng, out=4),
    ]
    x = rng.standard_normal((6, 8))
    if loss == "ce":
        lossf: Any = SoftmaxCrossEntropy()
        target: Any = rng.integers(0, 4, size=6)
    else:
        lossf, target = MSE(), rng.standard_normal((6, 4))
    return Network(layers, lossf, x=x, target=target, trusted=[True] * 5)


# -- sample ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "k"), [(1, 5), (7, 3), (100, 10), (101, 100), (5, 5)])
def test_sample_indices_are_stratified_distinct_and_deterministic(size: int, k: int) -> None:
    idx = sample_indices(size, k, 3, "t")
    assert len(idx) == min(size, k)
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < size
    edges = np.linspace(0, size, min(k, size) + 1).astype(int)
    if k < size:  # exactly one index in each stratum
        assert np.all((idx >= edges[:-1]) & (idx < edges[1:]))
    np.testing.assert_array_equal(idx, sample_indices(size, k, 3, "t"))


def test_sample_mode_covers_every_tensor_and_says_how_many() -> None:
    result = check_network(mlp(0), mode="sample", samples=5, seed=0)
    assert result.passed and result.mode == "sample" and result.samples == 5
    for p in result.params:
        size = int(np.prod(p.shape))
        assert p.checked == min(5, size), p.name  # and probes over the whole tensor:
        probed = size > 5
        assert p.mode == ("sample+probes" if probed else "sample"), p.name
        assert p.probes == (2 if probed else 0), p.name
    assert {p.name for p in result.params} >= {"0.Linear.b", "2.Linear.b", "4.Linear.b"}


def test_sample_mode_catches_a_wrong_tensor() -> None:
    result = check_network(mlp(1, bug=1e-3), mode="sample", samples=4, seed=1)
    assert [p.name for p in result.failures] == ["2.LinearScaled.W"]


# -- directional --------------------------------------------------------------------------------
def test_directions_are_unit_and_kept_away_from_zero() -> None:
    v = directions((40, 30), 3, 0, "W")
    flat = v.reshape(3, -1)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1, rtol=1e-12)
    mags = np.abs(flat) / np.abs(flat).max(axis=1, keepdims=True)
    assert mags.min() >= 0.5 / 1.5 - 1e-12  # |v_i| ∈ [0.5, 1.5]·c: no entry near zero
    assert np.any(flat > 0) and np.any(flat < 0)


def test_directions_follow_their_definition() -> None:
    """sign = (r < ½), magnitude 0.5 + (2r mod 1) from one uniform draw r per entry, written
    literally: the fast passes give the same numbers, bit for bit (so seeds keep their probes)."""
    from gradcheck_cli.engine.network import rng_for

    for seed, shape in [(0, (7,)), (3, (40, 30)), (9, (2, 3, 5))]:
        r = rng_for(seed, "probe:W").random((2, int(np.prod(shape))))
        v = np.where(r < 0.5, -1.0, 1.0) * (0.5 + np.mod(2 * r, 1.0))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        assert np.array_equal(directions(shape, 2, seed, "W"), v.reshape(2, *shape))


@pytest.mark.parametrize("seed", range(20))
def test_directional_passes_correct_networks(seed: int) -> None:
    act = ("tanh", "relu", "leaky_relu", "sigmoid")[seed % 4]
    net = mlp(seed, act=act, loss="ce" if seed % 2 else "mse")
    result = check_network(net, mode="directional", probes=2, seed=seed)
    assert result.passed, [(p.name, p.mode, p.rel_error, p.worst[:1]) for p in result.failures]
    assert all(p.mode == "directional" and p.checked == p.probes == 2 for p in result.params)


@pytest.mark.parametrize("seed", range(20))
def test_directional_catches_a_relative_1e_4_bug_in_one_tensor(seed: int) -> None:
    net = mlp(seed, bug=1e-4, act=("tanh", "sigmoid")[seed % 2])
    result = check_network(net, mode="directional", probes=1, seed=seed)
    assert [p.name for p in result.failures] == ["2.LinearScaled.W"]
    bad = result.failures[0]
    # the failing tensor was re-checked entry by entry, so the report names its worst entries
    assert bad.mode == "directional→localised" and bad.checked == 16 * 12 and bad.worst
    assert all(p.mode == "directional" for p in result.params if p is not bad)
    assert [a.split(" fails")[0] for a in result.attribution] == ["layer 2 (LinearScaled)"]


# -- auto and defaults ----------------------------------------------------------------------------
def test_auto_picks_the_most_thorough_mode_that_fits() -> None:
    """Auto counts the work of each mode (modes.choose; no clock): a small network is checked
    fully, whatever the budget; a tiny budget cuts depth, never the cheap looks."""
    roomy = check_network(mlp(0), mode="auto", budget=1e6)
    assert roomy.mode == "full" and roomy.estimate is not None
    assert roomy.estimate.full > 0 and roomy.estimate.sample > 0 and roomy.verified
    tight = check_network(mlp(0), mode="auto", budget=1e-12)
    assert tight.passed and not tight.verified and tight.mode == "full"
    assert len(tight.params) == 7 and all(p.verdict != "not checked" for p in tight.params)
    assert any("budget of 1e-12 s reached; partly checked" in n for n in tight.notes)


def test_default_is_full_without_estimate_for_small_checks() -> None:
    result = check_network(mlp(0))
    assert result.mode == "full" and result.estimate is None
    assert all(p.checked == int(np.prod(p.shape)) for p in result.params)


# -- progress and Ctrl-C ------------------------------------------------------------------------
def test_progress_reports_every_evaluation() -> None:
    seen: list[tuple[int, int]] = []
    check_network(mlp(0), progress=lambda d, t: seen.append((d, t)), chunk_bytes=4096)
    done = [d for d, _ in seen]
    assert done == sorted(done) and len(seen) > 3
    assert (
        seen[-1][0]
        == seen[-1][1]
        == 2 * sum(a.size for la in mlp(0).layers for a in la.params.values()) + 2 * 6 * 8
    )


def test_ctrl_c_returns_a_partial_result_that_does_not_pass() -> None:
    def stop(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    result = check_network(mlp(0), progress=stop)
    assert result.interrupted and not result.passed
    assert 0 < len(result.params) < 7


def test_cli_ctrl_c_shows_partial_report_and_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradcheck_cli.verdict import judge as judge_module

    calls = [0]
    real = judge_module.Judge.__call__

    def judge(self: Any, *a: Any, **k: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:  # Ctrl-C while the third tensor is being checked
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(judge_module.Judge, "__call__", judge)
    res = runner.invoke(app, ["run"])
    assert res.exit_code == 130, res.output
    assert "interrupted" in res.output and "0.linear.W" in res.output


# -- CLI and config -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "mode", "key", "value"),
    [
        (["--mode", "sample", "--samples", "3"], "sample", "samples", 3),
        (["--mode", "directional", "--probes", "2"], "directional", "probes", 2),
        (["--mode", "full"], "full", "samples", None),
        (["--mode", "auto", "--budget", "1000"], "full", "samples", None),
    ],
)
def test_cli_modes_in_json(args: list[str], mode: str, key: str, value: Any) -> None:
    res = runner.invoke(app, ["run", *args, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # nothing but JSON on stdout (no progress bar in pipes)
    assert data["mode"] == mode and data[key] == value
    assert all(r["mode"].startswith(mode) for r in data["results"])
    assert (data["estimate"] is not None) == ("auto" in args)


def test_layer_command_directional() -> None:
    res = runner.invoke(app, ["layer", "linear", "--arg", "out=3", "--mode", "directional"])
    assert res.exit_code == 0, res.output
    assert "directional" in res.output and "probes" in res.output


def test_config_check_section_selects_the_mode(write: Any) -> None:
    path = write(
        "net.yaml",
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\n"
        "check: {mode: sample, samples: 2}\n",
    )
    res = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["mode"] == "sample" and {r["checked"] for r in data["results"]} == {2}
    bad = write("bad.yaml", "input: {shape: [4, 3]}\nlayers: [linear]\ncheck: {mode: fast}\n")
    res = runner.invoke(app, ["run", str(bad)])
    assert res.exit_code == 2 and "check.mode" in res.output

"""The diagnosis of a failing gradient (issue 17): every fingerprint is found on a wrong twin by
the real checker, no fingerprint is claimed for bugs that have none, and the diagnosis reaches
the table, the pytest message and the JSON report.

`python -m tests.test_diagnosis 30` prints the survey over the bug corpus quoted in the README.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.report.jsondoc import to_json_dict
from gradcheck_cli.report.tables import render
from gradcheck_cli.report.text import failure_report
from gradcheck_cli.verdict.diagnosis import Context, diagnose

from .bug_corpus import NETWORKS, bugged, build
from .test_layers_more import loss_network

HERE = Path(__file__).parent
DIAG, MORE, BASIC = (
    HERE / "buggy_diagnosis.py", HERE / "buggy_layers_more.py", HERE / "buggy_layers.py"
)  # fmt: skip

# (plugin, layer kwargs, input shape, tensor (name suffix), kind, expected params)
LAYER_TWINS: list[tuple[str, dict[str, Any], tuple[int, ...], str, str, dict[str, Any]]] = [
    (f"{BASIC}:LinearBiasMean", {"out": 3}, (4, 5), ".b", "scale", {"factor": 0.25}),
    (f"{MORE}:AvgPoolNoDivide", {"kernel": 2}, (2, 2, 4, 4), "input", "scale", {"factor": 4.0}),
    (f"{MORE}:DropoutNoScale", {"p": 0.3}, (4, 5), "input", "scale", {"factor": 0.7}),
    (f"{DIAG}:LinearWeightDecay", {"out": 3}, (4, 5), ".W", "param_term", {"lambda": 0.01}),
    (f"{BASIC}:LinearNoTranspose", {"out": 4}, (3, 4), ".W", "transpose", {}),
    (f"{MORE}:FlattenFortranOrder", {}, (3, 2, 3, 2), "input", "layout", {}),
    (f"{DIAG}:ChannelScaleNHWC", {}, (2, 3, 2, 4), "input", "layout", {}),
    (
        f"{MORE}:Conv2dFlippedKernel",
        {"out_channels": 2, "kernel": 3},
        (2, 3, 5, 5),
        ".W",
        "layout",
        {"map": "numeric flipped along axes (2, 3)"},
    ),
    (
        f"{DIAG}:LinearLastRowNotWritten",
        {"out": 3},
        (4, 5),
        ".W",
        "missing",
        {"axis": 0, "slices": [4]},
    ),
    (f"{DIAG}:LinearWNotWritten", {"out": 3}, (4, 5), ".W", "missing", {"where": "everywhere"}),
    (f"{BASIC}:ReLUNoMask", {}, (6, 5), "input", "spurious", {}),
    (f"{DIAG}:ReLUMaskOfDout", {}, (6, 5), "input", "mask", {}),
    (f"{MORE}:MaxPoolWrongElement", {"kernel": 2}, (2, 2, 4, 4), "input", "mask", {}),
    (f"{MORE}:BatchNormIgnoresMean", {}, (6, 4), "input", "axis", {"axis": 0}),
    (f"{DIAG}:LayerNormNoMeanTerm", {}, (4, 5), "input", "axis", {"axis": 1}),
    (f"{DIAG}:LinearBiasCopyPaste", {"out": 5}, (4, 3), ".b", "few_entries", {"entries": [[4]]}),
]


def _diagnosis_of(result: Any, suffix: str) -> Any:
    (p,) = [p for p in result.params if p.name.endswith(suffix)]
    assert not p.passed, f"{p.name} should fail"
    return p.diagnosis


def _matches(found: Any, kind: str, params: dict[str, Any]) -> bool:
    if found is None or found.kind != kind:
        return False
    for key, want in params.items():
        got = found.params.get(key)
        if isinstance(want, float) and not np.isclose(got, want, rtol=1e-6):
            return False
        if not isinstance(want, float) and got != want:
            return False
    return found.explained >= 0.99


@pytest.mark.parametrize(
    ("plugin", "kwargs", "shape", "tensor", "kind", "params"),
    LAYER_TWINS,
    ids=[f"{t[0].rpartition(':')[2]}-{t[4]}" for t in LAYER_TWINS],
)
@pytest.mark.parametrize("seed", range(3))
def test_wrong_layer_gets_its_diagnosis(
    plugin: str, kwargs: dict, shape: tuple, tensor: str, kind: str, params: dict, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(plugin, shape[1:], rng, **kwargs)
    result = check_layer(layer, rng.standard_normal(shape), seed=seed)
    found = _diagnosis_of(result, tensor)
    assert _matches(found, kind, params), found


@pytest.mark.parametrize("seed", range(3))
def test_repeated_id_overwritten_is_confined_to_its_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(f"{MORE}:EmbeddingOverwrites", (4,), rng, vocab=10, dim=3)
    ids = rng.permutation(10)[:8].reshape(2, 4)
    ids[1, 3] = ids[0, 0]  # one id used twice: its row keeps only the last contribution
    found = _diagnosis_of(check_layer(layer, ids, seed=seed, label="embedding"), ".W")
    assert _matches(found, "few_entries", {"axis": 0, "slices": [int(ids[0, 0])]}), found


LOSS_TWINS = [
    ("softmax_cross_entropy", f"{DIAG}:SoftmaxCENoMean", "scale", {"factor": 5.0}),  # N = 5
    ("mse", f"{BASIC}:MSENoFactor2", "scale", {"factor": 0.5}),
    ("bce_with_logits", f"{MORE}:BCENoMean", "scale", {"factor": 20.0}),  # 5×4 outputs
    ("l1", f"{MORE}:L1NoMean", "scale", {"factor": 20.0}),
    ("nll", f"{MORE}:NLLSignFlip", "sign", {"factor": -1.0}),
]


@pytest.mark.parametrize(("name", "plugin", "kind", "params"), LOSS_TWINS)
@pytest.mark.parametrize("seed", range(2))
def test_wrong_loss_gets_its_diagnosis_in_every_tensor(
    name: str, plugin: str, kind: str, params: dict, seed: int
) -> None:
    from gradcheck_cli.layers.registry import resolve

    net = loss_network(name, {}, seed)
    net.loss = resolve(plugin, "loss", Path("."))()
    result = check_network(net, attribute=False)
    assert {p.name for p in result.failures} >= {"input", "0.linear.W", "0.linear.b"}
    for p in result.failures:
        assert _matches(p.diagnosis, kind, params), (p.name, p.diagnosis)


# -- no false findings --------------------------------------------------------------------------

#: Wrong twins whose error has no fingerprint: the diagnosis must say nothing.
NO_FINGERPRINT = [
    (f"{MORE}:GELUExactMissingTerm", {}, (4, 5)),
    (f"{MORE}:ELUMissingAlpha", {"alpha": 0.5}, (4, 5)),
    (f"{MORE}:SoftplusWrongSign", {}, (4, 5)),
    (f"{MORE}:SiLUNoProductRule", {}, (4, 5)),
    (f"{MORE}:LogSoftmaxNoSum", {}, (4, 5)),
    (f"{MORE}:LayerNormMissingTerm", {}, (4, 5)),
    (f"{MORE}:BatchNormConstantStats", {}, (6, 4)),
    (
        f"{MORE}:Conv2dIgnoresStrideInDx",
        {"out_channels": 2, "kernel": 3, "stride": 2, "padding": 1},
        (2, 2, 6, 6),
    ),
    (f"{MORE}:ResidualNoSkip", {"layers": [{"type": "linear", "out": 4}, "tanh"]}, (5, 4)),
]


@pytest.mark.parametrize(
    ("plugin", "kwargs", "shape"),
    NO_FINGERPRINT,
    ids=[t[0].rpartition(":")[2] for t in NO_FINGERPRINT],
)
@pytest.mark.parametrize("seed", range(3))
def test_bug_without_fingerprint_gets_no_diagnosis(
    plugin: str, kwargs: dict, shape: tuple, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    layer = make_layer(plugin, shape[1:], rng, **kwargs)
    result = check_layer(layer, rng.standard_normal(shape), seed=seed)
    assert result.failures
    assert [p.diagnosis for p in result.failures] == [None] * len(result.failures)


@pytest.mark.parametrize("seed", range(3))
def test_loss_bug_without_fingerprint_gets_no_diagnosis(seed: int) -> None:
    from .buggy_layers_more import HuberUnclipped

    net = loss_network("huber", {"delta": 0.5}, seed)
    net.loss = HuberUnclipped(delta=0.5)
    result = check_network(net, attribute=False)
    assert result.failures and all(p.diagnosis is None for p in result.failures)


#: What the corpus bugs (bug_corpus.Bugged) may be diagnosed as, on any failing tensor:
#: a scale stays a scale upstream, one wrong entry of dx shows as one wrong row or column
#: upstream, and dense random noise has no fingerprint at all.
ALLOWED = {"scale": {"scale", None}, "one-entry": {"few_entries", None}, "dense": {None}}


def survey(seeds: int) -> collections.Counter[tuple[str, str | None]]:
    """(bug kind, diagnosed kind) over every failing tensor of the bug corpus: 7 networks ×
    ``seeds`` × 3 places (first W, last b, an activation's dx) × 3 kinds × 3 sizes."""
    counts: collections.Counter[tuple[str, str | None]] = collections.Counter()
    for spec in NETWORKS:
        for seed in range(seeds):
            net = build(spec, seed)
            first = next(i for i, la in enumerate(net.layers) if la.params)
            last = max(i for i, la in enumerate(net.layers) if la.params)
            act = next(i for i, la in enumerate(net.layers) if not la.params)
            for layer, key in ((first, "W"), (last, "b"), (act, None)):
                for kind in ALLOWED:
                    for r in (1e-1, 1e-3, 1e-5):
                        wrong = bugged(build(spec, seed), layer, key, kind, r, seed)
                        res = check_network(wrong, attribute=False)
                        for p in res.failures:
                            counts[kind, p.diagnosis.kind if p.diagnosis else None] += 1
    return counts


def test_corpus_bugs_get_no_false_fingerprint() -> None:
    counts = survey(2)
    wrong = {k: v for k, v in counts.items() if k[1] not in ALLOWED[k[0]]}
    assert not wrong, wrong
    assert counts["dense", None] > 100  # the check ran and dense bugs were failing
    assert counts["scale", "scale"] > 0.7 * sum(v for k, v in counts.items() if k[0] == "scale")


@pytest.mark.parametrize("seed", range(5))
def test_correct_networks_have_no_diagnosis(seed: int) -> None:
    for spec in NETWORKS:
        res = check_network(build(spec, seed), attribute=False)
        assert res.passed and all(p.diagnosis is None for p in res.params)


# -- the fit itself, on arrays ------------------------------------------------------------------


def _arrays(seed: int, shape: tuple[int, ...] = (6, 5)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape)
    return n, 1e-7 * np.abs(n) + 1e-10


@pytest.mark.parametrize("seed", range(20))
def test_scale_with_noise_above_tolerance_is_not_a_scale(seed: int) -> None:
    n, tol = _arrays(seed)
    noise = np.random.default_rng(100 + seed).standard_normal(n.shape)
    a = 2.0 * n + 1e-3 * noise  # a factor 2 *and* a dense error: no single fingerprint
    assert diagnose(a, n, tol, Context("W", batch=6)) is None
    exact = diagnose(2.0 * n, n, tol, Context("W", batch=6))
    assert exact is not None and exact.kind == "scale" and exact.params["factor"] == 2.0


def test_unchecked_entries_and_kinks() -> None:
    n, tol = _arrays(0)
    a = -n
    part, tol_part = n.copy(), tol.copy()
    part[::2], tol_part[::2] = np.nan, np.nan  # sample mode: half the entries not checked
    found = diagnose(a, part, tol_part, Context("W"))
    assert found is not None and found.kind == "sign"
    # Layout and few-entry claims need every entry: a transpose seen on a sample says nothing.
    sq = n[:5, :5]
    half = np.where(np.arange(25).reshape(5, 5) % 2 == 0, sq, np.nan)
    assert diagnose(sq.T.copy(), half, tol[:5, :5], Context("W")) is None
    assert diagnose(sq.T.copy(), sq, tol[:5, :5], Context("W")).kind == "transpose"
    # At a kink (tolerance +inf) the central estimate is no reference: it is not held against
    # the fit, and it alone never makes a finding.
    kinked = tol.copy()
    kinked[0, 0] = np.inf
    b = 0.5 * n
    b[0, 0] = 7.0
    assert diagnose(b, n, kinked, Context("W")).kind == "scale"
    offset = n + np.linspace(1.0, 2.0, 5)  # a − n constant along axis 0, n wrong at the kink
    offset[0, 0] = 50.0
    found = diagnose(offset, n, kinked, Context("W"))
    assert found is not None and found.kind == "axis" and found.params["axis"] == 0


def test_a_fit_needs_entries_that_confirm_it() -> None:
    """A one-number fit (any c, any λ) is evidence only when at least three entries show it."""
    n = np.array([1.0, 0.0, 0.0])
    tol = np.full(3, 1e-9)
    assert diagnose(np.array([3.0, 0.0, 0.0]), n, tol, Context("b")) is None
    n2, tol2 = _arrays(1, (4,))
    found = diagnose(3.0 * n2, n2, tol2, Context("b"))
    assert found is not None and found.kind == "scale" and np.isclose(found.params["factor"], 3.0)


def test_one_wrong_entry_of_two_is_not_a_regularisation_term() -> None:
    """λ·θ can match one wrong entry exactly when θ is tiny elsewhere: one entry confirms a
    one-number fit, which is no evidence (found as a false param_term before the rule)."""
    n, tol = np.array([0.5, 0.2]), np.full(2, 1e-9)
    a = n + np.array([0.3, 0.0])
    assert diagnose(a, n, tol, Context("b", theta=np.array([1.0, 1e-12]))) is None
    theta = np.array([1.0, -2.0, 0.5])
    n3 = np.array([0.5, 0.2, -0.1])
    found = diagnose(n3 + 0.3 * theta, n3, np.full(3, 1e-9), Context("b", theta=theta))
    assert (
        found is not None and found.kind == "param_term" and np.isclose(found.params["lambda"], 0.3)
    )


def test_error_just_under_tolerance_everywhere_is_not_confined() -> None:
    """One entry over the tolerance, the others just under it: the error is not confined to
    that entry (it explains a small share of Σ(a − n)²), so no few_entries claim."""
    n, tol = _arrays(3)
    sign = np.where(np.random.default_rng(3).random(n.shape) < 0.5, -1.0, 1.0)
    a = n + 0.9 * tol * sign
    a[2, 3] = n[2, 3] + 1.5 * tol[2, 3]
    assert diagnose(a, n, tol, Context("W")) is None
    a[2, 3] = n[2, 3] + 1e3 * tol[2, 3]
    found = diagnose(a, n, tol, Context("W"))
    assert found is not None and found.kind == "few_entries" and found.params["entries"] == [[2, 3]]


def test_diagnosis_is_deterministic_and_costs_no_loss_evaluation(monkeypatch) -> None:
    import gradcheck_cli.checker as checker

    def run() -> tuple[Any, int]:
        net = loss_network("mse", {}, 0)
        from tests.buggy_layers import MSENoFactor2

        calls = [0]
        inner = MSENoFactor2()

        class Counting:
            def forward(self, pred, target):
                calls[0] += 1
                return inner.forward(pred, target)

            def backward(self):
                return inner.backward()

        net.loss = Counting()
        res = check_network(net, attribute=False)
        return [p.diagnosis for p in res.params], calls[0]

    first, evals = run()
    again, evals_again = run()
    assert first == again and all(d is not None and d.kind == "scale" for d in first)
    monkeypatch.setattr(checker, "_diagnosed", lambda network, base, results: results)
    without, evals_without = run()
    assert without == [None] * len(without) and evals == evals_again == evals_without


# -- where it is shown --------------------------------------------------------------------------


def _bias_mean_result(**options: Any) -> Any:
    rng = np.random.default_rng(0)
    layer = make_layer(f"{BASIC}:LinearBiasMean", (5,), rng, out=3)
    return check_layer(layer, rng.standard_normal((4, 5)), label="LinearBiasMean", **options)


def test_diagnosis_in_table_pytest_message_and_json() -> None:
    from .test_reports import REPORT_VALIDATOR

    result = _bias_mean_result()
    console = Console(width=200, record=True, color_system=None)
    console.print(render(result))
    table = console.export_text()
    assert "diagnosis (scale, explains 100.0%): 0.LinearBiasMean.b ≈ 0.25 × numeric" in table
    assert "1/N (N = 4, the batch size)" in table
    assert "diagnosis (scale): 0.LinearBiasMean.b ≈ 0.25 × numeric" in failure_report(result)
    doc = to_json_dict(result)
    REPORT_VALIDATOR.validate(doc)
    by_name = {r["name"]: r["diagnosis"] for r in doc["results"]}
    assert by_name["0.LinearBiasMean.W"] is None
    d = by_name["0.LinearBiasMean.b"]
    assert d["kind"] == "scale" and d["params"]["factor"] == 0.25 and d["explained"] == 1.0
    assert d["sentence"].startswith("0.LinearBiasMean.b ≈ 0.25 × numeric")


def test_pytest_assertion_message_names_the_diagnosis() -> None:
    from gradcheck_cli.testing import assert_gradients

    from .buggy_diagnosis import LinearWeightDecay

    layer = LinearWeightDecay((5,), np.random.default_rng(0), out=3)
    with pytest.raises(AssertionError) as info:
        assert_gradients(layer, np.random.default_rng(1).standard_normal((4, 5)))
    assert "diagnosis (param_term): 0.LinearWeightDecay.W − numeric ≈ λ·θ with λ = 0.01" in str(
        info.value
    )


def test_directional_mode_diagnoses_only_after_elementwise_localisation() -> None:
    result = _bias_mean_result(mode="directional")
    (bad,) = result.failures
    assert bad.mode == "directional→localised"
    assert bad.diagnosis is not None and bad.diagnosis.kind == "scale"
    passing = [p for p in result.params if p.passed]
    assert passing and all(p.diagnosis is None and p.numeric is None for p in passing)


if __name__ == "__main__":  # python -m tests.test_diagnosis [SEEDS]
    counts = survey(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    for bug in ALLOWED:
        total = sum(v for k, v in counts.items() if k[0] == bug)
        parts = ", ".join(f"{k[1]}: {v}" for k, v in sorted(counts.items(), key=str) if k[0] == bug)
        wrong = sum(v for k, v in counts.items() if k[0] == bug and k[1] not in ALLOWED[bug])
        print(f"{bug}: {total} failing tensors → {parts}; wrong kind claimed: {wrong}")

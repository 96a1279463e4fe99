"""Reports pinned by behaviour (issue 28): JUnit's counts agree with its elements for every kind
of outcome, what cannot be XML is escaped, the properties say how the check was made."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import numpy as np

from gradcheck_cli import check_layer, make_layer
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.report.junit import result_to_junit, to_junit
from gradcheck_cli.results import CheckResult
from gradcheck_cli.suite import Outcome, SuiteResult


class Scaled:
    """out = x·w; ``bug`` scales dx (a wrong backward when ≠ 1)."""

    row_independent = True

    def __init__(self, bug: float = 1.0) -> None:
        self.params = {"w": np.array([1.0, 2.0, -1.0])}
        self.grads: dict[str, np.ndarray] = {}
        self.bug = bug

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": (dout * self.x).sum(0)}
        return self.bug * dout * self.params["w"]


def _results() -> dict[str, CheckResult]:
    x = np.random.default_rng(0).standard_normal((4, 3))
    good = check_layer(Scaled(), x, seed=0)
    bad = check_layer(Scaled(1.01), x, seed=0)
    assert good.passed and not bad.passed
    return {
        "good": good,
        "bad": bad,
        "problem": dataclasses.replace(good, problems=("forward is not deterministic",)),
        "interrupted": dataclasses.replace(good, interrupted=True),
    }


def _counts(element: ET.Element) -> tuple[int, int, int]:
    cases = list(element.iter("testcase"))
    return (
        len(cases),
        sum(c.find("failure") is not None for c in cases),
        sum(c.find("error") is not None for c in cases),
    )


def _config(suite: ET.Element) -> str:
    """The config a suite is for: its 'config' property, or its name (an unreadable config)."""
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    return props.get("config") or suite.get("name") or ""


def test_junit_counts_match_its_elements_for_every_kind_of_outcome() -> None:
    """tests / failures / errors, per suite and in total, are the testcases, <failure> and
    <error> elements actually written: a passing, failing, whole-network problem, interrupted
    and unreadable config each counted once and in the right column."""
    r = _results()
    outcomes = [Outcome(name, result=res) for name, res in r.items()]
    outcomes.append(Outcome("broken.yaml", error=ConfigError("unknown layer 'nope'")))
    root = ET.fromstring(to_junit(SuiteResult(tuple(outcomes))))
    suites = root.findall("testsuite")
    assert len(suites) == 5
    for suite in suites:
        want = tuple(int(suite.get(k, "-1")) for k in ("tests", "failures", "errors"))
        assert want == _counts(suite), suite.get("name")
    total = tuple(int(root.get(k, "-1")) for k in ("tests", "failures", "errors"))
    assert total == _counts(root)
    by = {_config(s): s for s in suites}
    assert _counts(by["good"]) == (len(r["good"].params), 0, 0)
    assert _counts(by["bad"])[1] == len(r["bad"].failures) >= 1
    assert _counts(by["problem"]) == (len(r["good"].params) + 1, 1, 0)
    assert _counts(by["interrupted"]) == (len(r["good"].params) + 1, 0, 1)
    assert _counts(by["broken.yaml"]) == (1, 0, 1)


def test_junit_failure_names_the_failing_tensor_and_its_worst_entries() -> None:
    bad = _results()["bad"]
    root = ET.fromstring(result_to_junit(bad))
    failing = {c.get("name"): c.find("failure") for c in root.iter("testcase")}
    names = {p.name for p in bad.failures}
    assert {n for n, f in failing.items() if f is not None} == names
    for name in names:
        f = failing[name]
        assert f is not None and f.get("type") == "GradientMismatch"
        assert "entries disagree" in (f.get("message") or "") or f.get("message")
        assert (f.text or "").strip()


def test_junit_properties_say_how_the_check_was_made() -> None:
    res = check_layer(make_layer("tanh", (3,)), np.ones((2, 3)) * 0.3, seed=7, rtol=1e-6)
    props = {
        p.get("name"): p.get("value") for p in ET.fromstring(result_to_junit(res)).iter("property")
    }
    assert props["seed"] == "7" and props["method"] == "central" and props["dtype"] == "float64"
    assert props["rtol"] == "1e-06" and props["eps"] == f"{res.eps:g}" and props["atol"] == "0"


def test_junit_stays_readable_xml_whatever_the_names_hold() -> None:
    """Control characters and lone surrogates (not XML even escaped) are written as \\xNN /
    \\uNNNN, so the file still parses and names the config."""
    good = _results()["good"]
    text = result_to_junit(good, config="net\x01\x1f\ud800.yaml")
    root = ET.fromstring(text.encode("utf-8", "surrogatepass"))
    assert "net\\x01\\x1f\\ud800.yaml" in {s.get("name") for s in root.iter("testsuite")} | {
        p.get("value") for p in root.iter("property")
    }


# -- GitHub annotations and step summary ---------------------------------------------------------


def test_github_annotations_one_error_per_failing_tensor_or_problem_then_a_notice() -> None:
    from gradcheck_cli.report.github import render_suite

    r = _results()
    outcomes = (
        Outcome("good.yaml", result=r["good"]),
        Outcome("bad.yaml", result=r["bad"]),
        Outcome("problem.yaml", result=r["problem"]),
        Outcome("broken.yaml", error=ConfigError("unknown layer 'nope'")),
    )
    lines = render_suite(SuiteResult(outcomes)).splitlines()
    errors = [ln for ln in lines if ln.startswith("::error ")]
    assert len(errors) == len(r["bad"].failures) + 1 + 1  # tensors, the problem, the config
    assert sum("file=bad.yaml" in ln for ln in errors) == len(r["bad"].failures)
    assert any("file=broken.yaml" in ln and "invalid config" in ln for ln in errors)
    assert lines[-1] == "::notice title=gradcheck::4 configs: 1 passed, 2 failed, 1 invalid"
    notices = [ln for ln in lines if ln.startswith("::notice ")]
    assert len(notices) == 4  # one summary per result, and the suite's


def test_github_escaping_keeps_each_annotation_on_one_line() -> None:
    from gradcheck_cli.report.github import command

    line = command("error", "100% off\r\nnext", file="a:b,c.yaml", title="t")
    assert line == "::error file=a%3Ab%2Cc.yaml,title=t::100%25 off%0D%0Anext"
    assert command("notice", "ok") == "::notice::ok"


def test_github_summary_line_names_what_is_open_when_nothing_disagrees() -> None:
    from gradcheck_cli.report.github import summary_line

    layer = make_layer("tanh", (6,))
    x = np.random.default_rng(0).standard_normal((4, 6))
    open_ = check_layer(layer, x, seed=0, resolution=1e-13)
    assert open_.passed and open_.params[0].verdict == "inconclusive"
    # The counted closing line (issue 22): the inconclusive tensor is counted and named, it is
    # not called agreeing, and the line says what --strict does with it.
    line = summary_line(open_)
    assert line.startswith("tanh: 1 inconclusive — not verified: inconclusive: input (")
    assert line.endswith("; --strict fails them") and "agree" not in line
    bad = _results()["bad"]
    line = summary_line(bad)
    assert f"{len(bad.failures)} of {len(bad.params)} gradients disagree" in line


def test_step_summary_rows_count_agreeing_tensors_and_escape_pipes() -> None:
    from gradcheck_cli.report.github import step_summary

    r = _results()
    text = step_summary(
        SuiteResult(
            (
                Outcome("a|b.yaml", result=r["good"]),
                Outcome("bad.yaml", result=r["bad"]),
                Outcome("broken.yaml", error=ConfigError("bad\nvalue")),
            )
        )
    )
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    n = len(r["good"].params)
    assert rows[0] == f"| `a\\|b.yaml` | {n}/{n} | ✅ pass |  |"
    bad_n, bad_f = len(r["bad"].params), len(r["bad"].failures)
    assert rows[1].startswith(f"| `bad.yaml` | {bad_n - bad_f}/{bad_n} | ❌ FAIL | `")
    assert rows[2] == "| `broken.yaml` | — | ⚠️ ERROR | bad value |"
    assert text.count("<details>") == bad_f and text.count("</details>") == bad_f


# -- JSON ------------------------------------------------------------------------------------------


def test_json_report_is_strict_json_with_the_verdict_and_worst_entry() -> None:
    """Non-finite numbers are null (strict JSON), `passed` is the run's, each tensor carries its
    verdict, resolution and worst entry, and per-entry bulk arrays stay out."""
    import json

    from gradcheck_cli.report.jsondoc import to_json

    bad = _results()["bad"]
    lost = dataclasses.replace(
        bad, params=tuple(dataclasses.replace(p, resolution=float("inf")) for p in bad.params)
    )
    doc = json.loads(to_json(lost))
    assert doc["passed"] is False and doc["schema_version"] == 1
    assert [r["name"] for r in doc["results"]] == [p.name for p in bad.params]
    for r, p in zip(doc["results"], bad.params, strict=True):
        assert r["passed"] is p.passed and r["verdict"] == p.verdict
        assert r["resolution"] is None  # inf → null
        assert "ratios" not in r and "tolerance" not in r
        if p.worst:
            assert r["worst_index"] == list(p.worst[0].index)
            assert r["analytic"] == p.worst[0].analytic and r["numeric"] == p.worst[0].numeric
            assert r["worst"][0]["status"] == p.worst[0].status
            assert r["worst"][0]["tolerance"] == p.worst[0].tol
    good = json.loads(to_json(_results()["good"]))
    assert good["passed"] is True and all(r["passed"] for r in good["results"])


def test_json_cleaning_makes_plain_data() -> None:
    from enum import Enum

    from gradcheck_cli.report.jsondoc import _clean

    class Colour(Enum):
        RED = "red"

    data = {1: (np.float64(2.5), np.int64(3)), "a": [float("nan"), -float("inf"), 1.0]}
    data["e"] = Colour.RED  # type: ignore[assignment]
    data["arr"] = np.array([[1.0, np.inf]])  # type: ignore[assignment]
    assert _clean(data) == {
        "1": [2.5, 3], "a": [None, None, 1.0], "e": "red", "arr": [[1.0, None]],
    }  # fmt: skip
    assert type(_clean(np.int64(3))) is int


def test_a_failing_tensor_with_a_reason_reports_the_reason() -> None:
    """A tensor that fails for a stated reason (a wrong-shaped gradient, say) carries it as the
    <failure> message and text, and in its GitHub annotation."""
    from gradcheck_cli.report.github import annotation_lines

    bad = _results()["bad"]
    why = "grads['w'] has shape (2,), expected (3,)"
    p0 = dataclasses.replace(bad.failures[0], reason=why)
    res = dataclasses.replace(bad, params=(p0,))
    (case,) = ET.fromstring(result_to_junit(res)).iter("testcase")
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == why
    assert (failure.text or "").startswith(why + "\n")
    assert any(f"::{p0.name}: {why}" in ln for ln in annotation_lines(res))


def test_a_passing_summary_says_all_gradients_agree() -> None:
    from gradcheck_cli.report.github import summary_line

    good = _results()["good"]
    assert summary_line(good).startswith(f"Scaled: all {len(good.params)} gradients agree (")


def test_a_failing_summary_says_what_disagrees_even_with_inconclusive_tensors() -> None:
    from gradcheck_cli.report.github import summary_line

    r = _results()
    open_ = dataclasses.replace(r["good"].params[0], name="extra", verdict="inconclusive")
    mixed = dataclasses.replace(r["bad"], params=(*r["bad"].params, open_))
    line = summary_line(mixed)
    n = len(mixed.params)
    assert line.startswith(f"Scaled: {len(r['bad'].failures)} of {n} gradients disagree: "), line

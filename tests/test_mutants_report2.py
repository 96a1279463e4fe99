"""Reports pinned by behaviour (issue 28, third round): what a GitHub annotation and the step
summary show of a failing tensor — its failing entries only, its diagnosis when it has one and
no blank line when not — and ..."""

from __future__ import annotations

import dataclasses

from gradcheck_cli.report.github import annotation_lines, step_summary, summary_line
from gradcheck_cli.results import CheckResult
from gradcheck_cli.suite import Outcome, SuiteResult
from tests.test_mutants_report import _results


def _bad() -> tuple[CheckResult, object]:
    r = _results()["bad"]
    failing = r.params[0]
    assert failing.verdict == "fail" and failing.diagnosis is not None
    return r, failing


def _error_message(r: CheckResult) -> str:
    (line,) = [ln for ln in annotation_lines(r, "bad.yaml") if ln.startswith("::error ")]
    return line.split("::", 2)[2]


def test_an_annotation_lists_the_failing_worst_entries_only() -> None:
    r, p = _bad()
    entries = list(p.worst)  # type: ignore[attr-defined]
    mixed = (entries[0], dataclasses.replace(entries[1], status="pass"), entries[2])
    msg = _error_message(
        dataclasses.replace(r, params=(dataclasses.replace(p, worst=mixed), *r.params[1:]))
    )
    lines = msg.split("%0A")
    assert lines[1].startswith("diagnosis (scale)")
    assert len(lines) == 2 + 2  # headline, diagnosis, the two failing entries
    assert lines[2].startswith(f"[{entries[0].index[0]}, {entries[0].index[1]}]: analytic")


def test_an_annotation_without_a_diagnosis_has_no_blank_line() -> None:
    r, p = _bad()
    plain = dataclasses.replace(p, diagnosis=None)
    msg = _error_message(dataclasses.replace(r, params=(plain, *r.params[1:])))
    lines = msg.split("%0A")
    assert "" not in lines and len(lines) == 1 + len(p.worst)  # type: ignore[attr-defined]
    assert lines[1].startswith("[")


def test_a_failed_check_with_nothing_to_count_has_no_empty_parentheses() -> None:
    r, _ = _bad()
    failed = dataclasses.replace(r, params=(), problems=("forward is not deterministic",))
    line = summary_line(failed).splitlines()[0]
    assert line == f"{r.name}: check failed"


def test_the_step_summary_shows_the_diagnosis_and_every_failing_entry() -> None:
    r, p = _bad()
    text = step_summary(SuiteResult((Outcome("bad.yaml", result=r),)))
    assert "diagnosis (scale): input ≈ 1.01 × numeric everywhere" in text
    block = text.split("```")[1].strip().splitlines()
    assert len(block) == len(p.worst)  # type: ignore[attr-defined]
    first = p.worst[0]  # type: ignore[attr-defined]
    assert block[0].startswith(f"[{first.index[0]}, {first.index[1]}]: analytic")


# -- JUnit: skipped counts and failure text; JSON: the estimate ---------------------------------


def _open() -> CheckResult:
    """A passing check of an inconclusive tensor (not verified: skipped in JUnit)."""
    import numpy as np

    from gradcheck_cli import check_layer, make_layer

    x = np.random.default_rng(0).standard_normal((4, 6))
    r = check_layer(make_layer("tanh", (6,)), x, seed=0, resolution=1e-13)
    assert r.passed and not r.params[0].verified
    return r


def test_junit_skipped_counts_the_passing_unverified_tensors_per_suite_and_in_total() -> None:
    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit

    r, _ = _bad()
    open_ = _open()
    outcomes = (Outcome("bad.yaml", result=r), Outcome("a.yaml", result=open_),
                Outcome("b.yaml", result=open_))  # fmt: skip
    root = ET.fromstring(to_junit(SuiteResult(outcomes)))
    for suite in root.findall("testsuite"):
        assert int(suite.get("skipped", "-1")) == len(suite.findall("testcase/skipped"))
    assert [s.get("skipped") for s in root.findall("testsuite")] == ["0", "1", "1"]
    assert root.get("skipped") == "2" and len(root.findall("testsuite/testcase/skipped")) == 2


def test_junit_failure_text_without_a_diagnosis_starts_with_the_worst_entries() -> None:
    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit

    r, p = _bad()
    plain = dataclasses.replace(r, params=(dataclasses.replace(p, diagnosis=None), *r.params[1:]))
    root = ET.fromstring(to_junit(SuiteResult((Outcome("bad.yaml", result=plain),))))
    (failure,) = root.iter("failure")
    assert (failure.text or "").startswith("worst entries of input:\n")


def test_the_json_report_carries_autos_estimate_indented_by_two() -> None:
    from gradcheck_cli.plan.modes import Estimate
    from gradcheck_cli.report.jsondoc import to_json, to_json_dict

    r, _ = _bad()
    assert to_json_dict(r)["estimate"] is None
    est = Estimate(4e11, 6e10, 1e9, 20_001, 8e10, "sample", 64, 2)
    got = to_json_dict(dataclasses.replace(r, estimate=est))["estimate"]
    assert got == {"unit": "operations", "limit": 8e10, "full": 4e11, "sample": 6e10,
                   "directional": 1e9, "chosen": "sample"}  # fmt: skip
    assert to_json(r).splitlines()[1].startswith('  "') and not to_json(r).startswith("{\n   ")


def test_a_failing_summary_line_counts_the_outcomes_and_junit_says_the_diagnosis() -> None:
    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit

    r, _ = _bad()
    assert summary_line(r).splitlines()[0].endswith(
        "1 of 2 gradients disagree: input (1 disagree · 1 agree)"
    )
    root = ET.fromstring(to_junit(SuiteResult((Outcome("bad.yaml", result=r),))))
    (failure,) = root.iter("failure")
    assert "entries disagree: rel err" in failure.get("message", "")
    assert "; diagnosis (scale): input ≈ 1.01 × numeric everywhere" in failure.get("message", "")

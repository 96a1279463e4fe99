"""What a suite tells CI (issue 28): the JSON ``passed``/``exit_code``/counts of several configs,
what each format prints and which files are written or appended to (report/emit.py,
report/json_suite.py), and the plain-text lines an assertion message and the annotations share
(report/text.py). Small and fast: benchmarks/mutate.py runs this file first for those modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from gradcheck_cli import CheckResult, check_function
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.report import emit, json_suite, text
from gradcheck_cli.suite import Outcome, SuiteResult

OPS = """
def lin_forward(x, w):
    return x * w, (x, w)

def lin_backward(dout, cache):
    x, w = cache
    return dout * w, (dout * x).sum(0)

def bad_forward(x, w):
    return x * w, (x, w)

def bad_backward(dout, cache):
    x, w = cache
    return dout * w, (dout * x).mean(0)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CheckResult]:
    ops = tmp_path_factory.mktemp("ops") / "ops.py"
    ops.write_text(OPS)
    shapes = {"x": (3, 4), "w": (4,)}
    good = check_function(f"{ops}:lin", shapes=shapes)
    bad = check_function(f"{ops}:bad", shapes=shapes)
    assert good.passed and not bad.passed
    return {"good": good, "bad": bad}


def _suite(results: dict[str, CheckResult], *which: str) -> SuiteResult:
    out = []
    for w in which:
        if w == "error":
            out.append(Outcome("e.yaml", error=ConfigError("layers[0].type: no layer 'lienar'")))
        else:
            out.append(Outcome(f"{w}.yaml", result=results[w]))
    return SuiteResult(tuple(out))


def _plain(renderable: Any) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


# -- the JSON of a suite ----------------------------------------------------------------------------


def test_suite_json_counts_every_status_and_fails(results: dict[str, CheckResult]) -> None:
    doc = json.loads(json_suite.suite_to_json(_suite(results, "good", "bad", "error", "good")))
    assert doc["passed"] is False and doc["exit_code"] == 2 and doc["verified"] is False
    assert doc["counts"] == {"pass": 2, "fail": 1, "error": 1}
    assert [c["status"] for c in doc["configs"]] == ["pass", "fail", "error", "pass"]
    assert [c["config"] for c in doc["configs"]] == ["good.yaml", "bad.yaml", "e.yaml", "good.yaml"]
    assert doc["configs"][0]["error"] is None and doc["configs"][0]["report"]["passed"] is True
    assert doc["configs"][1]["report"]["passed"] is False
    assert doc["configs"][2]["report"] is None and "lienar" in doc["configs"][2]["error"]
    assert doc["tensor_counts"]["disagree"] == 1


def test_suite_json_passes_only_when_every_config_passes(results: dict[str, CheckResult]) -> None:
    doc = json_suite.suite_to_json_dict(_suite(results, "good", "good"))
    assert doc["passed"] is True and doc["exit_code"] == 0
    assert doc["counts"] == {"pass": 2, "fail": 0, "error": 0}
    doc = json_suite.suite_to_json_dict(_suite(results, "good", "bad"))
    assert doc["passed"] is False and doc["exit_code"] == 1
    assert doc["counts"] == {"pass": 1, "fail": 1, "error": 0}


def test_suite_json_is_laid_out_like_the_single_report(results: dict[str, CheckResult]) -> None:
    """One key per line, two spaces per level, as `jsondoc.to_json` (the single report): a CI
    log shows and greps both alike."""
    from gradcheck_cli.report.jsondoc import to_json

    lines = json_suite.suite_to_json(_suite(results, "good")).splitlines()
    assert (
        lines[1] == '  "schema_version": ' + to_json(results["good"]).splitlines()[1].split(": ")[1]
    )
    assert lines[2] == '  "passed": true,'


# -- what each format prints and writes ------------------------------------------------------------


def test_a_suite_prints_json_github_or_the_table(results: dict[str, CheckResult]) -> None:
    suite = _suite(results, "good", "bad")
    out = emit.suite(suite, {}, emit.OutputOptions(fmt="json"))
    assert isinstance(out.stdout, str) and json.loads(out.stdout)["exit_code"] == 1
    out = emit.suite(suite, {}, emit.OutputOptions(fmt="github"))
    assert isinstance(out.stdout, str) and "::error" in out.stdout
    assert not out.files and not out.appends  # no step summary asked for
    out = emit.suite(suite, {"bad.yaml": "gradcheck run bad.yaml --seed 0"}, emit.OutputOptions())
    shown = _plain(out.stdout)
    assert "summary" in shown and "bad.yaml" in shown and "gradcheck run bad.yaml" in shown


def test_only_failures_trims_the_suite_view(results: dict[str, CheckResult]) -> None:
    suite = _suite(results, "good", "bad")
    full = _plain(emit.suite(suite, {}, emit.OutputOptions()).stdout)
    trimmed = _plain(emit.suite(suite, {}, emit.OutputOptions(only_failures=True)).stdout)
    assert "good.yaml" in full and "good.yaml" not in trimmed and "bad.yaml" in trimmed


def test_files_and_appends(results: dict[str, CheckResult], tmp_path: Path) -> None:
    suite = _suite(results, "good", "bad")
    xml, html, svg, md = (tmp_path / n for n in ("r.xml", "r.html", "r.svg", "s.md"))
    opts = emit.OutputOptions(fmt="github", junit_xml=xml, export_html=html, export_svg=svg,
                              step_summary=md)  # fmt: skip
    out = emit.suite(suite, {}, opts)
    assert set(out.files) == {xml, html, svg}
    assert "<testsuite" in out.files[xml] and "<html" in out.files[html].lower()
    assert "<svg" in out.files[svg]
    assert list(out.appends) == [md] and "bad" in out.appends[md]
    # a step summary belongs to the github format only
    out = emit.suite(suite, {}, emit.OutputOptions(fmt="json", step_summary=md))
    assert not out.appends and not out.files


def test_a_single_outcome_in_each_format(results: dict[str, CheckResult]) -> None:
    bad = Outcome("bad.yaml", result=results["bad"])
    out = emit.single(bad, None, emit.OutputOptions(fmt="json"))
    assert isinstance(out.stdout, str) and json.loads(out.stdout)["passed"] is False
    out = emit.single(bad, None, emit.OutputOptions(fmt="github"), file="bad.yaml")
    assert isinstance(out.stdout, str) and "::error file=bad.yaml" in out.stdout
    out = emit.single(bad, "gradcheck fn … --seed 0", emit.OutputOptions())
    shown = _plain(out.stdout)
    assert "disagree" in shown and "gradcheck fn … --seed 0" in shown
    good = Outcome("good.yaml", result=results["good"])
    shown = _plain(emit.single(good, None, emit.OutputOptions(only_failures=True)).stdout)
    full = _plain(emit.single(good, None, emit.OutputOptions()).stdout)
    assert len(shown) < len(full)  # the agreeing rows are trimmed


def test_a_single_invalid_config_prints_only_as_a_github_annotation(tmp_path: Path) -> None:
    err = Outcome("e.yaml", error=ConfigError("no layer 'lienar'"))
    for fmt in ("table", "json"):
        assert emit.single(err, None, emit.OutputOptions(fmt=fmt)).stdout is None
    out = emit.single(err, None, emit.OutputOptions(fmt="github"), file="e.yaml")
    assert isinstance(out.stdout, str)
    assert out.stdout.startswith("::error file=e.yaml") and "lienar" in out.stdout
    xml = tmp_path / "r.xml"
    out = emit.single(err, None, emit.OutputOptions(junit_xml=xml))
    assert "lienar" in out.files[xml] and 'errors="1"' in out.files[xml]
    html = tmp_path / "r.html"
    out = emit.single(err, None, emit.OutputOptions(export_html=html))
    assert "lienar" in out.files[html]


def test_show_entries_reaches_the_view(results: dict[str, CheckResult]) -> None:
    bad = Outcome("bad.yaml", result=results["bad"])
    plain = _plain(emit.single(bad, None, emit.OutputOptions()).stdout)
    maps = _plain(emit.single(bad, None, emit.OutputOptions(show_entries=True)).stdout)
    assert len(maps) > len(plain)


# -- the plain-text pieces ----------------------------------------------------------------------


def test_small_words() -> None:
    assert (
        text.every(1, "one", "{n} many") == "one" and text.every(2, "one", "{n} many") == "2 many"
    )
    assert text.every(0, "one", "{n} many") == "0 many"
    names = [f"t{i}" for i in range(10)]
    assert text.listing(names) == "t0, t1, t2, t3, t4, t5, t6, t7 and 2 more"
    assert text.listing(names[:8]) == "t0, t1, t2, t3, t4, t5, t6, t7"
    assert text.method_words("complex") == "complex step"
    assert text.method_words("central") == "central differences"
    assert text.num(float("nan")) == "—" and text.num(1.5) == "1.50e+00"
    assert text.value(-0.0, "g") == "0" and text.value(-1.0, "g") == "-1"
    assert text.index((1, 2)) == "[1, 2]"
    assert text.table(["a", "bb", "c"], [["xx", "1", "y"]]) == "  a   bb  c\n  xx   1  y"


def test_closing_lines(results: dict[str, CheckResult]) -> None:
    good, bad = results["good"], results["bad"]
    assert text.closing(good) == ("✓", "all 2 gradients agree", "")
    mark, head, tail = text.closing(bad)
    assert mark == "✗" and head == "1 of 2 gradients disagree: w"
    assert tail == "1 disagree · 1 agree"


def test_the_assertion_message_names_the_failing_tensor(results: dict[str, CheckResult]) -> None:
    assert text.failure_report(results["good"]) == ""
    msg = text.failure_report(results["bad"])
    first = msg.splitlines()[0]
    assert first.startswith("gradients disagree for 1 of 2 tensors of 'bad_forward'")
    assert "w: worst entries" in msg and "x: worst entries" not in msg
    assert "--strict" not in msg
    assert "central differences" in first and "seed 0" in first


def test_an_error_is_shown_as_red_text() -> None:
    view = emit._outcome_view(Outcome("e.yaml", error=ConfigError("boom")), None,
                              emit.OutputOptions())  # fmt: skip
    assert isinstance(view, Text) and view.plain.startswith("error: boom")


def _tanh(**kw: Any) -> CheckResult:
    import numpy as np

    from gradcheck_cli import check_layer, make_layer

    x = np.random.default_rng(0).standard_normal((4, 6))
    return check_layer(make_layer("tanh", (6,)), x, seed=0, resolution=1e-13, **kw)


def test_an_unverified_pass_closes_with_a_warning_and_strict_fails_it() -> None:
    open_ = _tanh()
    mark, head, tail = text.closing(open_)
    assert (mark, head) == ("⚠", "1 inconclusive")
    assert tail.startswith("not verified: inconclusive: input (the estimate")
    assert tail.endswith("; --strict fails them")
    assert text.failure_report(open_) == "" and [p.name for p in text.unverified(open_)] == [
        "input"
    ]
    assert text.skip_reason(open_.params[0]).startswith("inconclusive: the estimate did not")
    assert "(inconclusive: resolved to" in text.skip_reason(open_.params[0])
    strict = _tanh(strict=True)
    assert text.closing(strict) == (
        "✗",
        "1 of 1 not shown right (--strict): input",
        "1 inconclusive",
    )
    msg = text.failure_report(strict)
    assert msg.startswith("1 of 1 tensors not shown right (--strict) of 'tanh'")
    assert msg.splitlines()[0].endswith(", strict)") and "input: worst entries" in msg


def test_a_report_with_both_wrong_and_unshown_tensors_names_both(
    results: dict[str, CheckResult],
) -> None:
    import dataclasses

    unshown = dataclasses.replace(_tanh(strict=True).params[0], name="extra")
    mixed = dataclasses.replace(results["bad"], params=(*results["bad"].params, unshown))
    mark, head, _ = text.closing(mixed)
    assert mark == "✗"
    assert head == "1 of 3 gradients disagree: w; 1 of 3 not shown right (--strict): extra"
    first = text.failure_report(mixed).splitlines()[0]
    assert first.startswith("gradients disagree for 1 of 3 tensors of")
    assert first.endswith("; 1 more not shown right (--strict)")


def test_why_unverified_lists_at_most_the_given_number() -> None:
    import dataclasses

    p = _tanh().params[0]
    many = [dataclasses.replace(p, name=f"t{i}") for i in range(10)]
    why = text.why_unverified(many)  # eight names at most
    assert why.startswith("inconclusive: t0, t1") and "t7 and 2 more (" in why
    assert text.counts_text(many) == "10 inconclusive" and text.counts_text([]) == "nothing"


def test_describe_says_what_was_done(results: dict[str, CheckResult]) -> None:
    import dataclasses

    good = results["good"]
    line = text.describe(good)
    assert line == (
        f"central differences, ε={good.eps:g}, float64, seed 0, rtol={good.rtol:g}, "
        f"atol={good.atol:g} + noise"
    )
    assert text.describe(dataclasses.replace(good, seed=None)).count("seed —") == 1
    strict = text.describe(dataclasses.replace(good, strict=True))
    assert strict.endswith(" + noise, strict")
    f32 = text.describe(dataclasses.replace(good, dtype="float32", reference="float64"))
    assert "float32 (numerics in float64), seed 0" in f32


def test_a_network_problem_without_a_failing_tensor_is_reported_as_such(
    results: dict[str, CheckResult],
) -> None:
    import dataclasses

    broken = dataclasses.replace(results["good"], problems=("the loss is not finite",))
    assert not broken.passed and not broken.failures
    lines = text.failure_report(broken).splitlines()
    assert lines[0].startswith("gradients disagree for 0 of 2 tensors of 'lin_forward' (")
    assert "--strict" not in lines[0] and lines[1] == "  the loss is not finite"
    assert text.closing(broken) == ("✗", "check failed", "2 agree")


def test_skip_reason_names_the_budget_cut_and_a_scalar_is_named_so(
    results: dict[str, CheckResult],
) -> None:
    import dataclasses

    p = _tanh().params[0]
    cut = dataclasses.replace(p, cut="the budget stopped it after 3 of 24 entries")
    reason = text.skip_reason(cut)
    assert reason.endswith("(the budget stopped it after 3 of 24 entries)"), reason
    bad = results["bad"]
    scalar = dataclasses.replace(bad.failures[0], shape=())
    msg = text.failure_report(dataclasses.replace(bad, params=(bad.params[0], scalar)))
    row = next(ln for ln in msg.splitlines() if ln.strip().startswith("w "))
    assert "scalar" in row.split()

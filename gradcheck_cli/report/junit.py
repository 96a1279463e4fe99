"""JUnit XML: one <testsuite> per config, one <testcase> per checked tensor.

A failing tensor carries <failure message="…"> with its worst entries as text; a tensor that did not
fail but was not verified (inconclusive, at a kink, cut short or not checked by a budget) is
<skipped message="why">; a config that could not run is one <testcase name="(config)"> with an <error>. The layout is the common subset read by
GitHub/GitLab/Jenkins/Azure test reporters (no timing attributes, so the file is reproducible).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from gradcheck_cli.report.text import (
    attribution,
    describe,
    diagnosis,
    num,
    problems,
    skip_reason,
    worst_entries,
)
from gradcheck_cli.results import CheckResult, ParamResult
from gradcheck_cli.suite import Outcome, SuiteResult

#: Characters XML 1.0 cannot hold at all (not even escaped): C0 controls but tab/newline/CR, lone
#: surrogates, U+FFFE/U+FFFF. A config name or message with them must not make the file unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def _failure_text(p: ParamResult, blame: list[str]) -> str:
    said = diagnosis(p)
    text = (
        p.reason + "\n"
        if p.reason
        else (f"{said}\n" if said else "")
        + f"worst entries of {p.name}:\n{worst_entries(p, indent='')}\n"
    )
    return text + "".join(f"{line}\n" for line in blame)


def _message(p: ParamResult) -> str:
    """The one line a CI test view shows: what disagrees and, when one explains it, the
    diagnosis (what to fix, without rerunning locally)."""
    if p.reason:
        return p.reason
    said = diagnosis(p)
    return (
        f"{p.failed} of {p.checked} entries disagree: rel err {num(p.rel_error)}, "
        f"max|a−n| {num(p.max_abs_error)}" + (f"; {said}" if said else "")
    )


def _suite_element(name: str, config: str, result: CheckResult) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(result.params)),
        failures=str(len(result.failures)),
        errors="0",
        skipped=str(sum(p.passed and not p.verified for p in result.params)),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("config", config),
        ("settings", describe(result)),
        ("seed", result.seed),
        ("method", result.method),
        ("eps", f"{result.eps:g}"),
        ("rtol", f"{result.rtol:g}"),
        ("atol", f"{result.atol:g}"),
        ("dtype", result.dtype),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    whole = problems(result)
    if whole:  # the network as a whole failed (e.g. a non-deterministic forward)
        suite.set("tests", str(len(result.params) + 1))
        suite.set("failures", str(len(result.failures) + 1))
        case = ET.SubElement(suite, "testcase", classname=name, name="(network)", file=config)
        failure = ET.SubElement(case, "failure", message=whole[0], type="NetworkProblem")
        failure.text = "\n".join(whole) + "\n"
    if result.interrupted:  # Ctrl-C / SIGTERM: the run is not green, whatever was checked
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
        suite.set("errors", "1")
        case = ET.SubElement(suite, "testcase", classname=name, name="(interrupted)", file=config)
        message = "the run was interrupted before every tensor was checked; no verdict"
        ET.SubElement(case, "error", message=message, type="Interrupted").text = message + "\n"
    for p in result.params:
        case = ET.SubElement(suite, "testcase", classname=name, name=p.name, file=config)
        if not p.passed:
            failure = ET.SubElement(case, "failure", message=_message(p), type="GradientMismatch")
            failure.text = _failure_text(p, attribution(result))
        elif not p.verified:
            ET.SubElement(case, "skipped", message=skip_reason(p))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = (
                f"{p.verdict}: rel err {num(p.rel_error)}, "
                f"max|a−n| {num(p.max_abs_error)}, {p.checked} entries checked\n"
            )
    return suite


def _error_element(o: Outcome) -> ET.Element:
    suite = ET.Element("testsuite", name=o.config, tests="1", failures="0", errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", classname=o.config, name="(config)", file=o.config)
    error = ET.SubElement(case, "error", message=str(o.error), type=type(o.error).__name__)
    error.text = str(o.error)
    return suite


def to_junit(suite: SuiteResult) -> str:
    root = ET.Element("testsuites", name="gradcheck")
    tests = failures = errors = skipped = 0
    for o in suite.outcomes:
        if o.result is None:
            element = _error_element(o)
        else:
            element = _suite_element(o.result.name, o.config, o.result)
        tests += int(element.get("tests", "0"))
        failures += int(element.get("failures", "0"))
        errors += int(element.get("errors", "0"))
        skipped += int(element.get("skipped", "0"))
        root.append(element)
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    ET.indent(root)
    return _xml_safe(ET.tostring(root, encoding="unicode", xml_declaration=True)) + "\n"


def result_to_junit(result: CheckResult, config: str | None = None) -> str:
    """One result (e.g. `gradcheck layer`) as a one-suite file."""
    return to_junit(SuiteResult((Outcome(config or result.name, result=result),)))

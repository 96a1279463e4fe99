"""GitHub Actions workflow commands: an ``::error`` annotation per failing tensor, a ``::warning``
per tensor that did not fail but was not verified, a notice summary.

Escaping follows the runner's rules (actions/toolkit, command.ts): in the message ``%``, CR and LF
are percent-encoded; in property values also ``:`` and ``,``.
"""

from __future__ import annotations

from gradcheck_cli.report.text import (
    attribution,
    closing,
    describe,
    diagnosis,
    index,
    num,
    problems,
    skip_reason,
    value,
)
from gradcheck_cli.results import CheckResult, ParamResult
from gradcheck_cli.suite import SuiteResult


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: str | None) -> str:
    given = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v is not None)
    return f"::{kind}{' ' + given if given else ''}::{escape_data(message)}"


def _headline(p: ParamResult) -> str:
    """What is wrong with a failing tensor, in one line."""
    if p.reason:
        return f"{p.name}: {p.reason}"
    return (
        f"{p.name}: {p.failed} of {p.checked} entries disagree (rel err {num(p.rel_error)}, "
        f"max|a−n| {num(p.max_abs_error)})"
    )


def _entries(p: ParamResult) -> str:
    """The failing worst entries, each on a line of its own after a newline (empty when the
    tensor failed as a whole)."""
    if p.reason:
        return ""
    text = ""
    for e in p.worst:
        if e.status == "fail":
            text += (
                f"\n{index(e.index)}: analytic {value(e.analytic, '.9g')}, "
                f"numeric {value(e.numeric, '.9g')}, "
                f"|a−n| {e.abs_error:.2e} > tolerance {e.tol:.2e}"
            )
    return text


def _problem(p: ParamResult) -> str:
    """An annotation's message: the headline, the diagnosis when there is one, the entries."""
    said = diagnosis(p)
    return _headline(p) + (f"\n{said}" if said else "") + _entries(p)


def summary_line(result: CheckResult) -> str:
    """The closing line, every outcome counted ("4 agree · 2 inconclusive — not verified: …")."""
    mark, head, tail = closing(result)
    if mark == "✓":
        return f"{result.name}: {head} ({describe(result)})"
    text = f"{result.name}: {head}" + (f" ({tail})" if mark == "✗" and tail else "")
    text += f" — {tail}" if mark == "⚠" else ""
    return "\n".join([text, *problems(result), *attribution(result)])


def annotation_lines(result: CheckResult, file: str | None = None) -> list[str]:
    lines = [
        command("error", problem, file=file, title=f"gradcheck: {result.name}")
        for problem in result.problems
    ]
    lines += [
        command("error", _problem(p), file=file, title=f"gradcheck: {p.name}")
        for p in result.failures
    ]
    lines += [
        command("warning", f"{p.name}: {skip_reason(p)}", file=file, title=f"gradcheck: {p.name}")
        for p in result.params
        if p.passed and not p.verified
    ]
    lines.append(command("notice", summary_line(result), file=file, title="gradcheck"))
    return lines


def render(result: CheckResult, file: str | None = None) -> str:
    return "\n".join(annotation_lines(result, file))


def render_suite(suite: SuiteResult) -> str:
    lines: list[str] = []
    for o in suite.outcomes:
        if o.result is not None:
            lines += annotation_lines(o.result, o.config)
        else:
            lines.append(
                command("error", str(o.error), file=o.config, title="gradcheck: invalid config")
            )
    counts = {s: sum(o.status == s for o in suite.outcomes) for s in ("pass", "fail", "error")}
    lines.append(
        command(
            "notice",
            f"{len(suite.outcomes)} configs: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['error']} invalid",
            title="gradcheck",
        )
    )
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def step_summary(suite: SuiteResult) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: one row per config, then the failing tensors."""
    icon = {"pass": "✅ pass", "fail": "❌ FAIL", "error": "⚠️ ERROR"}
    lines = [
        "### gradcheck",
        "",
        "| config | agree | verdict | failing tensors / error |",
        "|---|---:|---|---|",
    ]
    for o in suite.outcomes:
        if o.result is None:
            lines.append(f"| `{_md(o.config)}` | — | {icon['error']} | {_md(str(o.error))} |")
            continue
        r = o.result
        failing = ", ".join([f"`{p.name}`" for p in r.failures] + [_md(x) for x in problems(r)])
        agree = f"{len(r.params) - len(r.failures)}/{len(r.params)}"
        lines.append(f"| `{_md(o.config)}` | {agree} | {icon[o.status]} | {failing} |")
    for o in suite.outcomes:
        for p in o.result.failures if o.result else ():
            said = diagnosis(p)
            lines += ["", f"**{_md(o.config)}**: {_md(_headline(p))}"]
            lines += ["", _md(said)] if said else []
            entries = _entries(p).splitlines()[1:]
            if entries:
                lines += ["", "<details><summary>worst entries</summary>", "", "```"]
                lines += [*entries, "```", "</details>"]
    return "\n".join(lines) + "\n"

"""Plain-text tables (no Rich, no colour): the message of a failed `assert_gradients`, and the
pieces the GitHub and JUnit formats share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gradcheck_cli.verdict.outcomes import WHY_NOT, count_outcomes

if TYPE_CHECKING:  # types only: results render lazily through here (CheckResult._repr_html_)
    from gradcheck_cli.results import CheckResult, ParamResult


def every(n: int, one: str, many: str) -> str:
    """``one`` for a single item ("the gradient agrees"), else ``many`` with {n} filled in."""
    return one if n == 1 else many.format(n=n)


def listing(names: Sequence[str], most: int = 8) -> str:
    """``names`` joined by commas, the first ``most`` of them and "and N more" after."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def method_words(method: str) -> str:
    """How a report names a method: "central differences", "complex step"."""
    return "complex step" if method == "complex" else f"{method} differences"


def num(v: float, spec: str = ".2e") -> str:
    return "—" if math.isnan(v) else format(v, spec)


def value(v: float, spec: str) -> str:
    """A gradient value as shown: -0.0 (e.g. -1 × a gradient that is exactly 0) prints as 0, not
    "-0", which reads as a sign bug."""
    return format(v + 0.0, spec)  # -0.0 + 0.0 == +0.0


def index(ix: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, ix)) + "]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to their widest cell; all but the first and last right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    last = len(header) - 1

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i in (0, last) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def describe(result: CheckResult) -> str:
    """What was done, in one line (as the terminal header)."""
    seed = result.seed if result.seed is not None else "—"
    strict = ", strict" if result.strict else ""
    numerics = f" (numerics in {result.reference})" if result.reference != result.dtype else ""
    return (
        f"{method_words(result.method)}, ε={result.eps:g}, {result.dtype}{numerics}, seed {seed}, "
        f"rtol={result.rtol:g}, atol={result.atol:g} + noise{strict}"
    )


def worst_entries(p: ParamResult, indent: str = "    ") -> str:
    rows = [
        [
            index(e.index),
            value(e.analytic, ".9g"),
            value(e.numeric, ".9g"),
            num(e.abs_error),
            num(e.tol),
            e.label or e.status,
        ]
        for e in p.worst
    ]
    return table(["index", "analytic", "numeric", "|a−n|", "tolerance", "status"], rows, indent)


def problems(result: CheckResult) -> list[str]:
    """Failures of the network as a whole (not of one tensor)."""
    return list(result.problems)


def unverified(result: CheckResult) -> list[ParamResult]:
    """Tensors that did not fail but are not verified either: inconclusive, at a kink, cut
    short or not checked by the budget."""
    return [p for p in result.params if p.passed and not p.verified]


def counts_text(params: Sequence[ParamResult]) -> str:
    """Every outcome counted, pytest-style: "4 agree · 1 zero here · 2 inconclusive"."""
    return " · ".join(f"{n} {o}" for o, n in count_outcomes(list(params)).items()) or "nothing"


def why_unverified(params: Sequence[ParamResult], most: int = 8) -> str:
    """What was not verified and why, by outcome: "inconclusive: a, b (the estimate …)"."""
    groups: dict[str, list[str]] = {}
    for p in params:
        if p.outcome in WHY_NOT:  # the outcomes that are not verified
            groups.setdefault(p.outcome, []).append(p.name)
    return "; ".join(
        f"{o}: {listing(names, most)} ({WHY_NOT[o]})" for o, names in groups.items()
    )


def skip_reason(p: ParamResult) -> str:
    """Why one tensor is not verified (JUnit <skipped>, GitHub ::warning)."""
    why = WHY_NOT.get(p.outcome, p.outcome)
    detail = p.cut or p.note
    return f"{p.outcome}: {why}" + (f" ({detail})" if detail and detail not in why else "")


def closing(result: CheckResult) -> tuple[str, str, str]:
    """The closing line: its mark, head and tail, e.g. ("⚠", "4 agree · 2 inconclusive",
    "not verified: inconclusive: a, b (…); --strict fails them"). ✓ only when every selected
    tensor was verified; ✗ when something failed (a gradient, or under --strict one not shown
    right); ⚠ otherwise. Every outcome is counted."""
    counts = counts_text(result.params)
    n = len(result.params)
    if not result.passed:
        wrong = [p.name for p in result.failures if p.outcome == "disagree"]
        unshown = [p.name for p in result.failures if p.outcome != "disagree"]
        parts = [f"{len(wrong)} of {n} gradients disagree: {listing(wrong)}"] if wrong else []
        if unshown:
            parts.append(f"{len(unshown)} of {n} not shown right (--strict): {listing(unshown)}")
        return "✗", "; ".join(parts) or "check failed", counts if n else ""
    if result.verified:
        if count_outcomes(list(result.params)) == {"agree": n}:
            return "✓", every(n, "the gradient agrees", "all {n} gradients agree"), ""
        return "✓", counts, ""
    return "⚠", counts, f"not verified: {why_unverified(result.params)}; --strict fails them"


def diagnosis(p: ParamResult) -> str | None:
    """The diagnosis line of a failing tensor (the fingerprint that explains it), None when none
    does: the same words in the assertion message, GitHub annotations, JUnit and the step summary.
    A structural failure's kind is for machines (JSON): its sentence is the reason already shown."""
    d = p.diagnosis
    if d is None or d.params.get("structural"):
        return None
    return f"diagnosis ({d.kind}): {d.sentence}"


def attribution(result: CheckResult) -> list[str]:
    """When the check failed: the layers that fail when checked on their own."""
    return [f"→ {line}" for line in result.attribution]


def failure_report(result: CheckResult) -> str:
    """Which tensors disagree, by how much, and their worst entries. Empty when all pass."""
    if result.passed:
        return ""
    bad = result.failures
    wrong = sum(p.outcome == "disagree" for p in bad)
    what = (
        f"gradients disagree for {wrong} of {len(result.params)} tensors"
        if wrong or not bad
        else f"{len(bad)} of {len(result.params)} tensors not shown right (--strict)"
    )
    lines = [f"{what} of '{result.name}' ({describe(result)})"]
    if bad and wrong and wrong < len(bad):
        lines[0] += f"; {len(bad) - wrong} more not shown right (--strict)"
    lines += [f"  {line}" for line in problems(result) + attribution(result)]
    lines += [f"  note: {note}" for note in result.notes]
    if bad:
        rows = [
            [
                p.name,
                "×".join(map(str, p.shape)) or "scalar",
                num(p.rel_error),
                num(p.max_abs_error),
                f"{p.failed}/{p.checked}",
                p.verdict,
            ]
            for p in bad
        ]
        lines += ["", table(["parameter", "shape", "rel err", "max|a−n|", "bad", "verdict"], rows)]
    for p in bad:
        lines.append("")
        if p.reason:
            lines.append(f"  {p.name}: {p.reason}")
        else:
            said = diagnosis(p)
            if said is not None:
                lines.append(f"  {said}")
            lines.append(f"  {p.name}: worst entries")
            lines.append(worst_entries(p))
    return "\n".join(lines)

"""Plain-text tables (no Rich, no colour): the message of a failed `assert_gradients`, and the
pieces the GitHub and JUnit formats share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

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
    """Tensors that did not fail but are not verified either (inconclusive: not resolved)."""
    return [p for p in result.params if p.passed and p.verdict == "inconclusive"]


def diagnosis(p: ParamResult) -> str | None:
    """The diagnosis line of a failing tensor (the fingerprint that explains it), None when none
    does: the same words in the assertion message, GitHub annotations, JUnit and the step summary."""
    d = p.diagnosis
    return None if d is None else f"diagnosis ({d.kind}): {d.sentence}"


def attribution(result: CheckResult) -> list[str]:
    """When the check failed: the layers that fail when checked on their own."""
    return [f"→ {line}" for line in result.attribution]


def failure_report(result: CheckResult) -> str:
    """Which tensors disagree, by how much, and their worst entries. Empty when all pass."""
    if result.passed:
        return ""
    bad = result.failures
    lines = [
        f"gradients disagree for {len(bad)} of {len(result.params)} tensors of "
        f"'{result.name}' ({describe(result)})"
    ]
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

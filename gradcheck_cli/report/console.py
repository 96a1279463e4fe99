"""Rich renderables for several configs (reports + one summary table) and file exports."""

from __future__ import annotations

import io
import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from gradcheck_cli.report.text import counts_text, every, listing, num, problems, unverified

if TYPE_CHECKING:  # types only: suites render lazily through here (SuiteResult._repr_html_)
    from gradcheck_cli.results import CheckResult
    from gradcheck_cli.suite import Outcome, SuiteResult, Validation

VERDICT_STYLE = {
    "pass": ("pass", "green"),
    "fail": ("FAIL", "bold red"),
    "error": ("ERROR", "bold magenta"),
}


def worst_rel_error(result: CheckResult) -> float:
    """The largest relative error of the config's tensors, leaving out ``zero`` verdicts: both
    sides vanish there, and their ratio of two round-offs (up to ~1) says nothing."""
    errors = [
        p.rel_error for p in result.params if not math.isnan(p.rel_error) and p.verdict != "zero"
    ]
    return max(errors, default=math.nan)


def _row(o: Outcome) -> list[RenderableType]:
    label, style = VERDICT_STYLE[o.status]
    if o.result is None:
        e = o.error
        first = ": ".join(x for x in (e.field, e.message) if x) if e is not None else ""
        return [o.config, "—", "—", Text(label, style=style), Text(first, style="magenta")]
    r = o.result
    open_ = unverified(r)
    if o.status == "pass" and open_:  # not failed, but not every tensor verified
        label, style = "not verified", "bold yellow"
    note = Text(listing([p.name for p in r.failures] + problems(r)), style="red")
    groups: dict[str, list[str]] = {}
    for p in open_:
        groups.setdefault(p.outcome, []).append(p.name)
    for outcome, names in groups.items():
        note.append(("; " if note.plain else "") + f"{outcome}: {listing(names)}", style="yellow")
    return [
        o.config,
        f"{sum(p.verified for p in r.params)}/{len(r.params)}",
        num(worst_rel_error(r)),
        Text(label, style=style),
        note,
    ]


def summary_table(suite: SuiteResult, *, only_failures: bool = False) -> Table:
    """One row per config: tensors verified (agree, or zero with evidence) / selected, worst
    relative error, verdict."""
    table = Table(title="summary", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("config", overflow="fold")
    table.add_column("verified", justify="right", no_wrap=True)
    table.add_column("worst rel err", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("failing / error")
    for o in suite.outcomes:
        if not (only_failures and o.status == "pass"):
            table.add_row(*_row(o))
    return table


def suite_line(suite: SuiteResult) -> Text:
    """The suite's closing line: configs by status, and every tensor outcome counted."""
    counts = {s: sum(o.status == s for o in suite.outcomes) for s in ("pass", "fail", "error")}
    n = len(suite.outcomes)
    if suite.interrupted:
        return Text(f"interrupted (Ctrl-C) after {n} configs: no verdict", style="bold yellow")
    tensors = [p for o in suite.outcomes if o.result is not None for p in o.result.params]
    tally = f" ({counts_text(tensors)})" if tensors else ""
    if suite.passed and not suite.verified:
        open_ = sum(1 for o in suite.outcomes if o.result is not None and unverified(o.result))
        return Text(
            f"⚠ no config fails; {open_} of {n} with tensors not verified{tally}; --strict fails "
            "them",
            style="bold yellow",
        )
    if suite.passed:
        passes = every(n, "the config passes", "all {n} configs pass")
        return Text(f"✓ {passes}{tally}", style="bold green")
    text = Text(f"✗ {n - counts['pass']} of {n} configs do not pass", style="bold red")
    text.append(f" ({counts['fail']} failed, {counts['error']} invalid){tally}", style="red")
    return text


def render_suite(
    suite: SuiteResult,
    render_one: Callable[[Outcome], RenderableType],
    *,
    only_failures: bool = False,
) -> Group:
    """Each config's report under a rule with its path, then the summary table. Invalid configs
    appear in the summary only (their full message goes to stderr, like any usage error)."""
    parts: list[RenderableType] = []
    for o in suite.outcomes:
        if o.result is None or (only_failures and o.status == "pass"):
            continue
        parts.append(Rule(Text(o.config, style="bold"), align="left"))
        parts.append(render_one(o))
    if not (only_failures and suite.passed):
        parts.append(summary_table(suite, only_failures=only_failures))
    parts.append(suite_line(suite))
    return Group(*parts)


def validation(items: Sequence[Validation]) -> Group:
    """`gradcheck validate`: one line per config."""
    lines: list[RenderableType] = []
    for v in items:
        if v.error is None:
            line = Text("✓ ", style="green").append(v.config, style="bold")
            line.append(
                f"  {v.name}: {every(v.layers, '1 layer', '{n} layers')}, "
                f"{every(len(v.tensors), '1 tensor', '{n} tensors')} to check",
                style="dim",
            )
        else:
            line = Text("✗ ", style="bold red").append(str(v.error), style="red")
        lines.append(line)
    bad = sum(v.error is not None for v in items)
    lines.append(
        Text(f"✗ {bad} of {len(items)} configs are invalid", style="bold red")
        if bad
        else Text(
            f"✓ {every(len(items), 'the config is valid', 'all {n} configs are valid')}",
            style="bold green",
        )
    )
    return Group(*lines)


def written(paths: Sequence[Path], config: Path) -> Text:
    """`gradcheck init`: what was written and what to run next."""
    text = Text()
    for p in paths:
        text.append("wrote ", style="dim").append(f"{p}\n")
    text.append("next: ", style="bold").append(f"gradcheck run {shlex.quote(str(config))}")
    return text


#: Widths measured against this: anything that reaches it fills whatever width it is given.
_PROBE_WIDTH = 10_000
#: The width given to such content when the report is not on a terminal.
FALLBACK_WIDTH = 100


def content_width(renderable: RenderableType) -> int:
    """The width at which ``renderable`` prints without wrapping a line or a table cell: the
    widest line of text or table row. Parts that fill any width (a rule, a plot) get
    ``FALLBACK_WIDTH`` at least."""
    console = Console(width=_PROBE_WIDTH, file=io.StringIO(), emoji=False)
    options = console.options
    widest = 0
    todo: list[RenderableType] = [renderable]
    while todo:
        part = todo.pop()
        if isinstance(part, Group):
            todo.extend(part.renderables)
            continue
        got = Measurement.get(console, options, part).maximum
        widest = max(widest, FALLBACK_WIDTH if got >= _PROBE_WIDTH else got)
    return widest


ExportKind = Literal["html", "svg"]


def export(
    renderable: RenderableType, kind: ExportKind, *, width: int = 120, title: str = "gradcheck"
) -> str:
    """The coloured terminal report as a standalone HTML page or SVG image."""
    console = Console(
        record=True,
        file=io.StringIO(),
        width=width,
        force_terminal=True,
        color_system="truecolor",
        no_color=False,
    )
    console.print(renderable)
    if kind == "html":
        return console.export_html(inline_styles=True)
    return console.export_svg(title=title)

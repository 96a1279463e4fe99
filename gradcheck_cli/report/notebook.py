"""Results in a Jupyter notebook: ``CheckResult._repr_html_`` and ``SuiteResult._repr_html_`` show
the terminal report (header, table, diagnosis, worst entries, summary) as coloured HTML.

Imported only when a notebook asks for the display, so the library itself never loads Rich."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.text import Text

from gradcheck_cli.report import console, tables

if TYPE_CHECKING:
    from gradcheck_cli.results import CheckResult
    from gradcheck_cli.suite import Outcome, SuiteResult

#: A fragment, not a page: the notebook's cell is the page. Monospace, no wrapping, scrolls sideways.
_PRE = (
    '<pre style="white-space:pre;overflow-x:auto;line-height:normal;'
    "font-family:Menlo,'DejaVu Sans Mono',consolas,'Courier New',monospace\">{code}</pre>"
)


def html(renderable: RenderableType) -> str:
    """``renderable`` as a coloured HTML fragment, as wide as its content (no cell wraps)."""
    out = Console(
        record=True,
        file=io.StringIO(),
        width=max(console.content_width(renderable), 40),
        force_terminal=True,
        color_system="truecolor",
        no_color=False,
        emoji=False,
    )
    out.print(renderable, crop=False)
    return out.export_html(inline_styles=True, code_format=_PRE)


def _one(o: Outcome) -> RenderableType:
    if o.result is None:
        return Text(f"error: {o.error}", style="red")
    return tables.render(o.result)


def result_html(result: CheckResult) -> str:
    return html(tables.render(result))


def suite_html(suite: SuiteResult) -> str:
    return html(console.render_suite(suite, _one))

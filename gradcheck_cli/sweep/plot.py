"""Terminal pictures as Rich renderables: a log-log point plot, a per-entry heatmap, and the
`gradcheck sweep` report built from them. No numerics beyond placing points; nothing prints."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gradcheck_cli.layers.base import Array

if TYPE_CHECKING:  # types only: the heatmap is drawn for check reports too (report/tables.py)
    from gradcheck_cli.sweep.vcurve import SweepResult

# -- log-log plot ---------------------------------------------------------------------------------

GLYPHS = "•◦+×*▪▫"
COLOURS = ("cyan", "magenta", "blue", "bright_green", "bright_red", "yellow", "white")


@dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    best: float | None = None  # x of the point to mark with ★


@dataclass(frozen=True)
class VMark:
    """A vertical marker line at ``x``."""

    x: float
    label: str
    glyph: str = "┊"
    style: str = "yellow"


def _exp_label(e: int) -> str:
    return f"1e{e:+03d}".replace("+", "")


def loglog(
    series: Sequence[Series],
    *,
    marks: Sequence[VMark] = (),
    width: int = 64,
    height: int = 14,
    x_label: str = "x",
    y_label: str = "y",
) -> Text:
    """Points of every series on a shared log-log character grid (x grows to the right).

    Non-positive and non-finite values are left out (a log axis cannot show them).
    """
    pts = [
        (k, math.log10(x), math.log10(y), s.best is not None and x == s.best)
        for k, s in enumerate(series)
        for x, y in zip(s.x, s.y, strict=True)
        if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y)
    ]
    text = Text()
    if not pts:
        return text.append(f"(nothing to plot: no positive finite {y_label})", style="dim")
    xs = [p[1] for p in pts] + [math.log10(m.x) for m in marks if m.x > 0]
    x0, x1 = min(xs), max(xs)
    y0 = math.floor(min(p[2] for p in pts))
    y1 = math.ceil(max(p[2] for p in pts))
    if y1 == y0:
        y1 += 1
    if x1 == x0:
        x1 += 1

    def col(lx: float) -> int:
        return round((lx - x0) / (x1 - x0) * (width - 1))

    def row(ly: float) -> int:  # row 0 is the top
        return round((y1 - ly) / (y1 - y0) * (height - 1))

    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    for m in marks:
        if m.x > 0:
            c = col(math.log10(m.x))
            for r in range(height):
                grid[r][c] = (m.glyph, m.style)
    for k, lx, ly, best in sorted(pts, key=lambda p: p[3]):  # stars last, on top
        glyph = "★" if best else GLYPHS[k % len(GLYPHS)]
        style = ("bold " if best else "") + COLOURS[k % len(COLOURS)]
        grid[row(ly)][col(lx)] = (glyph, style)

    every = math.ceil((y1 - y0 + 1) / max(1, (height + 1) // 2))  # a label every `every` decades
    labels = {row(e): _exp_label(e) for e in range(y1, y0 - 1, -every)}
    margin = max(len(v) for v in labels.values()) + 1
    text.append(f"{y_label}\n", style="dim")
    for r in range(height):
        text.append(labels.get(r, "").rjust(margin - 1) + " ", style="dim")
        text.append("┤" if r in labels else "│", style="dim")
        for glyph, style in grid[r]:
            text.append(glyph, style=style)
        text.append("\n")
    text.append(" " * margin + "└" + "─" * width + "\n", style="dim")
    axis = [" "] * (width + 8)
    for e in range(math.ceil(x0), math.floor(x1) + 1):
        if (e - math.ceil(x0)) % 2 and x1 - x0 > 6:
            continue  # every other decade when the axis is long
        lab = _exp_label(e)
        start = max(0, min(col(e) - len(lab) // 2, width + 8 - len(lab)))
        if all(ch == " " for ch in axis[max(0, start - 1) : start + len(lab) + 1]):
            axis[start : start + len(lab)] = lab
    text.append(" " * (margin + 1) + "".join(axis).rstrip() + "\n", style="dim")
    text.append(" " * (margin + 1) + x_label.center(width).rstrip() + "\n", style="dim")
    legend = Text(" " * (margin + 1))
    for k, s in enumerate(series):
        legend.append(GLYPHS[k % len(GLYPHS)], style=COLOURS[k % len(COLOURS)])
        legend.append(f" {s.label}   ")
    if any(s.best is not None for s in series):
        legend.append("★ best   ", style="bold")
    for m in marks:
        legend.append(m.glyph, style=m.style)
        legend.append(f" {m.label}   ")
    legend.rstrip()
    text.append_text(legend)
    return text


# -- heatmap --------------------------------------------------------------------------------------

#: (upper bound, glyph, style, meaning): a ratio below the bound gets that cell.
BANDS = (
    (0.1, "░", "green", "< 0.1"),
    (1.0, "▒", "yellow", "0.1 … 1"),
    (math.inf, "█", "red", "≥ 1"),
)
NAN_CELL = ("?", "grey50", "NaN")


def heatmap(values: Array, title: str, *, max_rows: int = 32, max_cols: int = 64) -> RenderableType:
    """Per-entry nonnegative ratios (e.g. |a − n| / tolerance) as coloured cells.

    green ░ < 0.1 · yellow ▒ < 1 · red █ ≥ 1 (would fail) · grey ? NaN. A 2-D array shows its
    rows and columns; a 1-D array wraps into rows of ``max_cols`` (each labelled by its first
    index). At most ``max_rows`` × ``max_cols`` cells are drawn; the counts cover every entry.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim > 2:
        raise ValueError(f"heatmap takes a 0-D, 1-D or 2-D array, got shape {v.shape}")
    if np.any(v < 0):
        raise ValueError("heatmap values must be nonnegative ratios")
    if v.ndim < 2:
        flat = v.reshape(-1)
        rows = math.ceil(flat.size / max_cols) if flat.size else 0
        padded = np.full(rows * max_cols, np.nan)
        padded[: flat.size] = flat
        grid: Array = padded.reshape(rows, max_cols)
        row_name = [str(r * max_cols) for r in range(rows)]
        width = [min(max_cols, flat.size - r * max_cols) for r in range(rows)]
    else:
        grid = v
        row_name = [str(r) for r in range(v.shape[0])]
        width = [v.shape[1]] * v.shape[0]
    shown_rows = min(len(row_name), max_rows)
    margin = max((len(n) for n in row_name[:shown_rows]), default=1)

    parts: list[RenderableType] = [Text(title, style="bold")]
    for r in range(shown_rows):
        line = Text().append(row_name[r].rjust(margin) + " ", style="dim")
        for c in range(min(width[r], max_cols)):
            glyph, style = _cell(grid[r, c])
            line.append(glyph, style=style)
        if width[r] > max_cols:
            line.append(f" … +{width[r] - max_cols} columns", style="dim")
        parts.append(line)

    notes: list[str] = []
    if len(row_name) > max_rows:
        notes.append(f"… {len(row_name) - max_rows} more rows not shown")
    counts = [int(np.sum(v < BANDS[0][0]))]
    counts.append(int(np.sum((v >= BANDS[0][0]) & (v < BANDS[1][0]))))
    counts.append(int(np.sum(v >= BANDS[1][0])))
    nans = int(np.sum(np.isnan(v)))
    legend = Text()
    for (_, glyph, style, meaning), count in zip(BANDS, counts, strict=True):
        legend.append(glyph, style=style).append(f" {meaning}: {count}   ")
    if nans:
        legend.append(NAN_CELL[0], style=NAN_CELL[1]).append(f" {NAN_CELL[2]}: {nans}   ")
    legend.append(f"({v.size} entries{', ' + '; '.join(notes) if notes else ''})", style="dim")
    parts.append(legend)
    return Group(*parts)


def _cell(x: float) -> tuple[str, str]:
    if math.isnan(x):
        return NAN_CELL[0], NAN_CELL[1]
    for bound, glyph, style, _ in BANDS:
        if x < bound:
            return glyph, style
    return BANDS[-1][1], BANDS[-1][2]


# -- the sweep report -----------------------------------------------------------------------------

VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _verdict(v: str) -> Text:
    return Text(v if v != "fail" else "FAIL", style=VERDICT_STYLE.get(v, ""))


def _e(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.1e}"


def sweep_header(result: SweepResult) -> Text:
    return Text(
        f"{result.name} · central differences, {result.dtype}, seed {result.seed} · "
        f"ε used: {result.used_eps:g} ({result.eps_source}) · L={result.loss:.6g}",
        style="dim",
    )


def v_plot(result: SweepResult) -> Text:
    series = [Series(c.name, c.eps, c.error, c.best_eps) for c in result.curves]
    return loglog(
        series,
        marks=[VMark(result.used_eps, f"ε used ({result.used_eps:g})")],
        x_label="ε  (round-off ← → truncation)",
        y_label="‖a − n(ε)‖ / (‖a‖ + ‖n(ε)‖)",
    )


def curve_numbers(result: SweepResult) -> Table:
    """The plotted numbers: one row per ε, one column per tensor (best in bold green)."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ε", justify="right", no_wrap=True)
    for c in result.curves:
        table.add_column(c.name, justify="right", no_wrap=True)
    for i, eps in enumerate(result.curves[0].eps if result.curves else ()):
        if i % 2 and not any(c.best_eps == eps for c in result.curves):
            continue  # half decades only where some tensor is best there
        cells: list[Text | str] = [f"{eps:.1e}"]
        for c in result.curves:
            best = c.best_eps == eps
            cells.append(Text(_e(c.error[i]), style="bold green" if best else ""))
        table.add_row(*cells)
    return table


def curve_summary(result: SweepResult) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("tensor", "entries", "best ε", "best error", "error at ε used", "V-curve"):
        table.add_column(col, justify="left" if col == "tensor" else "right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for c in result.curves:
        entries = f"{c.checked} of {c.total} (sample)" if c.sampled else str(c.total)
        table.add_row(
            c.name,
            entries,
            _e(c.best_eps),
            _e(c.best_error),
            _e(c.used_error),
            _verdict(c.verdict),
            c.reason,
        )
    return table


def taylor_plot(result: SweepResult) -> Text:
    series = [Series(t.name, t.h, t.remainder) for t in result.taylor or ()]
    return loglog(series, x_label="h", y_label="r(h) = |L(θ+hv) − L(θ) − h∇L·v|", height=12)


def taylor_table(result: SweepResult) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("tensor", "slope", "fitted h", "∇L·v", "Taylor"):
        table.add_column(col, justify="left" if col == "tensor" else "right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for t in result.taylor or ():
        fit = f"{t.fit_h[0]:.0e}…{t.fit_h[1]:.0e} ({t.points})" if t.fit_h else "—"
        slope = "—" if math.isnan(t.slope) else f"{t.slope:.2f}"
        table.add_row(t.name, slope, fit, f"{t.directional:.4g}", _verdict(t.verdict), t.reason)
    return table


def sweep_summary(result: SweepResult) -> Text:
    doubts = [c.name for c in result.curves if c.verdict == "inconclusive"]
    doubts += [t.name for t in result.taylor or () if t.verdict == "inconclusive"]
    if result.passed:
        n = len(result.curves)
        text = Text(f"✓ no gradient is wrong ({n} tensor{'s' * (n != 1)})", style="bold green")
    else:
        text = Text(f"✗ wrong gradient: {', '.join(result.failures)}", style="bold red")
    if doubts:
        text.append(f"\n  inconclusive: {', '.join(dict.fromkeys(doubts))}", style="yellow")
    return text


def render_sweep(result: SweepResult) -> RenderableType:
    """The full `gradcheck sweep` report."""
    parts: list[RenderableType] = [sweep_header(result), v_plot(result), curve_numbers(result)]
    parts.append(Text("(whole decades + each tensor's best ε; --format json has all)", "dim"))
    if any(c.sampled for c in result.curves):
        parts.append(
            Text(
                "tensors marked (sample) are swept on a fixed random sample of entries from the "
                "seed",
                style="dim",
            )
        )
    parts.append(curve_summary(result))
    if result.taylor is not None:
        parts += [
            Text("Taylor test: one random direction v per tensor", style="bold"),
            taylor_plot(result),
            taylor_table(result),
        ]
    parts.append(sweep_summary(result))
    return Group(*parts)


def sweep_json(result: SweepResult) -> str:
    """The sweep as JSON (README, "Choosing ε: gradcheck sweep"). Non-finite numbers are null."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False)

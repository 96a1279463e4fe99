"""Results → Rich renderables (JSON: formats/jsondoc.py). No numerics here; nothing prints."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gradcheck_cli.report.text import closing, every, method_words, value

if TYPE_CHECKING:  # types only: results render lazily through here (CheckResult._repr_html_)
    from gradcheck_cli.layers.catalog import Info
    from gradcheck_cli.results import CheckResult, ParamResult


def _num(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.2e}"


def _fmt_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]"


VERDICT_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "kink": "yellow",
    "noise": "yellow",
    "zero": "green",
    "inconclusive": "bold yellow",
}


def _verdict(p: ParamResult) -> Text:
    word = "FAIL" if not p.passed else p.verdict
    if p.verdict == "kink":
        word += f" ({p.kinks})"
    if p.verdict == "inconclusive":
        word = f"{'FAIL: ' if not p.passed else ''}inconclusive"
        if math.isfinite(p.resolution):
            word += f" (res {p.resolution:.0e})"
    return Text(word, style=VERDICT_STYLE.get("fail" if not p.passed else p.verdict, "yellow"))


def mode_text(result: CheckResult) -> str:
    """Which mode ran and how much it checked, e.g. "sample: 16 entries per tensor"."""
    if result.mode == "sample":
        return f"sample: {result.samples} entries and {result.probes} probe(s) per tensor"
    if result.mode == "directional":
        return f"directional: {result.probes} probe(s) per tensor"
    return "full: every entry"


def estimate_text(result: CheckResult) -> Text | None:
    """Auto's counted work per mode and its choice, when auto chose the mode."""
    est = result.estimate
    if est is None:
        return None
    return Text(
        f"auto (counted work, limit {est.limit:.2g} operations): full {est.full:.2g}, "
        f"sample {est.sample:.2g}, directional {est.directional:.2g} → {est.chosen}"
        + (f" ({est.samples} entries per tensor)" if est.chosen == "sample" else ""),
        style="dim",
    )


def selection_text(result: CheckResult) -> str:
    """Which tensors were asked for, when not all of them (from the options that ran)."""
    o = result.options
    words = ["no input"] if o.get("inputs") is False else []
    words += [f"include {', '.join(o['include'])}"] if o.get("include") else []
    words += [f"exclude {', '.join(o['exclude'])}"] if o.get("exclude") else []
    return f" · {'; '.join(words)}" if words else ""


def eps_source(result: CheckResult) -> str:
    """Where ε came from: the method's default, the config, --eps, or why the config's was not
    used."""
    source = result.options.get("eps_source")
    return f" ({source})" if source else ""


def header(result: CheckResult) -> Text:
    """What was actually done: method, ε, dtype, seed, tolerances, mode, selection."""
    return Text(
        f"{result.name} · {method_words(result.method)}, ε={result.eps:g}{eps_source(result)}, "
        f"{result.dtype}"
        f"{f' (numerics in {result.reference})' if result.reference != result.dtype else ''}, "
        f"seed {result.seed if result.seed is not None else '—'} · "
        f"rtol={result.rtol:g}, atol={result.atol:g} + noise{' · strict' if result.strict else ''}"
        f" · L={result.loss:.6g} · {mode_text(result)}{selection_text(result)}",
        style="dim",
    )


def _counts(p: ParamResult) -> str:
    unit = " probes" if p.mode == "directional" else ""
    return f"{p.failed}/{p.checked}{unit}"


def result_table(result: CheckResult, *, only_failures: bool = False) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("parameter", no_wrap=True)
    table.add_column("shape", no_wrap=True)
    table.add_column("rel err", justify="right", no_wrap=True)
    table.add_column("max|a−n|", justify="right", no_wrap=True)
    table.add_column("worst entry: analytic / numeric")
    table.add_column("bad", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for p in result.failures if only_failures else result.params:
        if p.reason:
            worst = Text(p.reason, style="red")
        elif p.note and p.passed:
            worst = Text(p.note, style="yellow")
        elif p.worst:
            w = p.worst[0]
            worst = Text(
                f"{_fmt_index(w.index)} {value(w.analytic, '.5g')} / {value(w.numeric, '.5g')}"
            )
        else:
            worst = Text("—")
        table.add_row(
            p.name,
            "×".join(map(str, p.shape)) or "scalar",
            "—" if p.verdict == "zero" else _num(p.rel_error),  # a ratio of two round-offs
            _num(p.max_abs_error),
            worst,
            _counts(p),
            _verdict(p),
        )
    return table


def diagnosis_line(p: ParamResult) -> Text:
    """One line under the table: the fingerprint that explains a failing tensor (diagnosis.py)."""
    d = p.diagnosis
    assert d is not None
    text = Text("diagnosis ", style="bold")
    text.append(f"({d.kind}, explains {d.explained:.1%}): ", style="dim")
    text.append(d.sentence)
    return text


def worst_table(p: ParamResult) -> Table:
    """The worst entries of one tensor, each with the tolerance it was held to and its status."""
    table = Table(
        title=f"{p.name}: worst entries (failures first, then by |a−n| / tol)",
        title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
    )  # fmt: skip
    for col in ("index", "analytic", "numeric", "|a−n|", "tol", "|a−n| / tol", "noise"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for e in p.worst:
        style = {"fail": "red", "kink": "yellow"}.get(e.status, "")
        ratio = e.abs_error / e.tol if e.tol > 0 else (math.inf if e.abs_error > 0 else 0.0)
        table.add_row(
            _fmt_index(e.index),
            value(e.analytic, ".8g"),
            value(e.numeric, ".8g"),
            Text(f"{e.abs_error:.2e}", style=style),
            f"{e.tol:.2e}",
            Text(f"{ratio:.3g}", style=style),
            f"{e.noise:.2e}",
            Text(e.label or e.status, style=style),
        )
    return table


def summary(result: CheckResult) -> Text:
    n = len(result.params)
    entries = sum(p.checked for p in result.params if p.mode != "directional")
    probes = sum(p.probes for p in result.params)
    done = every(entries, "1 entry", "{n} entries") + (
        f", {every(probes, '1 directional probe', '{n} directional probes')}" if probes else ""
    )
    text = Text()
    for note in result.notes:
        text.append(f"note: {note}\n", style="yellow")
    for problem in result.problems:
        text.append(f"✗ {problem}\n", style="bold red")
    if result.interrupted:
        text.append(f"⚠ interrupted: {n} tensor(s) finished ({done})", style="bold yellow")
        if result.failures:
            text.append(f"; disagreeing so far: {', '.join(p.name for p in result.failures)}")
        return text
    mark, head, tail = closing(result)
    if mark == "✗":
        if result.failures or not result.problems:  # else the problems above say it
            text.append(f"✗ {head}", style="bold red")
            text.append(f" ({tail})" if tail else "", style="red")
        for line in result.attribution:
            text.append(f"\n  → {line}", style="red")
        return text
    kinks = sum(p.kinks for p in result.params)
    style = "bold green" if mark == "✓" else "bold yellow"
    text.append(f"{mark} {head} ({done} checked" + (f"; {kinks} at kinks)" if kinks else ")"), style=style)
    if tail:
        text.append(f"\n  {tail}", style="yellow")
    return text


def replay_line(replay: str) -> Text:
    """The replay command on one line, never folded: a terminal narrower than the command wraps
    it visually, and it still pastes as one command."""
    return Text(f"  replay: {replay}", no_wrap=True, overflow="ignore")


def entry_maps(result: CheckResult) -> list[RenderableType]:
    """`--show-entries`: |a − n| / tolerance per entry for every tensor (tensors of more than two
    dimensions are shown as (first axis) × (the rest))."""
    from gradcheck_cli.sweep.plot import heatmap

    maps: list[RenderableType] = []
    for p in result.params:
        if p.ratios is None:
            continue
        r = p.ratios if p.ratios.ndim <= 2 else p.ratios.reshape(p.ratios.shape[0], -1)
        maps.append(heatmap(r, f"{p.name} {'×'.join(map(str, p.shape))}: |a−n| / tolerance"))
    return maps


def render(
    result: CheckResult,
    replay: str | None = None,
    show_entries: bool = False,
    *,
    only_failures: bool = False,
) -> RenderableType:
    """The full terminal report: header, table, worst entries of failing tensors, summary
    (``only_failures``: no rows or entry maps for tensors that agree)."""
    parts: list[RenderableType] = [header(result)]
    est = estimate_text(result)
    if est is not None:
        parts.append(est)
    if result.params and (result.failures or not only_failures):
        parts.append(result_table(result, only_failures=only_failures))
    parts += [  # a structural failure's kind is its reason, already in the table
        diagnosis_line(p) for p in result.failures
        if p.diagnosis is not None and p.diagnosis.sentence != p.reason
    ]
    if show_entries:
        parts += entry_maps(replace(result, params=result.failures) if only_failures else result)
    parts += [worst_table(p) for p in result.failures if p.worst]
    parts.append(summary(result))
    if replay and not result.passed and not result.interrupted:
        parts.append(replay_line(replay))
    return Group(*parts)


def catalogue(infos: list[Info]) -> Group:
    """`gradcheck list`: every built-in with its arguments (defaults) and formulas."""
    tables: list[RenderableType] = []
    for kind in ("layer", "loss"):
        table = Table(title=f"{kind}es" if kind == "loss" else f"{kind}s", title_justify="left",
                      header_style="bold", show_lines=True)  # fmt: skip
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("arguments", max_width=44)  # leave the width to the formulas
        table.add_column("forward")
        table.add_column("backward")
        for info in (i for i in infos if i.kind == kind):
            # Text(): formulas index with [n, c, …], which Rich would otherwise read as markup.
            args = ", ".join(a.text() for a in info.args) or "—"
            table.add_row(info.name, Text(args), Text(info.forward), Text(info.backward))
        tables.append(table)
    tables.append(Text("With no loss, L = Σ out ⊙ g for a fixed random g drawn from the seed."))
    tables.append(Text("gradcheck list NAME shows one in full.", style="dim"))
    return Group(*tables)


def catalogue_entry(info: Info) -> Group:
    """`gradcheck list NAME`: one built-in in full."""
    lines = [Text(f"{info.name} ({info.kind})", style="bold"), Text(info.doc or info.summary)]
    lines.append(Text("arguments:", style="bold"))
    for a in info.args:
        need = "required" if a.required else f"default {a.default!r}"
        lines.append(Text(f"  {a.name}: {a.annotation or 'any'} ({need})"))
    if not info.args:
        lines.append(Text("  none"))
    lines += [Text("forward:  ", style="bold") + Text(info.forward)]
    lines += [Text("backward: ", style="bold") + Text(info.backward)]
    example = {"type": info.name, **{a.name: "…" for a in info.args if a.required}}
    where = "layers: [...]" if info.kind == "layer" else "loss:"
    lines.append(Text(f"in a config ({where}): {example}".replace("'", ""), style="dim"))
    return Group(*lines)

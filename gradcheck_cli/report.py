"""Results → Rich renderables and JSON. No numerics here; nothing prints."""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gradcheck_cli.formats.text import unverified
from gradcheck_cli.results import CheckResult, Entry, ParamResult


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
        return f"sample: {result.samples} entries per tensor"
    if result.mode == "directional":
        return f"directional: {result.probes} probe(s) per tensor"
    return "full: every entry"


def estimate_text(result: CheckResult) -> Text | None:
    """The auto-mode cost estimate, when auto chose the mode."""
    est = result.estimate
    if est is None:
        return None
    return Text(
        f"auto (budget {est.budget_s:g} s): estimated full {est.full_s:.3g} s, "
        f"sample {est.sample_s:.3g} s, directional {est.directional_s:.3g} s "
        f"(one forward pass {est.forward_s * 1e3:.3g} ms) → {est.chosen}",
        style="dim",
    )


def header(result: CheckResult) -> Text:
    """What was actually done: method, ε, dtype, seed, tolerances, mode."""
    return Text(
        f"{result.name} · {result.method} differences, ε={result.eps:g}, {result.dtype}"
        f"{f' (numerics in {result.reference})' if result.reference != result.dtype else ''}, "
        f"seed {result.seed if result.seed is not None else '—'} · "
        f"rtol={result.rtol:g}, atol={result.atol:g} + noise{' · strict' if result.strict else ''}"
        f" · L={result.loss:.6g} · {mode_text(result)}",
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
            worst = Text(f"{_fmt_index(w.index)} {w.analytic:.5g} / {w.numeric:.5g}")
        else:
            worst = Text("—")
        table.add_row(
            p.name,
            "×".join(map(str, p.shape)) or "scalar",
            _num(p.rel_error),
            _num(p.max_abs_error),
            worst,
            _counts(p),
            _verdict(p),
        )
    return table


def worst_table(p: ParamResult) -> Table:
    """The worst entries of one tensor, each with the tolerance it was held to and its status."""
    table = Table(
        title=f"{p.name}: worst entries", title_justify="left", header_style="bold",
        box=box.SIMPLE_HEAD, pad_edge=False,
    )  # fmt: skip
    for col in ("index", "analytic", "numeric", "|a−n|", "tol", "noise"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status")
    for e in p.worst:
        style = {"fail": "red", "kink": "yellow"}.get(e.status, "")
        table.add_row(
            _fmt_index(e.index),
            f"{e.analytic:.8g}",
            f"{e.numeric:.8g}",
            Text(f"{e.abs_error:.2e}", style=style),
            f"{e.tol:.2e}",
            f"{e.noise:.2e}",
            Text(e.label or e.status, style=style),
        )
    return table


def summary(result: CheckResult, replay: str | None = None) -> Text:
    n = len(result.params)
    entries = sum(p.checked for p in result.params if p.mode != "directional")
    probes = sum(p.probes for p in result.params)
    done = f"{entries} entries" + (f", {probes} directional probes" if probes else "")
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
    open_ = unverified(result)
    if result.passed and open_:
        names = ", ".join(p.name for p in open_)
        text.append(
            f"⚠ {n - len(open_)} of {n} gradients agree; {len(open_)} inconclusive (not "
            f"resolved, not verified: {names}); --strict fails them",
            style="bold yellow",
        )
        return text
    if result.passed:
        kinks = sum(p.kinks for p in result.params)
        text.append(f"✓ all {n} gradients agree ({done} checked", style="bold green")
        text.append(f"; {kinks} at kinks)" if kinks else ")", style="bold green")
        return text
    bad = result.failures
    if bad:
        text.append(f"✗ {len(bad)} of {n} gradients disagree", style="bold red")
        text.append(f": {', '.join(p.name for p in bad)}", style="red")
    elif not result.problems:
        text.append("✗ check failed", style="bold red")
    for line in result.attribution:
        text.append(f"\n  → {line}", style="red")
    if replay:
        text.append(f"\n  replay: {replay}", style="")
    return text


def entry_maps(result: CheckResult) -> list[RenderableType]:
    """`--show-entries`: |a − n| / tolerance per entry for every tensor (tensors of more than two
    dimensions are shown as (first axis) × (the rest))."""
    from gradcheck_cli.plot import heatmap

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
    if show_entries:
        parts += entry_maps(replace(result, params=result.failures) if only_failures else result)
    parts += [worst_table(p) for p in result.failures if p.worst]
    parts.append(summary(result, replay))
    return Group(*parts)


#: Version of the JSON report layout (gradcheck_cli/data/report.schema.json). Bumped only when a
#: key is removed or changes meaning; new keys may appear at any time (consumers ignore unknown keys).
SCHEMA_VERSION = 1


def _clean(v: Any) -> Any:
    """A JSON-safe copy: non-finite floats → None, tuples → lists, NumPy scalars → Python."""
    if isinstance(v, Enum):
        v = v.value
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: _clean(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    return v


def _extras(obj: Any, done: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fields of a result dataclass that ``done`` does not already carry (new verdict fields show
    up in the JSON without a change here). Fields declared ``repr=False`` (bulk data such as the
    per-entry ratios) stay out."""
    return {
        f.name: _clean(getattr(obj, f.name))
        for f in fields(obj)
        if f.name not in done and f.name not in skip and f.repr
    }


def _entry_dict(e: Entry) -> dict[str, Any]:
    d: dict[str, Any] = {
        "index": list(e.index),
        "analytic": _clean(e.analytic),
        "numeric": _clean(e.numeric),
        "abs_error": _clean(e.abs_error),
        "tolerance": _clean(e.tol),
        "noise": _clean(e.noise),
        "status": e.status,
        "label": e.label,
    }
    return d | _extras(e, d, skip=("tol",))


def _param_dict(p: ParamResult) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": p.name,
        "shape": list(p.shape),
        "passed": p.passed,
        "rel_error": _clean(p.rel_error),
        "max_abs_error": _clean(p.max_abs_error),
        "worst_index": list(p.worst[0].index) if p.worst else None,
        "analytic": _clean(p.worst[0].analytic) if p.worst else None,
        "numeric": _clean(p.worst[0].numeric) if p.worst else None,
        "checked": p.checked,
        "failed": p.failed,
        "mode": p.mode,
        "probes": p.probes,
        "reason": p.reason,
        "verdict": p.verdict,
        "kinks": p.kinks,
        "refined": p.refined,
        "noise_floor": _clean(p.noise_floor),
        "note": p.note,
        "worst": [_entry_dict(e) for e in p.worst],
    }
    return d | _extras(p, d)


def to_json_dict(result: CheckResult) -> dict[str, Any]:
    """The documented JSON report (see README, "JSON report"; schema: `gradcheck schema report`)."""
    d: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "passed": result.passed,
        "name": result.name,
        "seed": result.seed,
        "method": result.method,
        "eps": result.eps,
        "rtol": result.rtol,
        "atol": result.atol,
        "dtype": result.dtype,
        "loss": _clean(result.loss),
        "strict": result.strict,
        "reference": result.reference,
        "notes": list(result.notes),
        "problems": list(result.problems),
        "attribution": list(result.attribution),
        "mode": result.mode,
        "samples": result.samples,
        "probes": result.probes,
        "interrupted": result.interrupted,
        "estimate": (
            None
            if result.estimate is None
            else {
                "budget_s": result.estimate.budget_s,
                "forward_s": result.estimate.forward_s,
                "full_s": result.estimate.full_s,
                "sample_s": result.estimate.sample_s,
                "directional_s": result.estimate.directional_s,
                "chosen": result.estimate.chosen,
            }
        ),
        "results": [_param_dict(p) for p in result.params],
    }
    return d | _extras(result, d, skip=("params",))


def to_json(result: CheckResult) -> str:
    return json.dumps(to_json_dict(result), indent=2, allow_nan=False)


def catalogue(layers: dict[str, type], losses: dict[str, type]) -> Group:
    """`gradcheck list`: every built-in with its formulas."""
    tables: list[RenderableType] = []
    for title, table_src in (("layers", layers), ("losses", losses)):
        table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
        table.add_column("name", style="bold")
        table.add_column("forward")
        table.add_column("backward")
        for name in sorted(table_src):
            cls = table_src[name]
            # Text(): formulas index with [n, c, …], which Rich would otherwise read as markup.
            table.add_row(
                name,
                Text(getattr(cls, "forward_formula", "")),
                Text(getattr(cls, "backward_formula", "")),
            )
        tables.append(table)
    tables.append(Text("With no loss, L = Σ out ⊙ g for a fixed random g drawn from the seed."))
    return Group(*tables)

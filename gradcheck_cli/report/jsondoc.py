"""The JSON report of one check (``gradcheck run --format json``, ``CheckResult.to_dict``): plain
data, no Rich, so the library can produce it without importing the terminal renderer."""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gradcheck_cli.results import CheckResult, Entry, ParamResult


#: Version of the JSON report layout (gradcheck_cli/spec/data/report.schema.json). Bumped only when a
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
    if is_dataclass(v):  # (results hold dataclass instances, never classes)
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
        "outcome": p.outcome,
        "cut": p.cut,
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
        "verified": result.verified,
        "counts": result.counts,
        "estimate": (
            None
            if result.estimate is None
            else {
                "unit": "operations",
                "limit": result.estimate.limit,
                "full": result.estimate.full,
                "sample": result.estimate.sample,
                "directional": result.estimate.directional,
                "chosen": result.estimate.chosen,
            }
        ),
        "results": [_param_dict(p) for p in result.params],
    }
    return d | _extras(result, d, skip=("params",))


def to_json(result: CheckResult) -> str:
    return json.dumps(to_json_dict(result), indent=2, allow_nan=False)

"""The two passes of a check over the selected tensors (plan.py says what each tensor's target is).

1. **Cheap look** at every tensor, in order: its directional probes (two loss evaluations each,
   whatever its size; at most one per entry). Then every failed probe is localised
   (localise.py), in what is left of a budget.
2. **Depth**: the target's entries, judged by the judge. Without a budget in one go per tensor;
   with one, in rounds whose entries double, over all tensors still short of their target, the
   cheapest first (counted operations, modes.py).

A budget that runs out ends the pass in progress: every tensor keeps its last completed look
(``cut`` says what it missed), a tensor with none is "not checked". Nothing here reads a clock
except through ``Plan.expired`` (an explicit budget only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gradcheck_cli.engine.draws import sample_indices
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.plan import modes
from gradcheck_cli.plan.directional import directional
from gradcheck_cli.plan.localise import localise
from gradcheck_cli.plan.plan import FIRST_ROUND, BudgetReached, Plan, Target
from gradcheck_cli.results import ParamResult, not_checked, structural_failure
from gradcheck_cli.verdict.judge import Judge

#: Under a budget, one engine chunk of a tensor may take about this share of the budget (timed
#: from the tensor's own cheap look): the budget is checked between chunks.
CHUNK_SHARE = 0.05
#: (analytic gradient, why it cannot be compared or None) of a tensor.
Gradient = Callable[[ParamRef], tuple[Any, str | None]]


@dataclass
class _Tensor:
    ref: ParamRef
    shape: tuple[int, ...]
    size: int
    analytic: Any
    scale: float
    target: Target
    cost: float = 0.0  # counted operations of one loss evaluation that perturbs it
    result: ParamResult | None = None
    probe: ParamResult | None = None  # the passed cheap look (its probes count in the result)
    failed: ParamResult | None = None  # a failed probe, until localised
    entries: int = 0  # entries of the last completed depth round
    done: bool = False


def judge_all(
    judge: Judge,
    refs: list[ParamRef],
    plan: Plan,
    shapes: dict[str, tuple[int, ...]],
    gradient: Gradient,
    scales: dict[str, float],
    results: list[ParamResult],
) -> list[str]:
    """Judge every tensor of ``refs``; ``results`` receives them in ``refs`` order (also when
    interrupted: the tensors with a completed look). Returns the names of tensors the budget cut
    short and of those it reached before any look (for the budget note)."""
    tensors: list[_Tensor] = []
    costs = modes.evaluation_operations(judge.pert, refs)
    for ref, cost in zip(refs, costs, strict=True):
        shape = shapes[ref.name]
        size = int(np.prod(shape, dtype=np.int64))
        analytic, why = gradient(ref)
        t = _Tensor(ref, shape, size, analytic, scales[ref.name], plan.target(size), cost)
        if why:
            t.result, t.done = structural_failure(ref.name, shape, why, analytic), True
        tensors.append(t)
    try:
        try:
            _cheap_looks(judge, tensors, plan)
            _localise_failed(judge, tensors, plan)
            _depth(judge, tensors, plan)
        except BudgetReached:
            pass
        short = _close(judge, tensors, plan)
        plan.finish()
        return short
    finally:
        results += [t.result for t in tensors if t.result is not None]


def _cheap_looks(judge: Judge, tensors: list[_Tensor], plan: Plan) -> None:
    """Probes for every tensor whose target has them (without a budget a full target has none:
    its entries see everything). The budget waits until every tensor had its look."""
    plan.covering = True
    try:
        for t in tensors:
            began, done = plan.clock(), plan.done
            _cheap_look(judge, t, plan)
            if plan.budget is not None and plan.done > done:  # keep later chunks short
                each = (plan.clock() - began) / (plan.done - done)
                if each > 0:
                    cap = int(CHUNK_SHARE * plan.budget / each)
                    judge.pert.chunk_caps[t.ref.name] = max(1, cap)
    finally:
        plan.covering = False


def _cheap_look(judge: Judge, t: _Tensor, plan: Plan) -> None:
    if t.done:
        return
    if t.target.probes == 0:
        return
    plan.next_tensor(t.ref.name)
    probe = directional(judge, t.ref, t.shape, t.analytic, t.scale, plan, t.target.probes)
    # A failed probe is localised. Under a budget a probe that only did not resolve (strict
    # fails "inconclusive") is a look like any other: the entries decide, if time allows.
    if probe.verdict == "fail" or (not probe.passed and plan.deadline is None):
        t.failed = probe
        return
    t.probe, t.result = probe, probe
    t.done = t.target.entries == 0


def _localise_failed(judge: Judge, tensors: list[_Tensor], plan: Plan) -> None:
    """A bounded search for the entries behind each failed probe (with the sample's entries,
    when no budget orders the work); a budget that runs out leaves the probe's failure."""
    for t in tensors:
        if t.failed is None:
            continue
        known = None
        plan.next_tensor(t.ref.name)
        if plan.deadline is None and 0 < t.target.entries < t.size:
            known = _indices(t, plan, t.target.entries)
        try:
            t.result = localise(judge, t.ref, t.shape, t.analytic, t.scale, plan, t.failed, known)
        except BudgetReached:
            t.result = replace(
                t.failed,
                mode="directional",
                note="a directional probe fails; the budget ran out before its entries were "
                "singled out (rerun with a larger --budget, or --include this tensor)",
            )
        t.done = True


def _depth(judge: Judge, tensors: list[_Tensor], plan: Plan) -> None:
    """The targets' entries: one round without a budget; with one, doubling rounds, each the
    cheapest tensors first (counted work of the round), so a budget finishes as many as it can."""
    budget = plan.deadline is not None
    n = FIRST_ROUND if budget else max((t.target.entries for t in tensors), default=0)
    while True:
        pending = [t for t in tensors if not t.done and t.failed is None]
        if not pending:
            return
        if budget:
            pending.sort(key=lambda t: t.cost * min(n, t.target.entries))
        for t in pending:
            _judge_entries(judge, t, plan, min(n, t.target.entries))
        n *= 2


def _indices(t: _Tensor, plan: Plan, m: int) -> Any:
    return np.arange(t.size) if m >= t.size else sample_indices(t.size, m, plan.seed, t.ref.name)


def _judge_entries(judge: Judge, t: _Tensor, plan: Plan, m: int) -> None:
    """Judge ``m`` entries of ``t`` (its first ``m`` of the stratified sample, or all)."""
    idx = _indices(t, plan, m)
    plan.next_tensor(t.ref.name)
    # a round re-judges the last round's entries (0 before the first; without a budget there is
    # only one round)
    plan.grow(2 * t.entries)
    res = judge(t.ref, t.shape, t.analytic, idx, t.scale)
    every = m >= t.size
    if t.probe is not None and not every:
        res = replace(res, mode="sample+probes" if res.reason is None else "sample", probes=t.probe.checked)
    else:
        res = replace(res, mode="full" if plan.mode == "directional" else plan.mode)
    t.result, t.entries = res, m
    t.done = not res.passed or m >= t.target.entries


def _close(judge: Judge, tensors: list[_Tensor], plan: Plan) -> list[str]:
    """Mark what the budget left short: a failed probe stays a failure; a tensor with a look
    is ``cut`` (partly checked), one without any is not checked; both fail under --strict."""
    short = []
    for t in tensors:
        if t.done:
            continue
        # a failed probe whose localisation the budget stopped before it began
        if t.failed is not None:
            t.result = replace(t.failed, note="a directional probe fails; the budget ran out "
                               "before its entries were singled out")  # fmt: skip
            continue
        if t.result is None:
            why = "the budget ran out before its first look"
            t.result = not_checked(t.ref.name, t.shape, why, strict=judge.strict)
        else:
            got = f"{t.entries} of {t.target.entries} planned entries" if t.entries else "probes only"
            passed = t.result.passed and not judge.strict
            t.result = replace(t.result, cut=f"budget: {got}", passed=passed)
        short.append(t.ref.name)
    return short

"""How the closing line counts a tensor: its outcome (disagree, agree, zero here, at a kink,
inconclusive, partly checked / not checked by the budget), which outcomes verify it, and why the
others do not. Read from a result's verdict, pass flag and budget cut; nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcheck_cli.results import ParamResult

#: Outcomes of one tensor, in the order the closing line counts them (like pytest's summary).
OUTCOMES = (
    "disagree",
    "agree",
    "zero here",
    "at a kink",
    "inconclusive",
    "partly checked (budget)",
    "not checked (budget)",
)
#: The outcomes that verify a tensor; every other one keeps a ✓ off the closing line.
VERIFIED = ("agree", "zero here")
#: Why each unverified outcome is not verified (the ⚠ line and JUnit's <skipped> say it).
WHY_NOT = {
    "at a kink": "entries sit at a kink: only a subgradient could be checked there",
    "inconclusive": "the estimate did not resolve the gradient to the promised size",
    "partly checked (budget)": "the budget ran out after its cheap look, before its planned entries",
    "not checked (budget)": "the budget ran out before it was looked at",
}


def outcome(p: ParamResult) -> str:
    """One tensor's outcome: a failure disagrees; a check cut short by the budget is partly
    checked (or not checked at all); then the verdict (kink, inconclusive, zero, pass)."""
    if p.verdict == "fail" or (not p.passed and p.verdict in ("pass", "zero") and p.cut is None):
        return "disagree"
    if p.verdict == "not checked":
        return "not checked (budget)"
    if p.verdict == "kink":
        return "at a kink"
    if p.verdict == "inconclusive":
        return "inconclusive"
    if p.cut is not None:
        return "partly checked (budget)"
    return "zero here" if p.verdict == "zero" else "agree"


def count_outcomes(params: tuple[ParamResult, ...] | list[ParamResult]) -> dict[str, int]:
    """Tensors per outcome, in :data:`OUTCOMES` order, outcomes that occur only."""
    seen = [outcome(p) for p in params]
    return {o: seen.count(o) for o in OUTCOMES if o in seen}

"""Which entries or probes of which tensors to check, in what order, and the progress count.

Every tensor has a *target* (:class:`Target`): the entries its mode checks one by one and the
directional probes over the whole tensor. The target comes from counts only (modes.py), so the
same config and seed check the same entries anywhere. The check runs in two passes (checker.py):

1. a **cheap look** at every selected tensor: its probes (at most one per entry), a few loss
   evaluations per tensor, never cut by a budget (so a budget ends within about itself plus this
   one round); a failed look is localised next (localise.py);
2. **depth**: the target's entries. Without a budget, each tensor's entries in one go. With a
   budget (``--budget``, the only place a clock decides anything), in rounds over all tensors
   whose entries double (:data:`FIRST_ROUND`, 2×, …, up to the target), so depth spreads evenly
   and the budget ends a round, never the coverage.

A tensor whose check the budget cut short keeps its last completed look and is *partly checked*;
one the budget reached before any look is *not checked*: neither is verified (results.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gradcheck_cli.defaults import DEFAULT_PROBES, DEFAULT_SAMPLES
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.plan import modes
from gradcheck_cli.verdict.judge import Judge

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions

#: Progress callback: (evaluations done, evaluations planned so far).
Progress = Callable[[int, int], None]
#: Entries per tensor in the first depth round under a budget (then 2×, 4×, … up to the target).
FIRST_ROUND = 16


class BudgetReached(Exception):
    """The check's budget (``Plan.deadline``) ran out: the work in progress is dropped; every
    tensor keeps its last completed look."""


@dataclass(frozen=True)
class Target:
    """What the plan checks of one tensor: ``entries`` entry by entry (its size: every entry),
    ``probes`` directional probes over the whole tensor."""

    entries: int
    probes: int


@dataclass
class Plan:
    """Which entries/probes to check per tensor, the budget, and the progress count."""

    mode: str
    samples: int
    probes: int
    seed: int
    estimate: modes.Estimate | None
    progress: Progress | None
    done: int = 0
    planned: int = 0
    #: ``clock()`` after which the check stops: only when a budget was given.
    deadline: float | None = None
    budget: float | None = None
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)
    #: While the cheap looks run the budget is not enforced: every tensor gets its look (one
    #: round of a few loss evaluations per tensor), then the budget holds.
    covering: bool = False

    def target(self, size: int) -> Target:
        """The entries and probes this plan checks of a tensor of ``size`` entries."""
        if self.mode == "directional":
            return Target(0, self.probes)
        if self.mode == "sample" and size > self.samples:
            return Target(self.samples, self.probes)
        # every entry (also a sample as large as the tensor); with a budget, probes first so the
        # whole tensor is seen early (no more probes than entries: a one-entry tensor's look is
        # one central difference)
        return Target(size, min(self.probes, size) if self.deadline is not None else 0)

    def evaluations(self, size: int) -> int:
        t = self.target(size)
        return 2 * t.entries + modes.PROBE_EVALS * t.probes

    def tick(self, n: int) -> None:
        self.done += n
        # work nobody could plan (the judge re-estimating entries before a verdict) extends the
        # total as it happens, so the bar never shows more done than planned
        self.planned = max(self.planned, self.done)
        if self.progress is not None:
            self.progress(self.done, self.planned)
        self.check_deadline()

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() > self.deadline

    def check_deadline(self) -> None:
        if not self.covering and self.expired():
            raise BudgetReached

    def next_tensor(self, name: str = "") -> None:
        """A tensor's look or depth is about to be judged. A progress callback with a
        ``stage(mode, tensor)`` method (the CLI's bar) is told the mode and the tensor."""
        stage = getattr(self.progress, "stage", None)
        if stage is not None:
            stage(self.label(), name)

    def label(self) -> str:
        """The mode in a few words, with auto's decision: "auto → sample: 16 entries + 2 probes
        per tensor (counted: 3.1e+09 of 8e+10 operations)"."""
        what = {
            "full": "full: every entry",
            "sample": f"sample: {self.samples} entries + {self.probes} probe(s) per tensor",
            "directional": f"directional: {self.probes} probe(s) per tensor",
        }.get(self.mode, self.mode)
        est = self.estimate
        if est is None:
            return what
        return f"auto → {what} (counted: {est.work(self.mode):.2g} of {est.limit:.2g} operations)"

    def budget_note(self, short: list[str], missed: list[str]) -> str:
        """What a check stopped by its budget did not finish."""
        parts = []
        if short:
            parts.append(f"partly checked (probes, not all planned entries): {_names(short)}")
        if missed:
            parts.append(f"not checked: {_names(missed)}")
        return (
            f"budget of {self.budget:g} s reached; {'; '.join(parts)} (not verified: --strict "
            "fails them; raise --budget or narrow the check with --include)"
        )

    def grow(self, n: int) -> None:
        self.planned += n

    def finish(self) -> None:
        """The check is over: what was planned but not needed is dropped, the count ends full."""
        if self.planned != self.done:
            self.planned = self.done
            if self.progress is not None:
                self.progress(self.done, self.planned)


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def make_plan(
    judge: Judge,
    refs: list[ParamRef],
    opts: CheckOptions,
    progress: Progress | None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    started: float | None = None,
) -> Plan:
    """Resolve the mode for ``refs`` (auto: count the work of each mode, modes.choose), set the
    deadline when a budget was given (``started``: when the check began, default now), hook up
    progress."""
    pert = judge.pert
    began = clock() if started is None else started
    mode, samples, budget = opts.chosen_mode, opts.samples, opts.budget
    k_samples = DEFAULT_SAMPLES if samples is None else samples
    k_probes = DEFAULT_PROBES if opts.probes is None else opts.probes
    rng_seed = 0 if opts.seed is None else opts.seed
    chosen: str = mode or "full"
    est = None
    sizes = [pert.array(r).size for r in refs]
    if mode == "auto" or (mode is None and sum(sizes) > modes.SMALL_CHECK):
        est = modes.choose(
            sizes,
            modes.evaluation_operations(pert, refs),
            samples=k_samples,
            probes=k_probes,
            grow=samples is None,
        )
        chosen, k_samples = est.chosen, est.samples
    plan = Plan(chosen, k_samples, k_probes, rng_seed, est, progress, clock=clock)
    if budget is not None:
        plan.budget = budget
        plan.deadline = began + budget
    plan.planned = sum(plan.evaluations(n) for n in sizes)
    pert.progress = plan.tick  # the count a budget and the progress bar read
    if progress is not None:
        progress(0, plan.planned)
    return plan

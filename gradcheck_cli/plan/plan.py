"""Which entries or probes of which tensors to check: the mode (auto pilots the engine and
estimates each mode's cost against the budget), and the progress count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.options import DEFAULT_BUDGET, DEFAULT_PROBES, DEFAULT_SAMPLES, CheckOptions
from gradcheck_cli.plan import modes
from gradcheck_cli.verdict.judge import Judge

#: Progress callback: (evaluations done, evaluations planned so far).
Progress = Callable[[int, int], None]


class BudgetReached(Exception):
    """The check's budget (``Plan.deadline``) ran out: the tensor in progress is dropped, the
    ones finished are reported."""


@dataclass
class Plan:
    """Which entries/probes to check per tensor, and the progress count."""

    mode: str
    samples: int
    probes: int
    seed: int
    estimate: modes.Estimate | None
    progress: Progress | None
    done: int = 0
    planned: int = 0
    #: ``time.perf_counter()`` after which the check stops (a budget was given, or auto chose
    #: the mode): checked between engine chunks and between tensors.
    deadline: float | None = None
    budget: float | None = None
    #: Tensors started; the deadline is honoured from the second one on, so a run stopped by
    #: its budget always reports at least one checked tensor.
    started: int = 0

    def evaluations(self, size: int) -> int:
        if self.mode == "directional":
            return modes.PROBE_EVALS * self.probes
        if self.mode == "sample" and size > self.samples:  # the sample, and probes over it all
            return 2 * self.samples + modes.PROBE_EVALS * self.probes
        return 2 * size

    def tick(self, n: int) -> None:
        self.done += n
        # work nobody could plan (the judge re-estimating entries before a verdict) extends the
        # total as it happens, so the bar never shows more done than planned
        self.planned = max(self.planned, self.done)
        if self.progress is not None:
            self.progress(self.done, self.planned)
        self.check_deadline()

    def check_deadline(self) -> None:
        if self.started > 1 and self.deadline is not None and time.perf_counter() > self.deadline:
            raise BudgetReached

    def next_tensor(self, name: str = "") -> None:
        """A tensor is about to be judged (the budget is checked first). A progress callback with
        a ``stage(mode, tensor)`` method (the CLI's bar) is told the mode and the tensor."""
        self.started += 1
        self.check_deadline()
        stage = getattr(self.progress, "stage", None)
        if stage is not None:
            stage(self.label(), name)

    def label(self) -> str:
        """The mode in a few words, with auto's decision: "auto → sample: 16 entries + 2 probes
        per tensor (est. 12.3 s of a 60 s budget)"."""
        what = {
            "full": "full: every entry",
            "sample": f"sample: {self.samples} entries + {self.probes} probe(s) per tensor",
            "directional": f"directional: {self.probes} probe(s) per tensor",
        }.get(self.mode, self.mode)
        est = self.estimate
        if est is None:
            return what
        return f"auto → {what} (est. {est.seconds(self.mode):.3g} s of a {est.budget_s:g} s budget)"

    def budget_note(self, finished: list[str], refs: list[str]) -> str:
        """What a check stopped by its budget did and did not check."""
        done = set(finished)
        left = [r for r in refs if r not in done]
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        return (
            f"budget of {self.budget:g} s reached: {len(finished)} of {len(refs)} tensor(s) "
            f"checked; not checked: {shown} (a pass covers the checked tensors only; raise "
            "--budget or narrow the check with --include)"
        )

    def grow(self, n: int) -> None:
        self.planned += n


def make_plan(
    judge: Judge, refs: list[ParamRef], opts: CheckOptions, progress: Progress | None
) -> Plan:
    """Resolve the mode for ``refs`` (auto: pilot the engine and estimate), hook up progress."""
    pert = judge.pert
    started = time.perf_counter()
    mode, samples, budget = opts.chosen_mode, opts.samples, opts.budget
    k_samples = DEFAULT_SAMPLES if samples is None else samples
    k_probes = DEFAULT_PROBES if opts.probes is None else opts.probes
    rng_seed = 0 if opts.seed is None else opts.seed
    chosen: str = mode or "full"
    est = None
    sizes = [pert.array(r).size for r in refs]
    if mode == "auto" or (mode is None and sum(sizes) > modes.SMALL_CHECK):
        est = modes.estimate(
            pert,
            refs,
            eps=judge.eps,
            samples=k_samples,
            probes=k_probes,
            budget=DEFAULT_BUDGET if budget is None else budget,
            seed=rng_seed,
            grow=samples is None,
            resolution=judge.tol.resolution if judge.method != "complex" else None,
        )
        chosen, k_samples = est.chosen, est.samples
    plan = Plan(chosen, k_samples, k_probes, rng_seed, est, progress)
    plan.planned = sum(plan.evaluations(n) for n in sizes)
    if budget is not None or est is not None:
        plan.budget = DEFAULT_BUDGET if budget is None else budget
        plan.deadline = started + plan.budget
    if progress is not None or plan.deadline is not None:
        pert.progress = plan.tick
    if progress is not None:
        progress(0, plan.planned)
    return plan



"""Which entries or probes of which tensors to check: the mode (auto pilots the engine and
estimates each mode's cost against the budget), and the progress count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gradcheck_cli import modes
from gradcheck_cli.judge import Judge
from gradcheck_cli.network import ParamRef
from gradcheck_cli.options import DEFAULT_BUDGET, DEFAULT_PROBES, DEFAULT_SAMPLES, CheckOptions

#: Progress callback: (evaluations done, evaluations planned so far).
Progress = Callable[[int, int], None]


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

    def evaluations(self, size: int) -> int:
        if self.mode == "directional":
            return modes.PROBE_EVALS * self.probes
        return 2 * (min(size, self.samples) if self.mode == "sample" else size)

    def tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.planned)

    def grow(self, n: int) -> None:
        self.planned += n


def make_plan(
    judge: Judge, refs: list[ParamRef], opts: CheckOptions, progress: Progress | None
) -> Plan:
    """Resolve the mode for ``refs`` (auto: pilot the engine and estimate), hook up progress."""
    pert = judge.pert
    mode, samples, budget = opts.mode, opts.samples, opts.budget
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
        )
        chosen, k_samples = est.chosen, est.samples
    plan = Plan(chosen, k_samples, k_probes, rng_seed, est, progress)
    plan.planned = sum(plan.evaluations(n) for n in sizes)
    if progress is not None:
        pert.progress = plan.tick
        progress(0, plan.planned)
    return plan



"""Check one config or many: expand files/directories/globs, run each, collect outcomes.

One invalid config does not stop the others; it becomes an outcome with its error. The exit code of
a suite is the worst of its outcomes: 2 if any config is invalid, else 1 if any check failed, else 0
(130 when Ctrl-C stopped it: the partial report is still given).

With ``jobs`` > 1 configs are checked in worker processes (forked, so plugins and options are
as in the parent), and outcomes are collected in the order of the configs: the report, JSON and
JUnit are those of a serial run. A worker that dies (a plugin calling ``os._exit``) has its
config re-run in this process, where it ends the run exactly as it would serially.
"""

from __future__ import annotations

import glob
import os
import signal
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gradcheck_cli.checker import check_network
from gradcheck_cli.engine.build import build_network
from gradcheck_cli.errors import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
    ConfigError,
    GradcheckError,
)
from gradcheck_cli.plan.limits import Limits, preflight
from gradcheck_cli.plan.modes import preflight_plan as preflight_plan  # re-exported
from gradcheck_cli.plan.plan import Progress
from gradcheck_cli.plan.selection import select
from gradcheck_cli.results import CheckResult
from gradcheck_cli.spec.builtin import prevalidated
from gradcheck_cli.verdict.outcomes import count_outcomes

if TYPE_CHECKING:
    from concurrent.futures import Future

    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.spec.config import Config

#: File suffixes taken from a directory.
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
_GLOB_CHARS = frozenset("*?[")

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class Outcome:
    """One config of a suite: its check result, or the error that kept it from running."""

    config: str
    result: CheckResult | None = None
    error: GradcheckError | None = None

    @property
    def status(self) -> Status:
        if self.error is not None or self.result is None:
            return "error"
        return "pass" if self.result.passed else "fail"


@dataclass(frozen=True)
class SuiteResult:
    outcomes: tuple[Outcome, ...]
    #: Ctrl-C stopped a parallel suite (``--jobs``) before the next config in order finished.
    stopped: bool = False

    @property
    def passed(self) -> bool:
        return all(o.status == "pass" for o in self.outcomes)

    @property
    def tensor_counts(self) -> dict[str, int]:
        """Tensors per outcome over every config that ran (results.OUTCOMES order)."""
        return count_outcomes([p for o in self.outcomes if o.result for p in o.result.params])

    @property
    def verified(self) -> bool:
        """Every config passed with every selected tensor verified."""
        return self.passed and all(o.result is not None and o.result.verified for o in self.outcomes)

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped a check: its partial result is the last outcome, the rest did not run."""
        return self.stopped or any(o.result is not None and o.result.interrupted for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        statuses = {o.status for o in self.outcomes}
        if self.interrupted:
            return EXIT_INTERRUPTED
        if "error" in statuses:
            return EXIT_USAGE
        return EXIT_FAIL if "fail" in statuses else EXIT_PASS

    def _repr_html_(self) -> str:
        """A notebook shows each config's report and the summary table, as the terminal does."""
        from gradcheck_cli.report.notebook import suite_html

        return suite_html(self)


def is_pattern(arg: str | Path) -> bool:
    return bool(_GLOB_CHARS & set(str(arg))) and not Path(arg).exists()


def is_config_dir(arg: str | Path) -> bool:
    """A directory to take configs from. One named like a config file (``net.yaml/``) is taken
    as a mistaken file argument instead, so its error says "is a directory"."""
    path = Path(arg)
    return path.is_dir() and path.suffix.lower() not in CONFIG_SUFFIXES


def is_single(args: Sequence[str | Path]) -> bool:
    """One config file (not a directory or glob): the plain single report, not a suite."""
    return len(args) == 1 and not is_config_dir(args[0]) and not is_pattern(args[0])


def expand(args: Sequence[str | Path]) -> list[Path | Outcome]:
    """Config paths for ``args`` in order (directories: their config files, sorted, not the hidden
    ones such as .pre-commit-config.yaml; globs: their matches, sorted, ``**`` recursive, hidden
    files and folders skipped as the shell does). An argument that yields nothing becomes an error
    outcome. A file named explicitly is taken as given, hidden or not."""
    found: list[Path | Outcome] = []
    for arg in args:
        text = str(arg)
        path = Path(arg)
        if is_config_dir(path):
            files = sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in CONFIG_SUFFIXES and p.is_file() and not p.name.startswith(".")
            )
            if not files:
                found.append(
                    _missing(text, "directory has no config files (*.yaml, *.yml, *.json)")
                )
            found += files
        elif is_pattern(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                found.append(_missing(text, "no file matches this pattern"))
            found += matches
        else:
            found.append(path)
    return found


def _missing(arg: str, message: str) -> Outcome:
    return Outcome(arg, error=ConfigError(message, file=arg))


def check_config(
    cfg: Config,
    *,
    seed: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    flags: bool = False,
    **given: Any,
) -> CheckResult:
    """Build and check the network of ``cfg`` within the size/time limits (``force``: none).
    ``given`` are check options (CheckOptions fields) over the config's ``check:`` section; a
    value of None takes the config's. ``flags``: errors name options as CLI flags."""
    from gradcheck_cli.options import CheckOptions

    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    opts = CheckOptions.build(cfg.check, flags=flags, seed=cfg.seed, **given)
    return check_built(cfg, opts, force=force, progress=progress)


def check_built(
    cfg: Config, opts: CheckOptions, *, force: bool = False, progress: Progress | None = None
) -> CheckResult:
    """Build and check the network of ``cfg`` with ``opts`` (both validated)."""
    limits = Limits.off() if force else Limits()
    how = preflight_plan(opts)
    net = build_network(cfg, limits=limits, probes=how.get("probes", 0), inputs=opts.inputs)
    preflight(net, inputs=opts.inputs, **how, limits=limits, source=cfg.source)
    return check_network(net, options=opts, progress=progress)


def run_config(
    path: str | Path,
    *,
    no_plugins: bool = False,
    force: bool = False,
    seed: int | None = None,
    progress: Progress | None = None,
    flags: bool = False,
    **given: Any,
) -> CheckResult:
    """Load, build and check one config file (errors raise). ``no_plugins``: refuse a config
    that names user code, before importing any. The built-in network with nothing given that
    changes its options is read from its snapshot (spec/builtin.py: validated when written)."""
    try:
        pre = prevalidated(path, no_plugins=no_plugins, seed=seed, **given)
        if pre is not None:
            return check_built(*pre, force=force, progress=progress)
        from gradcheck_cli.spec.config import load_config

        cfg = load_config(path, no_plugins=no_plugins)
        return check_config(cfg, seed=seed, force=force, progress=progress, flags=flags, **given)
    except GradcheckError as exc:
        if exc.file is None:  # e.g. an include pattern: say which config it was
            exc.file = str(path)
        raise


def unexpected(exc: Exception, path: str | Path) -> GradcheckError:
    """An error gradcheck did not foresee, as this config's error (the suite goes on)."""
    return GradcheckError(
        f"internal error while checking this config: {type(exc).__name__}: {exc}",
        file=path,
        hint="rerun this config alone with --debug for the traceback, and please report it",
    )


def resolve_jobs(jobs: int | str | None) -> int:
    """Worker processes for ``--jobs``: a count ≥ 1, or "auto" (the CPUs this process may use)."""
    if jobs is None:
        return 1
    if isinstance(jobs, str):
        if jobs.strip().lower() == "auto":
            return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        try:
            jobs = int(jobs)
        except ValueError:
            jobs = 0
    if jobs < 1:
        raise ConfigError(
            f"--jobs must be a number of worker processes ≥ 1 or 'auto', got {jobs!r}",
            field="--jobs",
        )
    return jobs


def _outcome(item: Path, options: dict[str, Any]) -> Outcome:
    """Check one config; its error (foreseen or not) is its outcome."""
    try:
        return Outcome(str(item), result=run_config(item, **options))
    except GradcheckError as exc:
        return Outcome(str(item), error=exc)
    except Exception as exc:  # a bug, or an input nothing refused yet: this config only
        return Outcome(str(item), error=unexpected(exc, item))


def _unique(args: Sequence[str | Path]) -> list[Path | Outcome]:
    """The configs ``args`` expand to, each file once (via a directory and a glob alike)."""
    items: list[Path | Outcome] = []
    seen: set[Path] = set()
    for item in expand(args):
        if isinstance(item, Path):
            if item.resolve() in seen:
                continue
            seen.add(item.resolve())
        items.append(item)
    return items


def run_suite(
    args: Sequence[str | Path],
    *,
    keep_going: bool = True,
    jobs: int | str | None = 1,
    **options: Any,
) -> SuiteResult:
    """Check every config ``args`` expand to. With ``keep_going=False`` the first error raises
    (``--debug`` wants its traceback). ``jobs``: worker processes (see the module doc)."""
    items = _unique(args)
    workers = min(resolve_jobs(jobs), sum(isinstance(i, Path) for i in items))
    if workers > 1 and keep_going:
        done, stopped = _parallel(items, workers, options)
        return SuiteResult(tuple(done), stopped)
    outcomes: list[Outcome] = []
    for item in items:
        if isinstance(item, Outcome):
            if not keep_going and item.error is not None:
                raise item.error
            outcomes.append(item)
            continue
        if not keep_going:
            outcomes.append(Outcome(str(item), result=run_config(item, **options)))
        else:
            outcomes.append(_outcome(item, options))
        result = outcomes[-1].result
        if result is not None and result.interrupted:  # Ctrl-C: report what is done, run no more
            break
    return SuiteResult(tuple(outcomes))


def _parallel(
    items: list[Path | Outcome], workers: int, options: dict[str, Any]
) -> tuple[list[Outcome], bool]:
    """``items`` checked by ``workers`` processes, outcomes in the order of ``items``. No progress
    bar (several checks at once). Workers ignore Ctrl-C and SIGTERM: on either, this process
    keeps the outcomes finished in order up to the first unfinished config, ends the workers and
    returns ``stopped=True`` (the partial report, exit 130)."""
    import multiprocessing  # here: a serial run (the default) need not import them
    from concurrent.futures import Future, ProcessPoolExecutor

    quiet = {**options, "progress": None}
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals
    )
    futures: list[Future[Outcome] | Outcome] = [
        pool.submit(_outcome, item, quiet) if isinstance(item, Path) else item for item in items
    ]
    outcomes: list[Outcome] = []
    try:
        for item, fut in zip(items, futures, strict=True):
            outcomes.append(_collect(item, fut, options))
    except KeyboardInterrupt:
        for fut in futures[len(outcomes) :]:
            if isinstance(fut, Future):
                fut.cancel()
        for item, fut in zip(items[len(outcomes) :], futures[len(outcomes) :], strict=True):
            if isinstance(fut, Future) and not (fut.done() and not fut.cancelled()):
                break
            outcomes.append(_collect(item, fut, options))
        for proc in list(getattr(pool, "_processes", {}).values()):
            with suppress(OSError):
                proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        return outcomes, True
    pool.shutdown(wait=True)
    return outcomes, False


def _worker_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _collect(
    item: Path | Outcome, fut: Future[Outcome] | Outcome, options: dict[str, Any]
) -> Outcome:
    if isinstance(fut, Outcome):
        return fut
    try:
        return fut.result()
    except Exception:  # the worker died (a plugin ended its process): run it here, as serially
        assert isinstance(item, Path)
        return _outcome(item, options)


@dataclass(frozen=True)
class Validation:
    """One config checked for validity only: what it builds to, or why it cannot be built."""

    config: str
    name: str | None = None
    layers: int = 0
    tensors: tuple[str, ...] = ()
    error: GradcheckError | None = None


def validate(args: Sequence[str | Path], *, no_plugins: bool = False) -> list[Validation]:
    """Parse each config and build its network (imports plugins, one forward pass to fit the
    shapes, memory limits) without checking any gradient, then refuse what ``run`` would refuse
    before its check (``preflight`` with the config's options: probes, ε; then the selection), all
    but the time estimate. ``no_plugins``: refuse user code."""
    found: list[Validation] = []
    for item in expand(args):
        if isinstance(item, Outcome):
            found.append(Validation(item.config, error=item.error))
            continue
        try:  # what `run` refuses before checking, with the same numbers (not the timing)
            from gradcheck_cli.options import CheckOptions
            from gradcheck_cli.spec.config import load_config

            cfg = load_config(item, no_plugins=no_plugins)
            opts = CheckOptions.build(cfg.check, seed=cfg.seed)
            how = {**preflight_plan(opts), "timed": False}
            net = build_network(cfg, probes=how.get("probes", 0), inputs=opts.inputs)
            preflight(net, inputs=opts.inputs, **how, limits=Limits(), source=cfg.source)
        except GradcheckError as exc:
            found.append(Validation(str(item), error=exc))
            continue
        except Exception as exc:  # one config's problem, never the others'
            found.append(Validation(str(item), error=unexpected(exc, item)))
            continue
        refs = net.parameters(include_input=cfg.check.inputs and not net.discrete)
        try:  # the tensors `run` would check: ids have no gradient, the selection applies
            names = tuple(select([r.name for r in refs], cfg.check.include, cfg.check.exclude))
        except GradcheckError as exc:
            exc.file = exc.file or str(item)
            found.append(Validation(str(item), error=exc))
            continue
        found.append(Validation(str(item), cfg.name, len(net.layers), names))
    return found

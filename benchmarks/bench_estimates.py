"""Estimate accuracy and budgets: gradcheck's time estimate (the engine timed on real copies,
``limits.estimate_time``, the number behind "this check would take about …"; auto decides from counts, not from it)
against the measured time of the same full check; and ``--budget`` against wall time.

Run (one run, BLAS single-threaded):

    python benchmarks/bench_estimates.py --markdown docs/benchmarks.md

Cases: the benchmark networks small and deep (bench_engine.py), a conv net, the configs of
../shared/cases M4_auto_budget_ignored and M9_auto_sample_misses_entry when that folder exists
(``--cases /work/shared/cases``). Each full check runs once (M9's takes about a minute).
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from bench_engine import build, write_between_markers  # noqa: E402

from gradcheck_cli.checker import check_network  # noqa: E402
from gradcheck_cli.engine.build import build_network  # noqa: E402
from gradcheck_cli.plan.limits import Limits, estimate_time  # noqa: E402
from gradcheck_cli.spec.config import load_config  # noqa: E402

CONV = """name: conv-bench
input: {shape: [8, 3, 16, 16]}
target: {kind: classes, classes: 10}
layers:
  - {type: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {type: relu}
  - {type: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {type: flatten}
  - {type: linear, out: 10}
loss: {type: softmax_cross_entropy}
"""


def networks(cases: Path | None, tmp: Path) -> list[tuple[str, Any, bool]]:
    """(label, built network, check the input)."""
    out: list[tuple[str, Any, bool]] = [
        ("small", build("small"), False),
        ("deep", build("deep"), False),
    ]
    conv = tmp / "conv.yaml"
    conv.write_text(CONV)
    out.append(("conv net (8×3×16×16, two 3×3 convs)", build_network(load_config(conv)), True))
    if cases is not None:
        for folder, name in (
            ("M4_auto_budget_ignored", "many.yaml"),
            ("M9_auto_sample_misses_entry", "sample_miss.yaml"),
        ):
            path = cases / folder / name
            if path.exists():
                cfg = load_config(path)
                out.append((f"{folder}/{name}", build_network(cfg, limits=Limits.off()), True))
    return out


def accuracy(cases: Path | None) -> list[tuple[str, int, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, net, inputs in networks(cases, Path(tmp)):
            t0 = time.perf_counter()
            cost = estimate_time(net, inputs=inputs, eps=1e-5)
            pilot = time.perf_counter() - t0
            t0 = time.perf_counter()
            check_network(net, mode="full", inputs=inputs, attribute=False)
            real = time.perf_counter() - t0
            rows.append((label, cost.entries, cost.seconds, real))
            print(f"[{label}] est {cost.seconds:.3f} s (pilot {pilot:.2f} s), real {real:.3f} s",
                  file=sys.stderr)  # fmt: skip
    return rows


def budgets(cases: Path | None) -> list[tuple[str, float, float, int, int]]:
    """A budget that cannot hold the whole check: wall time of the check, tensors verified."""
    rows = []
    if cases is None:
        return rows
    path = cases / "M4_auto_budget_ignored" / "many.yaml"
    if not path.exists():
        return rows
    for budget in (1.0, 5.0):
        net = build_network(load_config(path))
        t0 = time.perf_counter()
        res = check_network(net, mode="auto", budget=budget, attribute=False)
        took = time.perf_counter() - t0
        rows.append((f"{path.parent.name} --mode auto --budget {budget:g}", budget, took,
                     sum(p.verified for p in res.params), len(net.parameters())))  # fmt: skip
    return rows


def startup(repeats: int = 5) -> list[tuple[str, float]]:
    """Wall time of a few commands (median of ``repeats``), start-up included."""
    import shutil
    import statistics
    import subprocess

    # this interpreter's own console script first: another `gradcheck` on PATH (a pyenv shim)
    # may belong to an environment without gradcheck and fail at once
    sibling = Path(sys.executable).with_name("gradcheck")
    exe = str(sibling) if sibling.exists() else shutil.which("gradcheck") or "gradcheck"
    out = []
    for args in (["--version"], ["--help"], ["run", "-q"]):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([exe, *args], capture_output=True, check=True)  # timing a failure: no
            times.append(time.perf_counter() - t0)
        out.append(("gradcheck " + " ".join(args), statistics.median(times)))
    return out


def markdown(
    acc: list[tuple[str, int, float, float]],
    bud: list[tuple[Any, ...]],
    start: list[tuple[str, float]],
) -> str:
    lines = ["Start-up (wall, median of 5):", "", "| command | wall |", "|---|---:|"]
    lines += [f"| `{cmd}` | {t:.2f} s |" for cmd, t in start]
    lines += [
        "",
        "Estimate accuracy (full mode; the estimate is what the 'would take about …' refusal "
        "uses; auto counts operations instead):",
        "",
        "| check | entries | estimated | measured | measured / estimated |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, entries, est, real in acc:
        lines.append(f"| {label} | {entries:,} | {est:.2f} s | {real:.2f} s | {real / est:.2f} |")
    if bud:
        lines += ["", "Budgets (in-process check time, start-up excluded):", ""]
        lines += ["| run | budget | took | tensors verified |", "|---|---:|---:|---:|"]
        for label, budget, took, done, total in bud:
            lines.append(f"| {label} | {budget:g} s | {took:.2f} s | {done:,} of {total:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default="", help="the shared cases folder (M4, M9), if any")
    ap.add_argument("--markdown", help="write the tables to this file (between markers)")
    ap.add_argument("--readme", help="write the one-line summary to this file (between markers)")
    args = ap.parse_args()
    cases = Path(args.cases) if args.cases and Path(args.cases).is_dir() else None
    from machine import describe

    print(describe(), file=sys.stderr)
    acc = accuracy(cases)
    text = markdown(acc, budgets(cases), startup())
    print(text)
    if args.markdown:
        write_between_markers(args.markdown, text, "bench_estimates")
    if args.readme:
        ratios = [real / est for _, _, est, real in acc]
        line = (
            "gradcheck's own time estimates (the engine timed on a few real copies per tensor, "
            f"second looks included) were {min(ratios):.2f}-{max(ratios):.2f}× the measured full "
            f"check on {', '.join(label.split('/')[0] for label, *_ in acc)}.\n"
        )
        write_between_markers(args.readme, line, "bench_readme_estimates")


if __name__ == "__main__":
    main()

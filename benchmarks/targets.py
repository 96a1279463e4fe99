"""The speed targets of issue 26, in one run against torch on this machine and SIMD path:

    python benchmarks/targets.py --markdown docs/benchmarks.md --readme README.md
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" ATEN_CPU_CAPABILITY=avx2 \
        python benchmarks/targets.py --markdown docs/benchmarks.md --readme README.md  # AVX2

small full ≥ 30× torch slow gradcheck; deep full ≥ 15×; medium full ≤ 20 s with auto's estimate
(``limits.estimate_time``) within 2×; directional (1 probe/tensor) ≤ torch fast on small, deep
and medium; start-up: ``gradcheck --version`` ≤ 3× a bare ``python -c pass`` and the default
``gradcheck run`` ≤ 3× ``python -c "import numpy"``. Times are wall-clock medians (BLAS and
torch single-threaded); gradcheck's checks also show their CPU time, which other processes on a
shared machine disturb less. Start-up runs with bytecode written (as an installed package has
it), the first run of each command a warm-up. Each table is written between markers per CPU
class (``bench_targets:AVX2`` …), with the SIMD level and versions (machine.py).
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from bench_engine import build, gc_run, torch, torch_check, write_between_markers  # noqa: E402
from machine import cpu_class, describe  # noqa: E402

from gradcheck_cli.plan.limits import estimate_time  # noqa: E402


def timed(job: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeats`` runs (one if a run takes over 20 s)."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        job()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
        if walls[-1] > 20:
            break
    return statistics.median(walls), statistics.median(cpus)


def startup(repeats: int) -> dict[str, float]:
    """Median wall time of each command, as subprocesses, in the same run."""
    exe = Path(sys.executable).with_name("gradcheck")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
        "gradcheck --version": [str(exe), "--version"],
        "gradcheck run": [str(exe), "run"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    with tempfile.TemporaryDirectory() as cwd:  # no gradcheck.yaml: the built-in network
        for i in range(repeats + 1):
            for label, argv in commands.items():  # interleaved: load changes hit all alike
                t0 = time.perf_counter()
                subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
                if i:
                    times[label].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--startup-repeats", type=int, default=15)
    ap.add_argument("--markdown", help="write the table to this file (between markers)")
    ap.add_argument("--readme", help="write the table to this file too (between markers)")
    ap.add_argument("--no-medium", action="store_true", help="skip medium's full check")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    machine = describe(torch)
    print(machine, file=sys.stderr)
    rows: list[str] = []

    def row(what: str, ours: str, theirs: str, ratio: str, target: str) -> None:
        rows.append(f"| {what} | {ours} | {theirs} | {ratio} | {target} |")
        print(rows[-1], file=sys.stderr)

    fmt = lambda s: f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"  # noqa: E731
    for name, need in (("small", 30), ("deep", 15)):
        net = build(name)
        wall, cpu = timed(lambda n=net: gc_run(n, "full"), args.repeats)
        slow = statistics.median(torch_check(net, fast=False) for _ in range(3)) if torch else 0
        ratio = f"{slow / wall:.1f}×" if torch else "—"
        row(
            f"{name} full",
            f"{fmt(wall)} (CPU {fmt(cpu)})",
            f"slow {fmt(slow)}",
            ratio,
            f"≥ {need}×",
        )
    if not args.no_medium:
        est = estimate_time(build("medium"), inputs=False, eps=1e-5).seconds
        wall, cpu = timed(lambda: gc_run(build("medium"), "full"), 1)
        row("medium full", f"{fmt(wall)} (CPU {fmt(cpu)})", "—",
            f"estimate {fmt(est)}: measured/est {wall / est:.2f}", "≤ 20 s, est. within 2×")  # fmt: skip
    for name in ("small", "deep", "medium"):
        net = build(name)
        wall, cpu = timed(lambda n=net: gc_run(n, "directional", probes=1), args.repeats)
        fast = (
            statistics.median(torch_check(net, fast=True) for _ in range(args.repeats))
            if torch
            else 0
        )
        ratio = f"{wall / fast:.2f}× torch fast" if torch else "—"
        row(
            f"{name} directional",
            f"{fmt(wall)} (CPU {fmt(cpu)})",
            f"fast {fmt(fast)}",
            ratio,
            "≤ 1×",
        )
    st = startup(args.startup_repeats)
    bare, numpy_ = st["python -c pass"], st['python -c "import numpy"']
    row("`gradcheck --version`", fmt(st["gradcheck --version"]), f"`python -c pass` {fmt(bare)}",
        f"{st['gradcheck --version'] / bare:.2f}×", "≤ 3×")  # fmt: skip
    row("`gradcheck run` (built-in network)", fmt(st["gradcheck run"]),
        f"`import numpy` {fmt(numpy_)}", f"{st['gradcheck run'] / numpy_:.2f}×", "≤ 3×")  # fmt: skip
    text = "\n".join(
        [
            f"### Targets, {cpu_class()} path",
            "",
            "| measure | gradcheck | torch / baseline | ratio | target |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"Machine: {machine}. Wall-clock medians of {args.repeats} runs (medium full: one), "
            f"start-up of {args.startup_repeats}; one run of this script.",
            "",
        ]
    )
    print(text)
    cls = cpu_class()
    if args.markdown:
        write_between_markers(args.markdown, text, f"bench_targets:{cls}", "bench_targets")
    if args.readme:
        short = text.replace(f"### Targets, {cls} path", f"**{cls} path** (issue 26's targets):")
        write_between_markers(args.readme, short, f"bench_readme_targets:{cls}", "bench_readme")


if __name__ == "__main__":
    main()

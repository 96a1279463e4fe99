"""Regenerate every table of docs/benchmarks.md in one command (BLAS single-threaded):

    python benchmarks/regenerate.py [--cases ../shared/cases] [--repeats 3]

Runs bench_engine.py (gradcheck vs the plain loop and torch, ratios) and bench_estimates.py
(start-up, estimated vs measured time, budgets), each writing its tables between its markers in
docs/benchmarks.md and its short version between the README's.
Run it with torch importable for the torch columns (never a gradcheck dependency).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
README = HERE.parent / "README.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default="", help="the shared cases folder (M4, M9), if any")
    ap.add_argument("--repeats", default="3")
    args = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    engine = [sys.executable, str(HERE / "bench_engine.py"), "--repeats", args.repeats]
    subprocess.run([*engine, "--markdown", str(DOC), "--readme", str(README)], check=True, env=env)
    estimates = [sys.executable, str(HERE / "bench_estimates.py"), "--markdown", str(DOC)]
    subprocess.run(
        [*estimates, "--cases", args.cases, "--readme", str(README)], check=True, env=env
    )


if __name__ == "__main__":
    main()

"""Sweep the issue-6 layers and losses over many seeds with default settings; print pass counts,
the worst relative error and the worst error/tolerance ratio (margin), and the time per check.

    python benchmarks/layers_sweep.py [seeds]     (default 50 seeds; run from the repo root)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradcheck_cli import check_layer, check_network, make_layer
from tests.test_layers_more import (
    FLAT_CASES,
    FLAT_LOSS_CASES,
    layer_input,
    loss_network,
)


def margin(result) -> float:
    """Largest |a − n| / allowed over the kept worst entries (< 1 means pass)."""
    return max((e.abs_error / e.tol if e.tol else 0.0) for p in result.params for e in p.worst)


def main(seeds: int) -> None:
    print(f"{'case':58} {'pass':>7} {'max rel err':>12} {'max err/tol':>12} {'ms/check':>9}")
    rows = [(n, kw, s) for n, kw, s in FLAT_CASES] + [(n, kw, None) for n, kw in FLAT_LOSS_CASES]
    for name, kwargs, shape in rows:
        passed, rel, worst, t0 = 0, 0.0, 0.0, time.perf_counter()
        for seed in range(seeds):
            if shape is None:
                result = check_network(loss_network(name, kwargs, seed))
            else:
                rng = np.random.default_rng(seed)
                layer = make_layer(name, shape[1:], rng, **kwargs)
                x = layer_input(name, kwargs, shape, rng)
                result = check_layer(layer, x, seed=seed, label=name)
            passed += result.passed
            rel = max(rel, *(p.rel_error for p in result.params))
            worst = max(worst, margin(result))
        ms = 1e3 * (time.perf_counter() - t0) / seeds
        label = f"{name} {kwargs} {shape or ''}"[:58]
        print(f"{label:58} {passed:>3}/{seeds:<3} {rel:12.2e} {worst:12.2e} {ms:9.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)

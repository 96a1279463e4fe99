"""Taylor-remainder slopes for correct and deliberately wrong layers over many seeds.

    python benchmarks/taylor_slopes.py [SEEDS]

Prints, per case, the verdict counts and the range of fitted slopes over all tensors the case
touches, plus the V-curve's best error. This is the measurement behind the slope thresholds in
gradcheck_cli/sweep/vcurve.py (PASS_SLOPE, FAIL_SLOPE).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

from gradcheck_cli.engine.build import build_network
from gradcheck_cli.spec.config import parse_config
from gradcheck_cli.sweep.vcurve import sweep_network

BUGGY = Path(__file__).resolve().parent.parent / "tests" / "buggy_layers.py"
MLP = [{"type": "linear", "out": 5}, "{act}", {"type": "linear", "out": 3}]
CASES: dict[str, tuple[list, str | None, str]] = {
    # name: (layers, tensor to look at (None: all), loss)
    "relu mlp (correct)": (
        [{"type": "linear", "out": 5}, "relu", {"type": "linear", "out": 3}],
        None,
        "ce",
    ),
    "tanh mlp (correct)": (
        [{"type": "linear", "out": 5}, "tanh", {"type": "linear", "out": 3}],
        None,
        "ce",
    ),
    "sigmoid mlp, mse (correct)": (
        [{"type": "linear", "out": 4}, "sigmoid", {"type": "linear", "out": 2}],
        None,
        "mse",
    ),
    "dW x1.01": (
        [
            {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": 0.01},
            "tanh",
            {"type": "linear", "out": 3},
        ],
        "0.LinearScaled.W",
        "ce",
    ),
    "dW x1.001": (
        [
            {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": 0.001},
            "tanh",
            {"type": "linear", "out": 3},
        ],
        "0.LinearScaled.W",
        "ce",
    ),
    "dW x1.0001": (
        [
            {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": 0.0001},
            "tanh",
            {"type": "linear", "out": 3},
        ],
        "0.LinearScaled.W",
        "ce",
    ),
    "dW x1.00001": (
        [
            {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": 1e-05},
            "tanh",
            {"type": "linear", "out": 3},
        ],
        "0.LinearScaled.W",
        "ce",
    ),
    "dW x1.000001": (
        [
            {"type": f"{BUGGY}:LinearScaled", "out": 5, "rel": 1e-06},
            "tanh",
            {"type": "linear", "out": 3},
        ],
        "0.LinearScaled.W",
        "ce",
    ),
    "relu without mask": (
        [{"type": "linear", "out": 5}, f"{BUGGY}:ReLUNoMask", {"type": "linear", "out": 3}],
        "0.linear.W",
        "ce",
    ),
    "db mean not sum": (
        [{"type": f"{BUGGY}:LinearBiasMean", "out": 5}, "tanh", {"type": "linear", "out": 3}],
        "0.LinearBiasMean.b",
        "ce",
    ),
}


def config(layers: list, loss: str, seed: int) -> dict:
    cfg = {"name": "bench", "seed": seed, "input": {"shape": [4, 3]}, "layers": layers}
    if loss == "ce":
        cfg |= {"target": {"kind": "classes"}, "loss": {"type": "softmax_cross_entropy"}}
    else:
        cfg |= {"target": {"kind": "values"}, "loss": {"type": "mse"}}
    return cfg


def main(seeds: int) -> None:
    print(
        f"{'case':28} {'verdicts':34} {'slope min…max':>16}  {'V-curve best err':>18}  V-curve verdicts"
    )
    for label, (layers, tensor, loss) in CASES.items():
        verdicts: Counter[str] = Counter()
        vcurve: Counter[str] = Counter()
        slopes, best = [], []
        for seed in range(seeds):
            net = build_network(parse_config(config(layers, loss, seed)))
            res = sweep_network(net, param=tensor, taylor=True, seed=seed)
            for t in res.taylor or ():
                verdicts[t.verdict] += 1
                if not np.isnan(t.slope):
                    slopes.append(t.slope)
            best += [c.best_error for c in res.curves]
            vcurve.update(c.verdict for c in res.curves)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        vcounts = ", ".join(f"{k} {v}" for k, v in sorted(vcurve.items()))
        print(
            f"{label:28} {counts:34} {min(slopes):7.3f}…{max(slopes):<7.3f} "
            f" {min(best):.1e}…{max(best):.1e}  {vcounts}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

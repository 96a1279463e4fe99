"""False alarms of `gradcheck sweep` on correct networks: verdict counts over many seeds.

    python benchmarks/sweep_false_alarms.py [SEEDS]

Every tensor of linear → ACT → linear for 5 activations × 3 shapes × 3 losses (cross-entropy,
MSE, none: L = Σ out ⊙ g) × SEEDS seeds, V-curve and Taylor test. Prints the counts and every
verdict that is not "pass" with its reason. (12 seeds: 2700 tensors, ~3 minutes.)
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from gradcheck_cli.engine.build import build_network
from gradcheck_cli.spec.config import parse_config
from gradcheck_cli.sweep.vcurve import sweep_network

SHAPES = [([4, 3], 5, 3), ([8, 10], 16, 4), ([2, 6], 3, 2)]
ACTS = ["relu", "tanh", "sigmoid", "leaky_relu", "softmax"]


def main(seeds: int) -> None:
    taylor: Counter[str] = Counter()
    vcurve: Counter[str] = Counter()
    odd: list[tuple[Any, ...]] = []
    for seed in range(seeds):
        for inp, hidden, out in SHAPES:
            for act in ACTS:
                for loss in ("ce", "mse", None):
                    cfg: dict[str, Any] = {
                        "seed": seed,
                        "input": {"shape": inp},
                        "layers": [
                            {"type": "linear", "out": hidden},
                            act,
                            {"type": "linear", "out": out},
                        ],
                    }
                    if loss == "ce":
                        cfg |= {
                            "target": {"kind": "classes"},
                            "loss": {"type": "softmax_cross_entropy"},
                        }
                    elif loss == "mse":
                        cfg |= {"target": {"kind": "values"}, "loss": {"type": "mse"}}
                    res = sweep_network(build_network(parse_config(cfg)), taylor=True, seed=seed)
                    case = (seed, "x".join(map(str, inp)), act, loss)
                    for c in res.curves:
                        vcurve[c.verdict] += 1
                        if c.verdict != "pass":
                            odd.append(("V-curve", *case, c.name, c.reason))
                    for t in res.taylor or ():
                        taylor[t.verdict] += 1
                        if t.verdict != "pass":
                            odd.append(("Taylor", *case, t.name, f"slope {t.slope:.2f}", t.reason))
    print(f"V-curve: {dict(vcurve)}   Taylor: {dict(taylor)}")
    for row in odd:
        print(" ", *row)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)

"""Calibrate the verdict defaults: false alarms on correct networks vs the smallest bug caught.

    python benchmarks/calibrate_tolerance.py [--seeds 20] [--method central] [--dtype float32]

For every network of the corpus (tests/bug_corpus.py: ReLU, leaky-ReLU, tanh, sigmoid, softmax MLPs;
CE, MSE and Σ out⊙g losses) and every seed: (1) the correct network must pass — a failure is a false
alarm; (2) bugs of relative size r (scale, one entry, dense) in one gradient tensor (first W, last b,
an activation's dx) must fail — the table gives the fraction caught per r. Also reported: the
largest per-entry relative error |a−n|/max(|a|,|n|) seen on correct networks, and how many entries
needed a second look (Richardson / kink analysis).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradcheck_cli.checker import check_network
from tests.bug_corpus import BUG_KINDS, NETWORKS, bugged, build


def targets(net):  # (layer, key) of the tensors we corrupt
    first = next(i for i, la in enumerate(net.layers) if la.params)
    last = max(i for i, la in enumerate(net.layers) if la.params)
    act = next((i for i, la in enumerate(net.layers) if not la.params), None)
    out = [(first, "W"), (last, "b")]
    return out + ([(act, None)] if act is not None else [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--method", default="central")
    ap.add_argument("--sizes", default="1e-4,1e-5,1e-6,1e-7,1e-8")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    false_alarms, runs, refined, kinks, margin = 0, 0, 0, 0, 0.0
    caught = {r: [0, 0] for r in sizes}
    for spec in NETWORKS:
        for seed in range(args.seeds):
            for scale in (1.0, 30.0):  # O(1) inputs and large ones (saturating tanh/sigmoid)
                net = build(spec, seed, scale, args.dtype)
                res = check_network(net, method=args.method, attribute=False)
                runs += 1
                if not res.passed:
                    false_alarms += 1
                    bad = res.failures[0] if res.failures else None
                    print(
                        f"FALSE ALARM {spec[0]} seed={seed} scale={scale}: {res.problems} "
                        f"{bad.name if bad else ''} {bad.worst[:1] if bad else ''}"
                    )
                for p in res.params:
                    refined += p.refined
                    kinks += p.kinks
                    for e in p.worst:
                        if e.status == "pass" and e.tol > 0:
                            margin = max(margin, e.abs_error / e.tol)
                if scale != 1.0:
                    continue
                for layer, key in targets(net):
                    for kind in BUG_KINDS:
                        for r in sizes:
                            fresh = build(spec, seed, scale, args.dtype)
                            res = check_network(
                                bugged(fresh, layer, key, kind, r, seed),
                                method=args.method,
                                attribute=False,
                            )
                            caught[r][0] += not res.passed
                            caught[r][1] += 1
    print(
        f"dtype={args.dtype}  method={args.method}  networks={len(NETWORKS)}  seeds={args.seeds}  correct runs={runs}"
    )
    print(f"false alarms: {false_alarms} / {runs}")
    print(f"entries needing a second look: {refined} (kinks: {kinks})")
    print(f"closest a correct entry came to its tolerance (|a−n| / tol): {margin:.3f}")
    print("bug size r | caught")
    for r in sizes:
        c, n = caught[r]
        print(f"{r:9.0e} | {c}/{n} ({100 * c / n:.1f}%)")
    print(f"time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

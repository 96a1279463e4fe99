"""Stress grid for the verdict model: false alarms on correct networks and bugs caught, far from
the O(1) calibration networks, with an independent judge of which bugs are detectable at all.

    python benchmarks/stress_verdicts.py --quick          # a few minutes on 2 cores
    python benchmarks/stress_verdicts.py [--seeds 3] [--modes full,sample,directional]

Conditions (each also as a float32 twin): fan-in 256 / 1024 / 4096; a 20-layer tanh stack;
input scales 1e-4 … 1e4; losses at 0 (perfect-fit MSE, confident softmax CE); near-constant
inputs to batchnorm and layernorm; a bias before batchnorm (also with --strict); batch 1024;
conv2d with 64 channels; a residual block; plugin copies of linear/tanh written differently
(einsum, a different tanh formula); a steep plugin gate tanh(k·x), k = 1e4 … 1e10, with
pre-activations ~ 1/k; one raw input feature of 1e3 … 1e9 (its weights ~ 1/size). Bugs of
relative size r (scale g·(1+r), one entry
+ r·‖g‖, dense r·‖g‖) in the first W, the last b and the first activation's dx.

Detectability (independent of gradcheck's verdict): the correct network's analytic gradient g
(built-in layers, themselves verified) against the best central difference over steps
1e-1 … 1e-8 (float64 numerics; for a float32 network its float64 twin): a bug is *detectable*
when, at the entry of some affected tensor where the bug is largest, some step (1e-1 … 1e-14)
resolves g to better than half the bug there. A correct run is a *false alarm* when it does not pass or any
tensor has a "fail" verdict; "inconclusive" runs are counted separately (never a pass).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradcheck_cli import make_layer
from gradcheck_cli.checker import check_network
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy, WeightedSum
from tests.bug_corpus import BUG_KINDS, Bugged


class EinsumLinear:
    """A plugin copy of linear written differently (einsum, b added first)."""

    row_independent = True

    def __init__(self, d: int, out: int, rng: Any, dtype: str) -> None:
        w = rng.standard_normal((d, out)) / np.sqrt(d)
        self.params = {"W": w.astype(dtype), "b": (0.1 * rng.standard_normal(out)).astype(dtype)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.params["b"] + np.einsum("ni,io->no", x, self.params["W"])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": np.einsum("ni,no->io", self.x, dout), "b": np.einsum("no->o", dout)}
        return np.einsum("no,io->ni", dout, self.params["W"])


class ExpTanh:
    """A plugin copy of tanh: (1 − e^{−2x}) / (1 + e^{−2x}) on |x|, backward from the output."""

    row_independent = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(-2 * np.abs(x))
        self.y = np.sign(x) * (1 - e) / (1 + e)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 - self.y * self.y)


class SteepGate:
    """A plugin smooth gate tanh(k·x) (a temperature 1/k, an unnormalised feature): it bends
    on a scale of 1/k, whatever the size of x; backward from the output."""

    row_independent = True

    def __init__(self, k: float) -> None:
        self.k = k
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(self.k * x)
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.k * (1 - self.y * self.y)


@dataclass(frozen=True)
class Cond:
    name: str
    layers: tuple[tuple[str, dict[str, Any]], ...]
    loss: str  # ce | mse | sum | fit (mse at a perfect fit) | confident (ce, argmax targets)
    shape: tuple[int, ...] = (4, 6)
    scale: float = 1.0
    near_const: bool = False  # x = 1 + 1e-2·noise
    strict: bool = False
    quick: bool = True
    gate: float = 0.0  # steep gate k: x and the first bias scaled by 1/k (pre-activations ~ 1/k)
    raw: float = 0.0  # one raw feature: input column 0 × raw, the first W's row 0 × 1/raw


MLP = (("linear", {"out": 6}), ("tanh", {}), ("linear", {"out": 3}))
CONDITIONS = [
    *(Cond(f"fan-in {d}", (("linear", {"out": 4}), ("tanh", {}), ("linear", {"out": 3})), "ce",
           (3, d), quick=d == 256) for d in (256, 1024, 4096)),
    Cond("tanh stack ×20", (*[("linear", {"out": 6}), ("tanh", {})] * 20, ("linear", {"out": 2})),
         "mse", (3, 6)),
    *(Cond(f"input scale {s:g}", MLP, "ce", scale=s) for s in (1e-4, 1e-2, 1.0, 1e2, 1e4)),
    Cond("perfect-fit MSE", MLP, "fit"),
    Cond("confident CE", (("linear", {"out": 5}),), "confident", scale=60.0),
    Cond("batchnorm, near-constant x", (("linear", {"out": 5}), ("batchnorm", {}), ("tanh", {}),
         ("linear", {"out": 3})), "ce", near_const=True),
    Cond("layernorm, near-constant x", (("linear", {"out": 5}), ("layernorm", {}), ("tanh", {}),
         ("linear", {"out": 3})), "ce", near_const=True),
    *(Cond(f"bias before batchnorm{' --strict' if st else ''}", (("linear", {"out": 5}),
           ("batchnorm", {}), ("relu", {}), ("linear", {"out": 3})), "ce", strict=st) for st in (False, True)),
    Cond("batch 1024", (("linear", {"out": 4}), ("relu", {}), ("linear", {"out": 3})), "ce", (1024, 6),
         quick=False),
    Cond("conv2d 64 channels", (("conv2d", {"out_channels": 64, "kernel": 3}), ("relu", {}),
         ("flatten", {}), ("linear", {"out": 3})), "ce", (2, 3, 5, 5), quick=False),
    Cond("residual block", (("linear", {"out": 6}), ("residual", {"layers": [{"type": "linear", "out": 6},
         "tanh"]}), ("linear", {"out": 2})), "mse"),
    Cond("plugin copies", (("einsum", {"out": 6}), ("exptanh", {}), ("einsum", {"out": 3})), "mse"),
    *(Cond(f"steep gate k={k:g}", (("linear", {"out": 6}), ("steepgate", {"k": k}),
           ("linear", {"out": 3})), "ce", gate=k, quick=k in (1e8, 1e10)) for k in (1e4, 1e6, 1e8, 1e10)),
    *(Cond(f"raw feature {r:g}", MLP, "ce", raw=r, quick=r == 1e9) for r in (1e3, 1e6, 1e9)),
]  # fmt: skip


def build(cond: Cond, seed: int, dtype: str) -> Network:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cond.shape)
    x = 1.0 + 1e-2 * x if cond.near_const else cond.scale * x
    if cond.gate:
        x = x / cond.gate
    if cond.raw:
        x[:, 0] = cond.raw * (1.0 + 0.1 * x[:, 0])  # a raw column (a timestamp, a price)
    x = x.astype(dtype)
    layers, labels, shape, out = [], [], cond.shape[1:], x
    for t, kw in cond.layers:
        if t == "einsum":
            layer: Any = EinsumLinear(shape[0], kw["out"], rng, dtype)
        elif t == "exptanh":
            layer = ExpTanh()
        elif t == "steepgate":
            layer = SteepGate(kw["k"])
        else:
            layer = make_layer(t, shape, rng, dtype=dtype, **kw)
            if not layers and cond.gate and "b" in layer.params:
                layer.params["b"] = (layer.params["b"] / cond.gate).astype(dtype)
            if not layers and cond.raw and "W" in layer.params:
                layer.params["W"][0] = (layer.params["W"][0] / cond.raw).astype(dtype)
        out = layer.forward(out)
        shape = out.shape[1:]
        layers.append(layer)
        labels.append(t)
    n = cond.shape[0]
    loss: Any
    target = None
    if cond.loss in ("ce", "confident"):
        loss = SoftmaxCrossEntropy()
        target = rng.integers(0, out.shape[1], size=n) if cond.loss == "ce" else np.argmax(out, axis=1)
    elif cond.loss in ("mse", "fit"):
        loss = MSE()
        target = out.copy() if cond.loss == "fit" else rng.standard_normal(out.shape).astype(dtype)
    else:
        loss = WeightedSum(rng.standard_normal(out.shape).astype(dtype))
    trusted = [t not in ("einsum", "exptanh", "steepgate") for t, _ in cond.layers]
    return Network(layers, loss, labels=labels, x=x, target=target, trusted=trusted, name=cond.name)


def targets(net: Network) -> list[tuple[int, str | None]]:
    first = next(i for i, la in enumerate(net.layers) if la.params)
    last = max(i for i, la in enumerate(net.layers) if la.params)
    act = next((i for i, la in enumerate(net.layers) if not la.params and i > first), None)
    out: list[tuple[int, str | None]] = [(first, "W" if "W" in net.layers[first].params else None)]
    if "b" in net.layers[last].params:
        out.append((last, "b"))
    return out + ([(act, None)] if act is not None else [])


def bug(net: Network, layer: int, kind: str, r: float, key: str | None, seed: int) -> Network:
    """``net`` with a bug of relative size r in layer ``layer``'s grads[key] (dx when None)."""
    inner = net.layers[layer]
    wrapped = Bugged(inner, kind, r, key, seed)
    # the forward is the inner layer's: it stays row-independent if that one is
    wrapped.row_independent = getattr(inner, "row_independent", False) is True  # type: ignore[attr-defined]
    net.layers[layer] = wrapped
    return net


def gradients(net: Network) -> dict[str, np.ndarray]:
    assert net.x is not None
    net.loss_value(net.x.copy())
    dx, grads = net.backward()
    out = {"input": np.asarray(dx, dtype=np.float64)}
    for ref in net.parameters():
        g = grads[ref.layer]
        if isinstance(g, dict) and ref.key in g:
            out[ref.name] = np.asarray(g[ref.key], dtype=np.float64)
    return out


#: The independent judge's steps (× max(1, |θ|)): down to 1e-14, so that a steep gate's
#: bend (1/k down to 1e-10) is inside the range.
STEPS = 10.0 ** -np.arange(1, 15)


def detectable(cond: Cond, seed: int, good: dict[str, np.ndarray], bad: dict[str, np.ndarray]) -> bool:
    """Some affected tensor's largest bug entry is resolved (best central difference over
    1e-1 … 1e-8 on the float64 network vs the correct float64 gradient) to better than half
    the bug there — and, for a float32 network, the bug there is larger than the float32
    gradient's own rounding (its difference to the float64 gradient)."""
    net = build(cond, seed, "float64")
    ref64 = gradients(net)
    refs = {r.name: r for r in net.parameters(include_input=True)}
    for name, g in good.items():
        delta = bad.get(name, g) - g
        if name not in refs or not np.any(delta):
            continue
        j = int(np.argmax(np.abs(delta)))
        if abs(delta.flat[j]) <= abs(g.flat[j] - ref64[name].flat[j]):
            continue  # smaller than the rounding of the (float32) gradient itself
        ref = refs[name]
        arr = net.x if ref.key is None else net.layers[ref.layer].params[ref.key]
        assert arr is not None
        theta = float(arr.flat[j])
        best = np.inf
        for h in STEPS * max(1.0, abs(theta)):
            vals = []
            for s in (h, -h):
                arr.flat[j] = theta + s
                vals.append(float(net.loss_value(net.x if ref.key is not None else arr)))
            arr.flat[j] = theta
            if np.all(np.isfinite(vals)):
                best = min(best, abs((vals[0] - vals[1]) / (2 * h) - ref64[name].flat[j]))
        if best < abs(delta.flat[j]) / 2:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="quick conditions, 1 seed, r = 1e-4, 1e-6")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sizes", default="1e-3,1e-4,1e-5,1e-6,1e-7")
    ap.add_argument("--modes", default="full")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--only", default="", help="conditions whose name contains one of these (a,b)")
    args = ap.parse_args()
    conds = [c for c in CONDITIONS if c.quick or not args.quick]
    if args.only:
        conds = [c for c in conds if any(w in c.name for w in args.only.split(","))]
    seeds = 1 if args.quick else args.seeds
    sizes = [1e-4, 1e-6] if args.quick else [float(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    t0 = time.perf_counter()
    correct: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # runs, false, inconcl., zero
    caught: dict[tuple[str, str, float], list[int]] = defaultdict(lambda: [0, 0, 0])
    # per (dtype, condition): correct runs, false alarms, inconclusive, detectable bugs, caught
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for dtype in args.dtypes.split(","):
        for cond in conds:
            for seed in range(seeds):
                net = build(cond, seed, dtype)
                res = check_network(net, attribute=False, strict=cond.strict, mode="full")
                c = correct[dtype]
                pc = per[dtype, cond.name]
                c[0] += 1
                pc[0] += 1
                verdicts = [p.verdict for p in res.params]
                pc[2] += "inconclusive" in verdicts
                if not res.passed or "fail" in verdicts:
                    c[1] += 1
                    pc[1] += 1
                    bad = [(p.name, p.verdict, p.note) for p in res.params if p.verdict == "fail"]
                    print(f"FALSE ALARM {dtype} {cond.name} seed {seed}: {res.problems} {bad[:2]}")
                c[2] += "inconclusive" in verdicts
                c[3] += "zero" in verdicts
                print(f"  {dtype} {cond.name} seed {seed} ({time.perf_counter() - t0:.0f} s)", flush=True)
                if cond.strict:
                    continue
                good = gradients(build(cond, seed, dtype))
                for layer, key in targets(net):
                    for kind in BUG_KINDS:
                        for r in sizes:
                            fresh = bug(build(cond, seed, dtype), layer, kind, r, key, seed)
                            wrong = gradients(fresh)
                            if not detectable(cond, seed, good, wrong):
                                continue
                            # only the tensors the bug changes can catch it (the others are
                            # measured by the correct runs above)
                            hit = [k for k, g in good.items() if np.any(wrong.get(k, g) != g)]
                            for mode in modes:
                                fresh = bug(build(cond, seed, dtype), layer, kind, r, key, seed)
                                out = check_network(fresh, attribute=False, mode=mode, include=hit)
                                k = caught[dtype, mode, r]
                                k[0] += 1
                                k[1] += not out.passed
                                if mode == modes[0]:
                                    pc[3] += 1
                                    pc[4] += not out.passed
                                if out.passed and mode == "full":
                                    k[2] += 1
                                    print(
                                        f"MISSED {dtype} {cond.name} seed {seed} layer {layer} "
                                        f"{key or 'dx'} {kind} r={r:g}: "
                                        f"{[(p.name, p.verdict) for p in out.params]}"
                                    )
        print(f"... {dtype} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\nconditions: {len(conds)} × seeds {seeds}; modes {modes}")
    print("| dtype | correct runs | false alarms | with an inconclusive tensor | with a zero tensor |")
    print("|---|---:|---:|---:|---:|")
    for dtype, (n, f, i, z) in correct.items():
        print(f"| {dtype} | {n} | {f} | {i} | {z} |")
    print("\n| dtype | mode | " + " | ".join(f"r = {r:g}" for r in sizes) + " |")
    print("|---|---|" + "---:|" * len(sizes))
    for dtype in args.dtypes.split(","):
        for mode in modes:
            cells = []
            for r in sizes:
                n, c, _ = caught[dtype, mode, r]
                cells.append(f"{c}/{n}" if n else "—")
            print(f"| {dtype} | {mode} | " + " | ".join(cells) + " |")
    print("(caught / detectable bugs)")
    print("\n| dtype | condition | correct runs | false alarms | inconclusive | bugs caught |")
    print("|---|---|---:|---:|---:|---:|")
    for (dtype, name), (n, f, i, d, k2) in per.items():
        print(f"| {dtype} | {name} | {n} | {f} | {i} | {k2}/{d} |")
    print(f"time: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

"""gradcheck full / sample / directional vs a plain NumPy loop and torch.autograd.gradcheck.

Run (one run, same machine, everything single-threaded for a fair comparison):

    python benchmarks/bench_engine.py --repeats 5 --markdown docs/benchmarks.md

Networks (float64, softmax cross-entropy over random class labels), as in issue 4:
  tiny   4→Linear(5)→ReLU→Linear(3), batch 2
  small  64→Linear(128)→ReLU→Linear(10), batch 32
  medium 256→Linear(512)→ReLU→Linear(512)→Tanh→Linear(10), batch 64
  deep   32→8×[Linear(32)→Tanh]→Linear(10), batch 16
All checkers check the parameters (not the input), ε = 1e-5 for gradcheck and the loop, torch's
default ε = 1e-6. Times are medians of --repeats runs (fewer for runs over 20 s; gradcheck full on
a network over 100k parameters is one run); "(est.)" marks times extrapolated from a timed
sample of entries (per-entry cost × number of entries): the plain loop and torch's slow mode on
`medium`, which would take about 15 minutes each.
Peak memory: tracemalloc peak of a separate, untimed run of the same check.
torch is optional (measured only when importable); it is never a dependency of gradcheck.
"""

from __future__ import annotations

import argparse
import os
import sys

# must happen before NumPy loads BLAS
_n = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _n)

import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from machine import cpu_class, describe  # noqa: E402

from gradcheck_cli import make_layer  # noqa: E402
from gradcheck_cli.checker import check_network  # noqa: E402
from gradcheck_cli.engine.methods import estimate  # noqa: E402
from gradcheck_cli.engine.network import Network  # noqa: E402
from gradcheck_cli.engine.numeric import CHUNK_BYTES, Perturber  # noqa: E402
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional
    torch = None

EPS = 1e-5
Spec = list[tuple[str, int]]
NETS: dict[str, tuple[int, int, Spec]] = {
    # name: (input width, batch, layers)
    "tiny": (4, 2, [("linear", 5), ("relu", 0), ("linear", 3)]),
    "small": (64, 32, [("linear", 128), ("relu", 0), ("linear", 10)]),
    "medium": (
        256,
        64,
        [("linear", 512), ("relu", 0), ("linear", 512), ("tanh", 0), ("linear", 10)],
    ),
    "deep": (32, 16, [*[("linear", 32), ("tanh", 0)] * 8, ("linear", 10)]),
}


def build(name: str, seed: int = 0) -> Network:
    din, batch, spec = NETS[name]
    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    d = din
    for kind, width in spec:
        if kind == "linear":
            layers.append(make_layer("linear", (d,), rng, out=width))
            d = width
        else:
            layers.append(make_layer(kind, (d,)))
    x = rng.standard_normal((batch, din))
    y = rng.integers(0, d, size=batch)
    return Network(
        layers, SoftmaxCrossEntropy(), x=x, target=y, trusted=[True] * len(layers), name=name
    )


def n_params(net: Network) -> int:
    return sum(a.size for la in net.layers for a in la.params.values())


# -- the plain loop (CS231n style): own NumPy forward, one entry at a time, full forward each ------
def plain_loss_fn(net: Network) -> tuple[Callable[[], float], list[np.ndarray]]:
    """A from-scratch NumPy forward over the same arrays (no gradcheck code on the hot path)."""
    x, y = net.x, net.target
    assert x is not None and y is not None
    steps: list[tuple[str, Any]] = []
    arrays: list[np.ndarray] = []
    for la in net.layers:
        kind = type(la).__name__.lower()
        if kind == "linear":
            steps.append(("linear", (la.params["W"], la.params["b"])))
            arrays += [la.params["W"], la.params["b"]]
        else:
            steps.append((kind, None))

    def f() -> float:
        h = x
        for kind, p in steps:
            if kind == "linear":
                h = h @ p[0] + p[1]
            elif kind == "relu":
                h = np.maximum(h, 0)
            else:
                h = np.tanh(h)
        z = h - h.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    return f, arrays


def plain_numeric(f: Callable[[], float], arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.empty(len(idx))
    flat = arr.reshape(-1)
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * EPS)
    return out


def plain_loop(net: Network, limit: int | None = None) -> tuple[float, bool, list[np.ndarray]]:
    """Time the loop over every parameter entry; with ``limit``, over ``limit`` entries spread
    across the tensors, extrapolated (returns estimated=True)."""
    f, arrays = plain_loss_fn(net)
    total = sum(a.size for a in arrays)
    if limit is None or total <= limit:
        t0 = time.perf_counter()
        grads = [plain_numeric(f, a, np.arange(a.size)) for a in arrays]
        return time.perf_counter() - t0, False, grads
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for a in arrays:
        k = max(2, round(limit * a.size / total))
        plain_numeric(f, a, rng.choice(a.size, size=min(k, a.size), replace=False))
    spent = time.perf_counter() - t0
    counted = sum(min(max(2, round(limit * a.size / total)), a.size) for a in arrays)
    return spent * total / counted, True, []


# -- torch ----------------------------------------------------------------------------------------
def torch_fn(net: Network) -> tuple[Callable[..., Any], list[Any]]:
    assert torch is not None and net.x is not None and net.target is not None
    x = torch.tensor(net.x, dtype=torch.float64)
    y = torch.tensor(net.target, dtype=torch.long)
    kinds = [type(la).__name__.lower() for la in net.layers]
    params = [
        torch.tensor(la.params[k], dtype=torch.float64, requires_grad=True)
        for la in net.layers
        for k in ("W", "b")
        if k in la.params
    ]

    def fn(*ps: Any) -> Any:
        h, j = x, 0
        for kind in kinds:
            if kind == "linear":
                h = h @ ps[j] + ps[j + 1]
                j += 2
            elif kind == "relu":
                h = torch.relu(h)
            else:
                h = torch.tanh(h)
        return torch.nn.functional.cross_entropy(h, y)

    return fn, params


def torch_check(net: Network, fast: bool) -> float:
    assert torch is not None
    fn, params = torch_fn(net)
    t0 = time.perf_counter()
    ok = torch.autograd.gradcheck(fn, tuple(params), fast_mode=fast, atol=1e-5, rtol=1e-3)
    spent = time.perf_counter() - t0
    assert ok
    return spent


def torch_slow_estimate(net: Network) -> float:
    """Slow mode perturbs every entry with a full forward each: time it on the biases only and
    scale by the number of entries (same forward, so the same cost per entry)."""
    assert torch is not None
    fn, params = torch_fn(net)
    biases = [i for i, p in enumerate(params) if p.dim() == 1]
    fixed = [p.detach() for p in params]

    def fb(*bs: Any) -> Any:
        ps = list(fixed)
        for i, b in zip(biases, bs, strict=True):
            ps[i] = b
        return fn(*ps)

    chosen = tuple(params[i] for i in biases)
    t0 = time.perf_counter()
    torch.autograd.gradcheck(fb, chosen, fast_mode=False, atol=1e-5, rtol=1e-3)
    spent = time.perf_counter() - t0
    return spent * sum(p.numel() for p in params) / sum(p.numel() for p in chosen)


# -- gradcheck ------------------------------------------------------------------------------------
def gc_run(net: Network, mode: str, **kw: Any) -> Any:
    result = check_network(net, inputs=False, mode=mode, eps=EPS, **kw)
    assert result.passed, [(p.name, p.mode, p.rel_error) for p in result.failures]
    return result


def peak_mb(job: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        job()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def median_time(job: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        job()
        times.append(time.perf_counter() - t0)
        if times[-1] > 20:
            break
    return statistics.median(times)


@dataclass
class Row:
    net: str
    params: int
    cells: dict[str, tuple[float, bool]] = field(default_factory=dict)  # seconds, estimated
    memory: dict[str, float] = field(default_factory=dict)
    agree: str = "—"


def numbers_agree(net: Network) -> str:
    """Max |gradcheck numeric − loop numeric| over all entries, in units of the round-off bound
    u·(|f₊| + |f₋|)/2ε of one central difference."""
    _, _, loop = plain_loop(net)
    pert = Perturber(net, np.array(net.x))
    worst_abs, worst_units = 0.0, 0.0
    for ref, ref_loop in zip(net.parameters(include_input=False), loop, strict=True):
        d = estimate(pert, ref, np.arange(pert.array(ref).size), "central", EPS, "float64")
        bound = d.roundoff  # u·(|f₊| + |f₋|)/2ε
        diff = np.abs(d.numeric - ref_loop)
        worst_abs = max(worst_abs, float(diff.max()))
        worst_units = max(worst_units, float((diff / bound).max()))
    return f"{worst_abs:.1e} ({worst_units:.1f}× round-off)"


def run(names: list[str], repeats: int, probes: int, samples: int) -> list[Row]:
    rows = []
    for name in names:
        net = build(name)
        row = Row(name, n_params(net))
        big = row.params > 100_000
        print(f"[{name}] P={row.params}", file=sys.stderr)
        if big:  # measured end to end, once (~13 s); the peak memory run would double it
            row.cells["full"] = (median_time(lambda n=net: gc_run(n, "full"), 1), False)
        else:
            row.cells["full"] = (median_time(lambda n=net: gc_run(n, "full"), repeats), False)
            row.memory["full"] = peak_mb(lambda n=net: gc_run(n, "full"))
        row.cells["sample"] = (
            median_time(lambda n=net: gc_run(n, "sample", samples=samples), repeats),
            False,
        )
        row.cells["directional"] = (
            median_time(lambda n=net: gc_run(n, "directional", probes=probes), repeats),
            False,
        )
        row.memory["directional"] = peak_mb(lambda n=net: gc_run(n, "directional", probes=probes))
        if big:
            row.cells["loop"] = (plain_loop(net, limit=2000)[0], True)
        else:
            times = [plain_loop(net)[0] for _ in range(min(repeats, 3))]
            row.cells["loop"] = (statistics.median(times), False)
            row.agree = numbers_agree(net)
        if torch is not None:
            if big:
                row.cells["torch slow"] = (torch_slow_estimate(net), True)
            else:
                ts = [torch_check(net, fast=False) for _ in range(min(repeats, 3))]
                row.cells["torch slow"] = (statistics.median(ts), False)
            row.cells["torch fast"] = (
                median_time(lambda n=net: torch_check(n, fast=True), repeats),
                False,
            )
        print(f"  {row.cells}", file=sys.stderr)
        rows.append(row)
    return rows


def scaling(repeats: int) -> list[tuple[int, float, float]]:
    """Time vs P: 64→Linear(w)→Tanh→Linear(10), batch 32, for growing w (tanh: no ReLU kinks,
    whose verdicts are not what this measures)."""
    out = []
    for w in (16, 32, 64, 128, 256, 512):
        NETS[f"w{w}"] = (64, 32, [("linear", w), ("tanh", 0), ("linear", 10)])
        net = build(f"w{w}")
        full = median_time(lambda n=net: gc_run(n, "full"), repeats)
        direc = median_time(lambda n=net: gc_run(n, "directional", probes=1), repeats)
        out.append((n_params(net), full, direc))
    return out


def fmt_time(seconds: float, est: bool) -> str:
    text = f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    if seconds >= 100:
        text = f"{seconds:,.0f} s"
    return f"~{text} (est.)" if est else text


def markdown(
    rows: list[Row], scale: list[tuple[int, float, float]], args: argparse.Namespace
) -> str:
    cols = ["full", "sample", "directional", "loop", "torch slow", "torch fast"]
    head = {
        "full": "gradcheck full",
        "sample": f"gradcheck sample (K={args.samples})",
        "directional": f"gradcheck directional ({args.probes} probe/tensor)",
        "loop": "plain NumPy loop",
        "torch slow": "torch gradcheck slow",
        "torch fast": "torch gradcheck fast",
    }
    present = [c for c in cols if any(c in r.cells for r in rows)]
    lines = [
        "| network | P | " + " | ".join(head[c] for c in present) + " |",
        "|---|---:|" + "---:|" * len(present),
    ]
    for r in rows:
        cells = [fmt_time(*r.cells[c]) if c in r.cells else "—" for c in present]
        lines.append(f"| {r.net} | {r.params:,} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios (how many times faster gradcheck is):", ""]
    lines += [
        "| network | full vs loop | full vs torch slow | directional vs torch fast "
        "| full: max abs diff from the loop's numbers | peak memory full / directional |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:

        def ratio(a: str, b: str, row: Row = r) -> str:
            if a not in row.cells or b not in row.cells:
                return "—"
            (ta, ea), (tb, eb) = row.cells[a], row.cells[b]
            return f"{tb / ta:.1f}×" + (" (est.)" if ea or eb else "")

        mem = " / ".join(
            f"{r.memory[m]:.1f} MB" if m in r.memory else "—" for m in ("full", "directional")
        )
        lines.append(
            f"| {r.net} | {ratio('full', 'loop')} | {ratio('full', 'torch slow')} | "
            f"{ratio('directional', 'torch fast')} | {r.agree} | {mem} |"
        )
    lines += ["", "Time vs number of parameters (64→Linear(w)→Tanh→Linear(10), batch 32):", ""]
    lines += [
        "| P | full | full per entry | directional (1 probe/tensor) | directional evaluations |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p, full, direc in scale:
        lines.append(
            f"| {p:,} | {fmt_time(full, False)} | {full / p * 1e6:.1f} µs | "
            f"{fmt_time(direc, False)} | 8 |"
        )
    env = describe(torch) + (
        f"; BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}"
        f", chunk budget {CHUNK_BYTES // 2**20} MB"
    )
    title = f"### {cpu_class()} path\n\n"
    return title + "\n".join(lines) + f"\n\nMachine: {env}. Medians of {args.repeats} runs.\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nets", default="tiny,small,deep,medium")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--probes", type=int, default=1)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--threads", default="1", help="BLAS/torch threads (default 1)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--markdown", help="write the tables to this file (between markers)")
    ap.add_argument("--readme", help="write the short table to this file (between markers)")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(int(args.threads))
    rows = run(args.nets.split(","), args.repeats, args.probes, args.samples)
    scale = [] if args.no_scaling else scaling(args.repeats)
    text = markdown(rows, scale, args)
    print(text)
    # one table per CPU class measured (AVX-512, AVX2, …), each between its own markers
    cls = cpu_class()
    if args.markdown:
        write_between_markers(args.markdown, text, f"bench_engine:{cls}", inside="bench_engine")
    if args.readme:
        short = f"{cls} path ({describe(torch)}):\n\n" + readme_table(rows)
        write_between_markers(args.readme, short, f"bench_readme:{cls}", inside="bench_readme")


def readme_table(rows: list[Row]) -> str:
    """The README's short version: times and the two ratios the targets are stated in."""
    cols = ["full", "loop", "torch slow", "directional", "torch fast"]
    lines = [
        "| network | P | gradcheck full | plain NumPy loop | torch gradcheck slow | full vs torch "
        "slow | gradcheck directional | torch gradcheck fast | directional vs torch fast |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not all(c in r.cells for c in cols):
            continue
        t = {c: fmt_time(*r.cells[c]) for c in cols}
        slow = r.cells["torch slow"][0] / r.cells["full"][0]
        fast = r.cells["torch fast"][0] / r.cells["directional"][0]
        lines.append(
            f"| {r.net} | {r.params:,} | {t['full']} | {t['loop']} | {t['torch slow']} | "
            f"{slow:.1f}× | {t['directional']} | {t['torch fast']} | {fast:.1f}× |"
        )
    agree = [r.agree for r in rows if r.agree != "—"]
    if agree:
        worst = max(agree, key=lambda a: float(a.split()[0]))
        lines += [
            "",
            f"Full mode's numbers equal the plain loop's to round-off (largest difference {worst}).",
        ]
    return "\n".join(lines) + "\n"


def write_between_markers(path: str, text: str, name: str, inside: str | None = None) -> None:
    """Replace what stands between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``
    (the markers are added when missing: just before ``<!-- inside:end -->`` when that stands
    in the file, else at the end)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    try:
        with open(path, encoding="utf-8") as fh:
            doc = fh.read()
    except FileNotFoundError:
        doc = f"# Benchmarks\n\n{begin}\n{end}\n"
    outer_end = f"<!-- {inside}:end -->"
    if begin not in doc and inside is not None and outer_end in doc:
        head, tail = doc.split(outer_end, 1)
        doc = f"{head}{begin}\n{end}\n{outer_end}{tail}"
    elif begin not in doc:
        doc += f"\n{begin}\n{end}\n"
    before, rest = doc.split(begin, 1)
    after = rest.split(end, 1)[1]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{before}{begin}\n{text}{end}{after}")


if __name__ == "__main__":
    main()

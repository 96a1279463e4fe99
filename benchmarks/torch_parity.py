"""The sequence built-ins against their PyTorch equivalents, in float64.

    /work/venv-torch/bin/python benchmarks/torch_parity.py [SEEDS]

(torch is never a dependency of gradcheck: run this in a separate environment that has torch
and gradcheck installed.) For every layer and option set and every seed, the same weights go
into gradcheck's layer and the torch function; both are run forward, then backward from
L = Σ out ⊙ g (g random). Prints the largest absolute difference of the output and of every
gradient (input and parameters) over all seeds, and exits 1 if any exceeds 1e-10.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gradcheck_cli import make_layer
from gradcheck_cli.layers.seq_losses import SequenceCrossEntropy

LIMIT = 1e-10
N, T, D, H = 3, 5, 4, 6

Run = Callable[[Any, np.ndarray], tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]


def t64(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


def _recurrent(kind: str, **opts: Any) -> Run:
    """torch.nn.RNN/LSTM/GRU(batch_first=True) with weight_ih = Wxᵀ, weight_hh = Whᵀ; rnn and
    lstm: bias_ih = b, bias_hh = 0; gru: bias_ih = bx, bias_hh = bh; h0 (c0) = the learned row
    expanded over the batch, or zeros."""

    def run(layer: Any, x: np.ndarray) -> Any:
        p = layer.params
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        mod = cls(x.shape[2], layer.hidden, batch_first=True, dtype=torch.float64, **opts)
        with torch.no_grad():
            mod.weight_ih_l0.copy_(torch.tensor(p["Wx"].T))
            mod.weight_hh_l0.copy_(torch.tensor(p["Wh"].T))
            mod.bias_ih_l0.copy_(torch.tensor(p["bx"] if kind == "gru" else p["b"]))
            mod.bias_hh_l0.copy_(torch.tensor(p["bh"]) if kind == "gru" else 0 * mod.bias_hh_l0)
        xt = t64(x)
        states = {k: t64(p[k]) for k in layer.states if k in p}
        init = [states[k].expand(1, x.shape[0], -1) for k in layer.states if k in states]
        hx: Any = None
        if init:
            hx = tuple(init) if kind == "lstm" else init[0]
        out, _ = mod(xt, hx)

        def grads() -> dict[str, torch.Tensor]:
            g = {"Wx": mod.weight_ih_l0.grad.T, "Wh": mod.weight_hh_l0.grad.T}
            if kind == "gru":
                g |= {"bx": mod.bias_ih_l0.grad, "bh": mod.bias_hh_l0.grad}
            else:
                g["b"] = mod.bias_ih_l0.grad
            return g | {k: v.grad for k, v in states.items()}

        return xt, out, grads  # type: ignore[return-value]

    return run


def _attention(layer: Any, x: np.ndarray) -> Any:
    """torch.nn.MultiheadAttention(D, heads, bias=True, batch_first=True, dropout=0) on (x, x, x),
    in_proj = [Wq | Wk | Wv]ᵀ, out_proj = Woᵀ; causal: attn_mask = triu(ones(T, T), 1) as bool."""
    p, d = layer.params, x.shape[2]
    mod = torch.nn.MultiheadAttention(d, layer.heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mod.in_proj_weight.copy_(torch.tensor(np.concatenate([p["Wq"].T, p["Wk"].T, p["Wv"].T])))
        mod.in_proj_bias.copy_(torch.tensor(np.concatenate([p["bq"], p["bk"], p["bv"]])))
        mod.out_proj.weight.copy_(torch.tensor(p["Wo"].T))
        mod.out_proj.bias.copy_(torch.tensor(p["bo"]))
    xt = t64(x)
    t = x.shape[1]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if layer.causal else None
    out, _ = mod(xt, xt, xt, attn_mask=mask, need_weights=False)

    def grads() -> dict[str, torch.Tensor]:
        w, b = mod.in_proj_weight.grad, mod.in_proj_bias.grad
        g = {f"W{s}": w[i * d : (i + 1) * d].T for i, s in enumerate("qkv")}
        g |= {f"b{s}": b[i * d : (i + 1) * d] for i, s in enumerate("qkv")}
        return g | {"Wo": mod.out_proj.weight.grad.T, "bo": mod.out_proj.bias.grad}

    return xt, out, grads


def _functional(fn: Callable[..., torch.Tensor], names: tuple[str, ...]) -> Run:
    """A torch.nn.functional call fn(x, *params) with gradcheck's parameter arrays."""

    def run(layer: Any, x: np.ndarray) -> Any:
        xt = t64(x)
        ps = {k: t64(layer.params[k]) for k in names}
        out = fn(layer, xt, *ps.values())
        return xt, out, lambda: {k: v.grad for k, v in ps.items()}

    return run


# (label, layer name, layer args, input shape, torch side)
CASES: list[tuple[str, str, dict[str, Any], tuple[int, ...], Run]] = [
    ("rnn tanh", "rnn", {"hidden": H}, (N, T, D), _recurrent("rnn")),
    (
        "rnn relu, learned h0",
        "rnn",
        {"hidden": H, "nonlinearity": "relu", "learn_h0": True},
        (N, T, D),
        _recurrent("rnn", nonlinearity="relu"),
    ),
    ("lstm", "lstm", {"hidden": H}, (N, T, D), _recurrent("lstm")),
    ("lstm, learned h0 c0", "lstm", {"hidden": H, "learn_h0": True}, (N, T, D), _recurrent("lstm")),
    ("gru", "gru", {"hidden": H}, (N, T, D), _recurrent("gru")),
    ("gru, learned h0", "gru", {"hidden": H, "learn_h0": True}, (N, T, D), _recurrent("gru")),
    ("attention 2 heads", "attention", {"heads": 2}, (N, T, D), _attention),
    ("attention causal", "attention", {"heads": 2, "causal": True}, (N, T, D), _attention),
    (
        "conv1d s2 p1 d2",
        "conv1d",
        {"out_channels": 3, "kernel": 3, "stride": 2, "padding": 1, "dilation": 2},
        (N, 2, 11),
        _functional(
            lambda la, x, W, b: F.conv1d(x, W, b, la.stride, la.padding, la.dilation), ("W", "b")
        ),
    ),
    (
        "conv1d k1",
        "conv1d",
        {"out_channels": 2, "kernel": 1},
        (N, 3, 4),
        _functional(lambda la, x, W, b: F.conv1d(x, W, b), ("W", "b")),
    ),
    (
        "groupnorm (N,C,L)",
        "groupnorm",
        {"groups": 2},
        (N, 4, 5),
        _functional(
            lambda la, x, g, b: F.group_norm(x, la.groups, g, b, la.eps), ("gamma", "beta")
        ),
    ),
    (
        "groupnorm (N,C)",
        "groupnorm",
        {"groups": 3},
        (N, 6),
        _functional(
            lambda la, x, g, b: F.group_norm(x, la.groups, g, b, la.eps), ("gamma", "beta")
        ),
    ),
    (
        "temporal_linear",
        "temporal_linear",
        {"out": 3},
        (N, T, D),
        _functional(lambda la, x, W, b: F.linear(x, W.T, b), ("W", "b")),
    ),
    (
        "layernorm dims=1",
        "layernorm",
        {"dims": 1},
        (N, T, D),
        _functional(
            lambda la, x, g, b: F.layer_norm(x, (x.shape[-1],), g, b, la.eps), ("gamma", "beta")
        ),
    ),
]


def layer_diffs(
    seed: int, name: str, args: dict[str, Any], shape: tuple[int, ...], run: Run
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    layer = make_layer(name, shape[1:], rng, **args)
    x = rng.standard_normal(shape)
    out = layer.forward(x.copy())
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g.copy())
    xt, tout, tgrads = run(layer, x)
    (tout * torch.tensor(g)).sum().backward()
    diffs = {
        "out": float(np.abs(out - tout.detach().numpy()).max()),
        "dx": float(np.abs(dx - xt.grad.numpy()).max()),
    }
    for k, v in tgrads().items():
        diffs["d" + k] = float(np.abs(layer.grads[k] - v.numpy()).max())
    return diffs


def loss_diffs(seed: int) -> dict[str, float]:
    """sequence_cross_entropy vs F.cross_entropy(logits (N·T, C), targets (N·T,),
    ignore_index=-100, reduction='mean'), with about a third of the targets ignored."""
    rng = np.random.default_rng(seed)
    z = 2 * rng.standard_normal((N, T, 7))
    y = rng.integers(0, 7, (N, T))
    y[rng.random((N, T)) < 0.35] = -100
    y[0, 0] = 1  # at least one position counts
    loss = SequenceCrossEntropy(ignore_index=-100)
    value, dz = loss.forward(z, y), loss.backward()
    zt = t64(z)
    ref = F.cross_entropy(
        zt.reshape(-1, 7), torch.tensor(y.reshape(-1)), ignore_index=-100, reduction="mean"
    )
    ref.backward()
    masked = np.abs(dz[y == -100]).max(initial=0.0)
    return {
        "L": abs(float(value) - ref.item()),
        "dz": float(np.abs(dz - zt.grad.numpy()).max()),
        "dz at ignored (must be 0)": float(masked),
    }


def main() -> int:
    return main_with(int(sys.argv[1]) if len(sys.argv) > 1 else 20)


def main_with(seeds: int) -> int:
    """Print the table for ``seeds`` seeds; 0 if every difference is within LIMIT."""
    worst_all = 0.0
    rows: list[tuple[str, dict[str, float]]] = []
    for label, name, args, shape, run in CASES:
        worst: dict[str, float] = {}
        for s in range(seeds):
            for k, v in layer_diffs(s, name, args, shape, run).items():
                worst[k] = max(worst.get(k, 0.0), v)
        rows.append((label, worst))
    worst = {}
    for s in range(seeds):
        for k, v in loss_diffs(s).items():
            worst[k] = max(worst.get(k, 0.0), v)
    rows.append(("sequence_cross_entropy", worst))
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    print(describe(torch))
    print(f"torch {torch.__version__}, float64, {seeds} seeds: max |gradcheck − torch|")
    for label, worst in rows:
        top = max(worst.values())
        worst_all = max(worst_all, top)
        detail = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
        print(f"  {label:24s} max {top:.1e}   ({detail})")
    ok = worst_all <= LIMIT
    print(f"{'all within' if ok else 'OVER'} {LIMIT:g} (largest {worst_all:.1e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Diagnosis counts on the project's own corpus: right / silent / wrong.

    python benchmarks/diagnosis_survey.py [SEEDS]      # ~2 minutes with SEEDS = 2

Corpus: the bug corpus (tests/bug_corpus.py: 7 networks × SEEDS × 3 places × scale / one-entry /
dense × 3 sizes, every failing tensor), the named wrong twins of tests/test_diagnosis.py (layers,
losses, and twins without a fingerprint) and issue 23's cases (tests/test_edges3.py: a steep
gate's scale bug, CS231n svm_loss without /N, a multi-output loss whose gradient is n_outputs ×
the truth, a missing grads['b'], a transposed grads['W'], a forward that reads self.W).

*right*: the expected kind (and its parameters) or, for a bug without a fingerprint, silence;
*silent*: no diagnosis where one was expected; *wrong*: any other kind claimed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typer.testing import CliRunner

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.layers.registry import resolve
from tests import test_edges3 as e3
from tests.test_diagnosis import (
    ALLOWED,
    LAYER_TWINS,
    LOSS_TWINS,
    NO_FINGERPRINT,
    _matches,
    survey,
)
from tests.test_layers_more import loss_network


def judge(found: Any, kind: str | None, params: dict[str, Any] | None = None) -> str:
    if kind is None:
        return "right" if found is None else "wrong"
    if found is None:
        return "silent"
    return "right" if _matches(found, kind, params or {}) else "wrong"


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    rows: dict[str, Counter[str]] = {}

    corpus: Counter[str] = Counter()
    for (bug, got), n in survey(seeds).items():
        if bug == "dense":
            corpus["right" if got is None else "wrong"] += n
        else:
            corpus["silent" if got is None else ("right" if got in ALLOWED[bug] else "wrong")] += n
    rows["bug corpus (every failing tensor)"] = corpus

    twins: Counter[str] = Counter()
    for plugin, kwargs, shape, tensor, kind, params in LAYER_TWINS:
        for seed in range(3):
            rng = np.random.default_rng(seed)
            layer = make_layer(plugin, shape[1:], rng, **kwargs)
            res = check_layer(layer, rng.standard_normal(shape), seed=seed)
            (p,) = [p for p in res.params if p.name.endswith(tensor)]
            twins[judge(p.diagnosis, kind, params)] += 1
    rows["layer twins (buggy_diagnosis / buggy_layers*)"] = twins

    losses: Counter[str] = Counter()
    for name, plugin, kind, params in LOSS_TWINS:
        for seed in range(2):
            net = loss_network(name, {}, seed)
            net.loss = resolve(plugin, "loss", Path("."))()
            for p in check_network(net, attribute=False).failures:
                losses[judge(p.diagnosis, kind, params)] += 1
    rows["loss twins (every failing tensor)"] = losses

    none: Counter[str] = Counter()
    for plugin, kwargs, shape in NO_FINGERPRINT:
        for seed in range(3):
            rng = np.random.default_rng(seed)
            res = check_layer(make_layer(plugin, shape[1:], rng, **kwargs), rng.standard_normal(shape), seed=seed)
            for p in res.failures:
                none[judge(p.diagnosis, None)] += 1
    rows["twins without a fingerprint (must stay silent)"] = none

    new: Counter[str] = Counter()
    for k in (1e6, 1e8, 1e10):
        for seed in range(3):
            x, g = e3._gate_input(k, seed)
            (p,) = check_layer(e3.Gate(k, 1.1), x, dout=g).params
            new[judge(p.diagnosis, "scale", {"factor": 1.1})] += 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    for layer, suffix, kind in ((e3.NoBias((3,), rng, out=2), ".b", "missing"),
                                (e3.TransposedW((3,), rng, out=2), ".W", "transpose"),
                                (e3.StaleCopy(rng), ".W", "not_read")):  # fmt: skip
        (p,) = [p for p in check_layer(layer, x, seed=0).params if p.name.endswith(suffix)]
        new[judge(p.diagnosis, kind)] += 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fns.py").write_text(e3.FUNCTIONS)
        cases = [(("fns.py:svm_loss", "--shape", "x=7x5", "--integers", "y=5"), "batch size", 7.0)]
        cases += [(("fns.py:mse_outputs", "--shape", f"pred=6x{k}"), "outputs", float(k)) for k in (2, 3, 4)]
        import os

        here = os.getcwd()
        os.chdir(tmp)
        try:
            for args, words, factor in cases:
                for seed in range(2):
                    out = CliRunner().invoke(app, ["fn", *args, "--seed", str(seed), "--format", "json"])
                    d = json.loads(out.stdout)["results"][0].get("diagnosis")
                    if d is None:
                        new["silent"] += 1
                    elif d["kind"] == "scale" and words in d["params"].get("named", "") and np.isclose(
                        d["params"]["factor"], factor
                    ):
                        new["right"] += 1
                    else:
                        new["wrong"] += 1
        finally:
            os.chdir(here)
    rows["issue 23 cases (steep gate, sizes, structural, not_read)"] = new

    print(f"seeds {seeds}\n\n| corpus | right | silent | wrong |\n|---|---:|---:|---:|")
    total: Counter[str] = Counter()
    for name, c in rows.items():
        total.update(c)
        print(f"| {name} | {c['right']} | {c['silent']} | {c['wrong']} |")
    print(f"| **all** | {total['right']} | {total['silent']} | {total['wrong']} |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

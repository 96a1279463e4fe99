"""Probes next to a sample, and a bounded search for the entries behind a failed probe.

A sample of K entries misses a single wrong entry of a large tensor with probability ≈ 1 − K/n;
a directional probe sees every entry at once (∇L·v sums them all) for two loss evaluations. So
sample mode also probes each tensor (:func:`sampled`), and a failed probe — in sample or in
directional mode — is followed by :func:`localise` (passes.py): bisection over blocks of entries. A block B
is tested with the probe's direction restricted to B (v·1_B / ‖v·1_B‖, central differences,
the same verdict as a probe); failing blocks are halved, passing ones dropped, until blocks are
at most :data:`LEAF` entries, which are judged entry by entry. At most :data:`MAX_BLOCK_TESTS`
block tests are made (two to four loss evaluations each), so the cost is bounded whatever the
tensor's size: one wrong entry among n is found in ≈ 2·log2(n/LEAF) tests.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradcheck_cli.engine.draws import directions
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.layers.base import Array
from gradcheck_cli.plan.directional import compare_directional
from gradcheck_cli.plan.plan import Plan
from gradcheck_cli.results import ParamResult
from gradcheck_cli.verdict.judge import Judge

#: Blocks of at most this many entries are judged entry by entry.
LEAF = 64
#: Block tests one localisation may make (each: 2 loss evaluations, 4 when the block fails).
MAX_BLOCK_TESTS = 96
#: Entries judged one by one at the end of a localisation, at most.
MAX_LEAF_ENTRIES = 16 * LEAF


def localise(
    judge: Judge,
    ref: ParamRef,
    shape: tuple[int, ...],
    analytic: Array,
    scale: float,
    plan: Plan,
    probe: ParamResult,
    known: Array | None = None,
) -> ParamResult:
    """After the failed directional result ``probe``: bisect over blocks of entries (bounded),
    then judge the entries of the failing blocks (and ``known``, entries already sampled) one
    by one. When no entry can be singled out (many small errors, or the test budget ran out),
    the probe's failure stands, with a note."""
    size = int(np.prod(shape, dtype=np.int64))
    v = directions(shape, 1, plan.seed, f"{ref.name}:localise").reshape(-1)
    suspects = _bisect(judge, ref, shape, analytic, scale, plan, v, size)
    entries = np.unique(np.concatenate([suspects, known if known is not None else []]))
    entries = entries.astype(np.intp)
    label = "sample+probes→localised" if known is not None else "directional→localised"
    if len(entries):  # the sample's entries were planned already
        plan.grow(2 * (len(entries) - (len(known) if known is not None else 0)))
        res = judge(ref, shape, analytic, entries, scale)
        if not res.passed:
            return replace(res, mode=label, probes=probe.checked)
    note = (
        "a directional probe fails but no single entry could be singled out by a bounded "
        f"search ({MAX_BLOCK_TESTS} block tests): the error is spread over many entries, or "
        "rerun with --mode full to see every entry"
    )
    return replace(probe, mode=label, note=note)


def _bisect(
    judge: Judge,
    ref: ParamRef,
    shape: tuple[int, ...],
    analytic: Array,
    scale: float,
    plan: Plan,
    v: Array,
    size: int,
) -> Array:
    """Flat indices of the entries in failing blocks of at most :data:`LEAF` entries."""
    pert, eps = judge.pert, judge.eps
    steps = np.array([eps, -eps])
    theta = pert.array(ref)
    blocks = [(0, size)]
    leaves: list[Array] = []
    tests = 0
    while blocks and tests < MAX_BLOCK_TESTS:
        lo, hi = blocks.pop(0)
        if hi - lo <= LEAF:
            leaves.append(np.arange(lo, hi))
            if sum(len(leaf) for leaf in leaves) >= MAX_LEAF_ENTRIES:
                break
            continue
        mid = (lo + hi) // 2
        for a, b in ((lo, mid), (mid, hi)):
            w = np.zeros(size)
            w[a:b] = v[a:b]
            w /= np.linalg.norm(w)
            d = w.reshape(1, *shape)
            tests += 1
            plan.grow(2)
            f = pert.along(ref, d[0], steps)[None, :]
            args = (ref.name, shape, analytic, theta, d, eps, judge, scale)
            res = compare_directional(*args, f)
            if not res.passed:  # borderline or wrong: the ±2ε truncation estimate decides
                plan.grow(2)
                f2 = pert.along(ref, d[0], 2 * steps)[None, :]
                res = compare_directional(*args, np.concatenate([f, f2], axis=1))
            if not res.passed:
                blocks.append((a, b))
    return np.concatenate(leaves) if leaves else np.zeros(0, np.intp)

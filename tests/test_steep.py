"""A correct steep layer, sin(k·x)/k with backward cos(k·x): at steps with k·h ≫ 1 the central
difference is cos(kθ)·sin(kh)/(kh) ~ 1e-6, and neighbouring coarse steps can look converged to
≈ 0 with a tiny Richardson bound. A ladder level is taken only where its value persists at the
finer steps (``steps.consistent``); the correct layer is not failed, wrong twins still are."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradcheck_cli import check_layer
from tests.test_mutants_verdict4 import Fn

SCALES = (1e-9, 1e-3, 1.0)
KS = (1e5, 1e6, 1e7, 1e8, 3e8, 1e10)
#: Cells a step resolves, where the correct layer must pass.
RESOLVED = {(1e-9, k) for k in KS} | {(1e-3, k) for k in KS if k < 1e10} | {(1.0, 1e5)}
#: Still failed: a coarse *wide-stencil* estimate (8th order, steps ≥ 2.4e-4) seen from afar
#: wins on its bound (sc = 1), or a steep L measured as noise by ECnoise hides the fine steps'
#: disagreement and the ladder is never extended (sc = 1e-3, k = 1e10). Known, not yet fixed.
KNOWN = {(1e-3, 1e10), (1.0, 1e7), (1.0, 1e8), (1.0, 3e8), (1.0, 1e10)}


def _check(sc: float, k: float, df: Any, seed: int = 0) -> Any:
    x = np.random.default_rng(seed).uniform(-sc, sc, (2, 3))
    layer = Fn(lambda v: np.sin(k * v) / k, df)
    return check_layer(layer, x, seed=seed, dout=np.ones_like(x)).params[0]


def _flip(k: float) -> Any:
    def df(v: np.ndarray) -> np.ndarray:
        g = np.cos(k * v)
        g.flat[1] *= -1
        return g

    return df


CELLS = [
    pytest.param(sc, k, marks=pytest.mark.xfail(strict=True, reason="known")) if (sc, k) in KNOWN
    else (sc, k)
    for sc in SCALES for k in KS
]  # fmt: skip


@pytest.mark.parametrize(("sc", "k"), CELLS)
def test_a_correct_steep_layer_is_never_failed(sc: float, k: float) -> None:
    p = _check(sc, k, lambda v: np.cos(k * v))
    assert p.verdict != "fail", (p.worst[0], p.note)
    if (sc, k) in RESOLVED:
        assert p.verdict == "pass", p.note


@pytest.mark.parametrize(("sc", "k"), sorted(RESOLVED))
def test_its_wrong_twins_fail(sc: float, k: float) -> None:
    assert _check(sc, k, lambda v: 1.01 * np.cos(k * v)).verdict == "fail"
    assert _check(sc, k, _flip(k)).verdict == "fail"
    assert _check(sc, k, lambda v: 0.0 * v).verdict == "fail"


@pytest.mark.parametrize(("sc", "k"), [(1e-9, 1e8), (1e-9, 1e10), (1e-3, 1e6), (1.0, 1e5)])
def test_no_false_alarm_over_seeds(sc: float, k: float) -> None:
    for seed in range(1, 7):
        assert _check(sc, k, lambda v: np.cos(k * v), seed).verdict == "pass", seed
        assert _check(sc, k, lambda v: 1.01 * np.cos(k * v), seed).verdict == "fail", seed

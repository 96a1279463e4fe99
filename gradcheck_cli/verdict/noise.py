"""The noise level ε_f of the computed loss near θ, measured once per tensor (Moré & Wild's
ECnoise, SIAM J. Sci. Comput. 33(3), 2011), never below the rounding floor of the computation.
See :func:`measure_noise`; the step ladder that uses it is in ``steps.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck_cli.engine.draws import directions
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array

#: A noise level is accepted when it holds over this many tables (h, h/16, h/256); at most
#: NOISE_TABLES tables per tensor.
NOISE_HOLDS, NOISE_TABLES, NOISE_REACH = 3, 16, 1e10
#: Tables spent looking for a level at all (a smooth L: none) before the rounding floor is used.
NOISE_SEARCH = 6


@dataclass(frozen=True)
class NoiseLevel:
    """ε_f of the computed loss near θ for one tensor."""

    level: float  # what the verdict uses: max(measured, floor)
    measured: float  # the ECnoise estimate (0 when none was detected)
    floor: float  # the rounding floor of the computation
    evaluations: int  # loss evaluations the measurement took


def ecnoise(fval: Array) -> tuple[float, int]:
    """Moré & Wild's ECnoise on equally spaced values ``fval``: (noise level, info), info 1 =
    noise detected, 2 = the table is flat (h too small), 3 = still smooth (h too large)."""
    f = np.asarray(fval, dtype=np.float64).copy()
    nf = len(f)
    levels = np.zeros(nf - 1)
    signs = np.zeros(nf - 1, dtype=bool)
    gamma = 1.0
    for j in range(1, nf):
        f = np.diff(f)
        if j == 1 and np.sum(f == 0) >= nf / 2:
            return 0.0, 2
        gamma *= 0.5 * j / (2 * j - 1)  # γ_j = (j!)² / (2j)!
        levels[j - 1] = np.sqrt(gamma * np.mean(f**2))
        signs[j - 1] = f.min() * f.max() < 0
    for k in range(nf - 3):
        lo, hi = levels[k : k + 3].min(), levels[k : k + 3].max()
        if hi <= 4 * lo and signs[k]:
            return float(levels[k]), 1
    return 0.0, 3


def rounding_floor(pert: Perturber, u: float) -> float:
    """u·max(|L|, Σ|pred ⊙ ∂L/∂pred|, max|pred|): the rounding of the loss's own arithmetic,
    which works on numbers the size of its inputs (logits, predictions, out ⊙ g terms)."""
    pred = np.asarray(pert.outputs[-1])
    terms = [abs(float(np.real(pert.f0)))]
    if np.issubdtype(pred.dtype, np.number) and pred.size:
        mag = np.abs(pred).astype(np.float64)
        terms.append(float(mag.max()))
        douts = pert.net.douts
        if douts and np.shape(douts[-1]) == pred.shape:
            terms.append(float(np.sum(mag * np.abs(np.asarray(douts[-1], dtype=np.float64)))))
    return u * max(terms)


def measure_noise(pert: Perturber, ref: ParamRef, h0: float, u: float, seed: int) -> NoiseLevel:
    """ε_f near θ along one random unit direction of ``ref``.

    ECnoise on a table at h; a flat table (L did not change) moves h up × 100, a smooth one down
    ÷ 100. Noise is independent of h, while a kink, curvature or a steep bend crossed by the
    table is not: a level is accepted only when it holds (within 4×) over NOISE_HOLDS tables at
    h, h/16, h/256, … and down to steps of NOISE_REACH·u·max|θ| (or until the table turns flat:
    L stopped changing). A level that changes,
    or a table that turns smooth at a smaller step, was a feature of L seen from afar (a gate
    tanh(1e10·x) looks like noise at h = 1e-6): the search goes on below it. At most
    NOISE_TABLES tables, NOISE_SEARCH of them without a level to confirm; nothing confirmed →
    the rounding floor."""
    floor = rounding_floor(pert, u)
    shape = pert.array(ref).shape
    v = directions(shape, 1, seed, f"{ref.name}#noise")[0]
    f0 = float(np.real(pert.f0))
    ks = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    # the level must hold down to steps within NOISE_REACH·u of the tensor's size: a bend at
    # a finer scale than that is one a ladder step can still resolve
    size = float(np.max(np.abs(np.real(pert.array(ref))), initial=0.0))
    reach = NOISE_REACH * u * (size if size > 0 else 1.0)
    h, held, run, used, searched = h0, 0, 0.0, 0, 0
    for _ in range(NOISE_TABLES):
        if not 1e-300 < h < 1 or searched >= NOISE_SEARCH:
            break
        searched += not held  # tables spent looking for a level (not confirming one)
        f = np.real(pert.along(ref, v, ks * h))
        used += len(ks)
        table = np.insert(f, 3, f0)
        if not np.all(np.isfinite(table)):
            h, held, run = h / 100, 0, 0.0
            continue
        level, info = ecnoise(table)
        if info == 1:
            if held and run / 4 <= level <= 4 * run:
                held, run = held + 1, max(run, level)
                if held >= NOISE_HOLDS and h <= reach:
                    return NoiseLevel(max(run, floor), run, floor, used)
            else:  # a first level, or one that changed: not noise at the larger step
                held, run = 1, level
            h /= 16
            continue
        if held:
            if info == 2 and held >= 2:  # the level held down to where L stops changing
                return NoiseLevel(max(run, floor), run, floor, used)
            held, run = 0, 0.0  # smooth (or flat) below a level: that level was L's shape
            h /= 16
            continue
        h = h * 100 if info == 2 else h / 100
    return NoiseLevel(floor, 0.0, floor, used)

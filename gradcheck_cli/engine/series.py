"""tanh's Taylor series around a cached output: the change tanh(x + d) − tanh(x) from t = tanh x.

    tanh(x + d) − t = Σ_k c_k·d^k,   c_k = s·P_k(t)/k!,  s = 1 − t²,
    P_1 = 1,  P_{k+1} = −2t·P_k + (1 − t²)·P_k′   (f^(k) = s·P_k(t) for f = tanh).

Cut where the first dropped term is below 2⁻⁵⁶ of the change itself (:func:`terms_needed`,
from a bound on |d|); |P_k(t)|/k! ≤ :func:`qmax` (k) for |t| ≤ 1, decreasing in k, so the tail
is at most 1/(1 − |d|) times its first term. Nothing rounds x + d (np.tanh(x + d) does: the
series is the more exact of the two). Used by engine/kernels.py (dense changes, timed per CPU
against np.tanh) and engine/taylor.py (tables per column). Pure NumPy.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array

#: Most terms of the series taken: beyond it (|d| ≳ 1e-3) the copies go the plain way.
MAX_TERMS = 8
#: The first dropped term is below this fraction of the change (u/8 in float64).
TAIL = 2.0**-56
#: Largest |d| the series is given.
DELTA_LIMIT = 1e-3


@cache
def polynomials(n: int) -> tuple[tuple[float, ...], ...]:
    """P_1 … P_n as coefficient tuples in t (lowest degree first): f^(k) = s·P_k(t), f = tanh.
    Plain lists (exact: small integers), not numpy.polynomial, whose import costs a check ~4 ms."""
    polys = [[1.0]]
    for _ in range(n - 1):
        p = polys[-1]
        dp = [i * p[i] for i in range(1, len(p))]  # P′
        nxt = [0.0] * (len(p) + 1)
        for i, c in enumerate(p):  # −2t·P
            nxt[i + 1] -= 2 * c
        for i, c in enumerate(dp):  # (1 − t²)·P′
            nxt[i] += c
            nxt[i + 2] -= c
        polys.append(nxt)
    return tuple(tuple(p) for p in polys)


def polyval(p: tuple[float, ...], t: Any) -> Any:
    """Σ_i p[i]·t^i by Horner's rule from the highest degree (as numpy.polynomial's polyval)."""
    acc = p[-1] + t * 0
    for c in reversed(p[:-1]):
        acc = c + acc * t
    return acc


@cache
def qmax(k: int) -> float:
    """max over t ∈ [−1, 1] of |P_k(t)|/k! (on a fine grid, 1 % added for the points between)."""
    grid = np.linspace(-1.0, 1.0, 20001)
    return 1.01 * float(np.abs(polyval(polynomials(k)[k - 1], grid)).max()) / math.factorial(k)


def terms_needed(bound: float) -> int | None:
    """Fewest terms n such that the first dropped one, qmax(n + 1)·bound^n (relative to the
    change s·|d|), is below :data:`TAIL`; None when |d| may reach :data:`DELTA_LIMIT` (or the
    bound is NaN) or more than :data:`MAX_TERMS` would be needed."""
    if not 0.0 <= bound < DELTA_LIMIT:  # also NaN
        return None
    for n in range(1, MAX_TERMS + 1):
        if qmax(n + 1) * bound**n / (1 - bound) <= TAIL:
            return n
    return None


@cache
def tmax(k: int) -> float:
    """For even k, where P_k is odd in t (P_k(t) = t·R_k(t)): max over t ∈ [−1, 1] of
    |R_k(t)|/k! (on a fine grid, 1 % added), so |c_k| ≤ |t|·tmax(k)."""
    p = polynomials(k)[k - 1]
    if k % 2 or p[0] != 0:
        raise ValueError(f"P_{k} has no factor t")
    grid = np.linspace(-1.0, 1.0, 20001)
    return 1.01 * float(np.abs(polyval(p[1:], grid)).max()) / math.factorial(k)


def terms_near(bound: float) -> int | None:
    """Fewest terms n such that the dropped ones add at most 2⁻⁵⁵·max(|t|, |change|), a quarter
    of the rounding of t itself (which every form built on the cached t carries anyway: the
    result is as exact as np.tanh's to rounding): the first dropped odd term is below
    :data:`TAIL` of the change s·|d| (qmax) and the first dropped even one below TAIL of |t|
    (tmax: c_k has a factor t), each sequence decreasing, so each tail is at most 1/(1 − d²)
    times its first term. Fewer terms than :func:`terms_needed` (3 instead of 4 for |d| from
    ~4e-6 to ~6e-5). None as for terms_needed."""
    if not 0.0 <= bound < DELTA_LIMIT:  # also NaN
        return None
    room = TAIL * (1 - bound * bound)
    for n in range(1, MAX_TERMS + 1):
        odd, even = (n + 2, n + 1) if n % 2 else (n + 1, n + 2)
        if qmax(odd) * bound ** (odd - 1) <= room and tmax(even) * bound**even <= room:
            return n
    return None


def tanh_coefficients(t: Array, n: int) -> list[Array]:
    """c_1 … c_n (each t's shape) with tanh(x + d) − t = Σ_k c_k·d^k, t = tanh x; s = 1 − t²
    as (1 − t)(1 + t) (no cancellation near |t| = 1)."""
    s = (1 - t) * (1 + t)
    out = []
    for k, p in enumerate(polynomials(n), start=1):
        value = polyval(p, t) if len(p) > 1 else 1.0
        out.append(s * value / math.factorial(k))
    return out


def horner(c: list[Array], d: Array) -> Array:
    """Σ_k c_k·d^k (k = 1 … len(c)) by Horner's rule: d·(c_1 + d·(c_2 + …)); the c_k are d's
    shape or broadcast against it."""
    acc: Array = d * c[-1]
    for ck in reversed(c[:-1]):
        acc += ck
        acc *= d
    return acc

"""Directional probes: one tensor checked along a few random unit directions v, comparing
∇L·v with a central difference along v (two loss evaluations per probe)."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.engine.draws import directions
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
from gradcheck_cli.layers.base import Array
from gradcheck_cli.plan.plan import Plan
from gradcheck_cli.results import ParamResult
from gradcheck_cli.verdict.judge import TRUNC_FACTOR, Judge


def directional(
    judge: Judge,
    ref: ParamRef,
    shape: tuple[int, ...],
    analytic: Array,
    scale: float,
    plan: Plan,
    probes: int | None = None,
) -> ParamResult:
    """Probe one tensor along ``probes`` (default ``plan.probes``) random directions (central
    differences)."""
    pert, eps = judge.pert, judge.eps
    k_probes = plan.probes if probes is None else probes
    v = directions(shape, k_probes, plan.seed, ref.name)
    steps = np.array([eps, -eps])
    f = np.stack([pert.along(ref, v[k], steps) for k in range(k_probes)])
    args = (ref.name, shape, analytic, pert.array(ref), v, eps, judge, scale)
    res = compare_directional(*args, f)
    if not res.passed:  # borderline or wrong: add ±2ε for the truncation estimate
        plan.grow(2 * k_probes)
        f2 = np.stack([pert.along(ref, v[k], 2 * steps) for k in range(k_probes)])
        res = compare_directional(*args, np.concatenate([f, f2], axis=1))
    return res


def compare_directional(
    name: str,
    shape: tuple[int, ...],
    analytic: Array,
    theta: Array,
    probes: Array,
    eps: float,
    judge: Judge,
    scale: float,
    f: Array,
) -> ParamResult:
    """Directional verdict for one tensor from ``f[k] = L(θ + s·v_k)``, s = (ε, −ε[, 2ε, −2ε]).

    Per probe v (unit norm): a = ∇L·v, n = (f(ε) − f(−ε))/2ε, pass when
        |a − n| ≤ atol + rtol·max(|a|, |n|) + k·noise + k_T·|n − n₂|/3,
    noise = u·(|f₊| + |f₋|)/2ε   (round-off of the difference, as for one entry)
          + u·‖∇L ⊙ θ‖/ε         (θ + εv is rounded entry by entry; independent roundings
                                   add in quadrature, the factor k covers the rest)
          + ‖v‖₁·u·(max|∇L| + S) (the analytic gradient's own round-off, as per entry, summed
                                   along v: at most √n·that, since ‖v‖ = 1)
    with u for the dtype the numerics are computed in (the analytic term: the network's dtype),
    S the backward scale of the layer, n₂ the same difference with step 2ε when given (else the
    term is 0): (n − n₂)/3 is the Richardson estimate of n's truncation error, numeric on both
    sides, so a wrong ∇L cannot widen it. Nothing scales with the tensor's size except the
    analytic round-off bound; ‖v‖ = 1 makes the step in θ-space ε, exactly as for one entry.
    """
    tol = judge.tol
    u = UNIT_ROUNDOFF[judge.numeric_dtype]
    g = np.asarray(analytic, dtype=np.float64).reshape(-1)
    flat_v = probes.reshape(len(probes), -1)
    a = flat_v @ g
    n1 = (f[:, 0] - f[:, 1]) / (2 * eps)
    n2 = (f[:, 2] - f[:, 3]) / (4 * eps) if f.shape[1] == 4 else n1
    backward = (
        UNIT_ROUNDOFF[judge.dtype]
        * np.abs(flat_v).sum(axis=1)
        * (float(np.max(np.abs(g), initial=0.0)) + scale)
    )
    noise = (
        u * (np.abs(f[:, 0]) + np.abs(f[:, 1])) / (2 * eps)
        + u * float(np.linalg.norm(g * np.asarray(theta, dtype=np.float64).reshape(-1))) / eps
        + backward
    )
    trunc = np.abs(n1 - n2) / 3
    allowed = (
        tol.atol
        + tol.rtol * np.maximum(np.abs(a), np.abs(n1))
        + tol.noise_factor * noise
        + TRUNC_FACTOR * trunc
    )
    err = np.abs(a - n1)
    bad = ~(err <= allowed)  # NaN fails
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(n1)), np.finfo(np.float64).tiny)
    # A pass is a claim about resolution, as per entry: the probes' error bound against the
    # largest directional derivative seen.
    bound = tol.noise_factor * noise + TRUNC_FACTOR * trunc
    big = float(np.max(np.maximum(np.abs(a), np.abs(n1)), initial=0.0))
    worst_e = float(np.max(bound, initial=0.0))
    resolution = worst_e / big if big > 0 else (0.0 if worst_e == 0 else float("inf"))
    verdict, note = "pass", None
    if bad.any():
        verdict = "fail"
    elif big <= worst_e:
        verdict, note = "zero", f"zero: ∇L·v and the difference both vanish (≤ {worst_e:.2g})"
    elif resolution > tol.resolution:
        verdict = "inconclusive"
        note = (
            f"inconclusive: probes resolved to {resolution:.1g} of |∇L·v| (a pass needs "
            f"{tol.resolution:.0e})"
        )
    return ParamResult(
        name=name,
        shape=shape,
        passed=verdict in ("pass", "zero") or (verdict == "inconclusive" and not judge.strict),
        note=note,
        resolution=resolution,
        rel_error=float(np.linalg.norm(a - n1)) / denom,
        max_abs_error=float(err.max(initial=0.0)),
        checked=len(a),
        failed=int(bad.sum()),
        verdict=verdict,
        noise_floor=float((tol.noise_factor * noise).max(initial=0.0)),
        mode="directional",
        probes=len(a),
    )

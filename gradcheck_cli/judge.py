"""Judge one tensor's entries: analytic vs numeric under the error model → a ParamResult.

Per entry, with a the analytic value, n the numerical estimate and r its round-off bound:

    |a − n| ≤ atol + rtol·max(|a|, |n|) + k·r + k·u·(max|a| + S)

rtol is the relative size of bug we promise to catch; k·r is the noise of the numerical estimate
itself (error model: a large loss makes small entries uncheckable at fixed rtol); k·u·(max|a| + S)
is the round-off of the analytic backward, relative to the size S of the numbers it was computed
from (largest upstream gradient × largest layer input), not to the gradient it produced. Entries
that fail get a second look (kinks.py) before being called wrong. Verdict per tensor: pass, fail,
kink (a correct subgradient at a kink) or noise (the estimate's round-off is as large as the
gradient: nothing can be concluded). The calibration behind the defaults is
benchmarks/calibrate_tolerance.py; see README, "How the verdict is decided".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck_cli.errors import PluginError
from gradcheck_cli.kinks import refine
from gradcheck_cli.layers.base import Array
from gradcheck_cli.methods import complex_blind_layer, estimate
from gradcheck_cli.network import Network, ParamRef
from gradcheck_cli.numeric import UNIT_ROUNDOFF, Perturber
from gradcheck_cli.options import CheckOptions
from gradcheck_cli.results import Entry, ParamResult, structural_failure

#: Safety factor k on the round-off bound of the numerical estimate.
NOISE_FACTOR = 10.0
#: Safety factor on the Richardson truncation estimate |D(ε) − D(2ε)|/3 of a directional probe.
TRUNC_FACTOR = 10.0


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float = 0.0
    noise_factor: float = NOISE_FACTOR




class Judge:
    """Applies the verdict model to the entries of one tensor."""

    def __init__(self, pert: Perturber, opts: CheckOptions, dtype: str, numeric_dtype: str) -> None:
        """``opts``: resolved (every default filled in); ``dtype``: the network's, which the
        analytic gradients are computed in; ``numeric_dtype``: the numerical reference's."""
        assert opts.eps is not None and opts.rtol is not None and opts.atol is not None
        self.pert, self.method, self.eps = pert, opts.method, opts.eps
        self.tol = Tolerance(opts.rtol, opts.atol)
        self.dtype, self.strict, self.top = dtype, opts.strict, opts.top
        self.numeric_dtype = numeric_dtype

    def allowed(self, a: Array, n: Array, roundoff: Array, floor: Any) -> tuple[Array, Array]:
        noise = self.tol.noise_factor * roundoff + floor
        return self.tol.atol + self.tol.rtol * np.maximum(np.abs(a), np.abs(n)) + noise, noise

    def __call__(
        self,
        ref: ParamRef,
        shape: tuple[int, ...],
        analytic: Array,
        idx: Array,
        scale: float = 0.0,
    ) -> ParamResult:
        a = np.asarray(analytic, dtype=np.float64).reshape(-1)[idx]
        floor = (
            self.tol.noise_factor
            * UNIT_ROUNDOFF[self.dtype]
            * (float(np.max(np.abs(a), initial=0.0)) + scale)
        )
        est = estimate(self.pert, ref, idx, self.method, self.eps, self.numeric_dtype)
        n = est.numeric.copy()
        if not np.all(np.isfinite(n)):
            j = int(np.argmin(np.isfinite(n)))
            where = tuple(int(i) for i in np.unravel_index(idx[j], shape))
            return structural_failure(
                ref.name, shape, f"the loss is not finite when entry {where} is perturbed"
            )
        if self.method == "complex" and not n.any() and a.any():
            culprit = complex_blind_layer(self.pert, ref, int(idx[np.argmax(np.abs(a))]), self.eps)
            raise PluginError(
                f"--method complex: Im L stayed exactly 0 for every entry of {ref.name}; "
                f"{culprit} drops the imaginary part (or does not read its parameters from params)",
                hint="make it complex-safe (use the real part only for comparisons and max) or use "
                "--method central / five-point",
            )
        tol, noise = self.allowed(a, n, est.roundoff, floor)
        status = np.where(np.abs(a - n) <= tol, "pass", "fail").astype(object)
        labels = np.full(len(idx), "", dtype=object)
        bad = np.flatnonzero(status == "fail")
        refined = len(bad)
        if len(bad) and self.method != "complex":
            refine(self, ref, idx, a, n, tol, noise, status, labels, bad, est, floor)
        for jf in np.flatnonzero(status == "fail"):
            j = int(jf)
            if a[j] == 0.0:
                labels[j] = "missing (analytic is 0)"
            elif abs(n[j]) <= noise[j]:
                labels[j] = "spurious (L is flat here)"
        err = np.abs(a - n)
        return self._result(ref.name, shape, idx, a, n, err, tol, noise, status, labels, refined)

    def _result(
        self,
        name: str,
        shape: tuple[int, ...],
        idx: Array,
        a: Array,
        n: Array,
        err: Array,
        tol: Array,
        noise: Array,
        status: Array,
        labels: Array,
        refined: int,
    ) -> ParamResult:
        fails = int(np.sum(status == "fail"))
        kinks = int(np.sum(status == "kink"))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tol > 0, err / tol, np.where(err > 0, np.inf, 0.0))
        ratio = np.where(status == "kink", np.minimum(ratio, 1.0), ratio)
        order = np.lexsort((-ratio, status != "fail"))[: self.top]  # failures first, then by ratio
        worst = tuple(
            Entry(
                tuple(int(i) for i in np.unravel_index(idx[j], shape)),
                float(a[j]),
                float(n[j]),
                float(err[j]),
                float(tol[j]),
                float(noise[j]),
                str(status[j]),
                str(labels[j]),
            )
            for j in order
        )
        mags = np.maximum(np.abs(a), np.abs(n))
        unjudgeable = (noise >= mags) & (mags > 0)
        note = None
        if fails:
            verdict = "fail"
        elif kinks:
            verdict = "kink"
            note = f"{kinks} entr{'y' if kinks == 1 else 'ies'} at a kink (analytic is a one-sided slope)"
        elif unjudgeable.all() and unjudgeable.any():
            verdict = "noise"
            note = (
                f"the estimate's noise (~{float(noise.max()):.2g}) is as large as the gradient "
                f"(max {float(mags.max()):.2g}): nothing can be concluded; use float64, another ε "
                "or --method complex"
            )
        else:
            verdict = "pass"
        passed = verdict == "pass" or (verdict in ("kink", "noise") and not self.strict)
        full, numeric, tolerance = np.full((3, int(np.prod(shape))), np.nan)
        full[idx] = ratio
        numeric[idx], tolerance[idx] = n, np.where(status == "kink", np.inf, tol)
        denom = max(float(np.linalg.norm(a) + np.linalg.norm(n)), np.finfo(np.float64).tiny)
        return ParamResult(
            name=name,
            shape=shape,
            passed=passed,
            rel_error=float(np.linalg.norm(a - n)) / denom,
            max_abs_error=float(err.max(initial=0.0)),
            checked=len(idx),
            failed=fails + (kinks + int(verdict == "noise") * len(idx) if self.strict else 0),
            worst=worst,
            verdict=verdict,
            kinks=kinks,
            refined=refined,
            noise_floor=float(noise.max(initial=0.0)),
            note=note,
            ratios=full.reshape(shape),
            numeric=numeric.reshape(shape),
            tolerance=tolerance.reshape(shape),
        )




def backward_scales(network: Network) -> list[float]:
    """Per layer ℓ: the size of the numbers its gradients were computed from,
    max_{m ≥ ℓ} max|dout_m| · max(1, max|input_ℓ|). Round-off in a backward is relative to these,
    not to the (possibly tiny, after cancellation) gradient itself: 1 − y² of a saturated tanh is
    exact to u absolutely, not relatively."""
    mags = [float(np.max(np.abs(d), initial=0.0)) for d in network.douts]
    upstream: list[float] = list(np.maximum.accumulate(mags[::-1])[::-1]) if mags else []
    return [
        float(up) * max(1.0, float(np.max(np.abs(inp), initial=0.0)))
        for up, inp in zip(upstream, network.inputs, strict=False)
    ]



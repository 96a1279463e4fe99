"""Judge one tensor's entries: analytic vs numeric under the error model → a ParamResult.

Per entry, with a the analytic value, n the numerical estimate and E its error bound:

    |a − n| ≤ atol + rtol·max(|a|, |n|) + E + k·u·(max|a| + S)

E is the estimate's own error, from measured quantities only (``steps.py``): k·ε_f/h for the
noise ε_f of the computed loss (ECnoise, once per tensor; never below the rounding of the
loss's arithmetic), plus, after a second look, the Richardson truncation estimate of the step
used. k·u·(max|a| + S) is the round-off of the analytic backward, relative to the size S of the
numbers it was computed from (largest upstream gradient × largest layer input).

**A pass is a claim about resolution.** The tensor's resolution is R = max E / max(|a|, |n|):
a bug that moves an entry by more than (rtol + R)·max|g| is seen. Entries that disagree, whose
loss is not finite at θ ± ε, or whose E is above ``resolution``·max|g| (the promise, default
10·rtol) get a second look (``kinks.py``): central differences over a ladder of steps 1e-1 …
4e-10 (scaled by |θ|), the step with the smallest E chosen per entry before looking at a;
where no central step resolves it to the promise, also an 8th-order stencil (``steps.wide``).
Verdict per tensor: **fail** (an entry disagrees beyond E); **zero** (analytic and numeric both
vanish within E everywhere; never fails); **inconclusive** (no step resolves the gradient to the
promise: R is reported; fails only with --strict); **kink** (only entries at a kink disagree,
each analytic value between the one-sided slopes; fails only with --strict); **pass**.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.engine.methods import STENCILS, complex_blind_layer, estimate
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF, Perturber
from gradcheck_cli.engine.precision import input_quantum
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.results import Entry, ParamResult
from gradcheck_cli.verdict.floors import jitter_gradients, not_read, twin_gradients
from gradcheck_cli.verdict.kinks import second_look
from gradcheck_cli.verdict.steps import (
    LEVELS,
    NOISE_FACTOR,
    NoiseLevel,
    measure_noise,
    rounding_floor,
)

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions

#: Safety factor on the Richardson truncation estimate |D(ε) − D(2ε)|/3 of a directional probe.
TRUNC_FACTOR = 10.0
#: Entries re-estimated per round of the second look (worst first; stop at a confirmed failure).
SECOND_LOOK_CHUNK = 256
#: Largest amplification of round-off (× u × the backward's scale) that input jitter may show
#: and still be taken as the rounding of the gradient rather than a discontinuity.
JUMP = 1e8
#: Margin on the measured rounding |a₃₂ − a₆₄| of a float32 network's analytic gradient.
TWIN_FACTOR = 2.0


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float = 0.0
    noise_factor: float = NOISE_FACTOR
    #: Relative size of bug a pass promises to see (the resolution every entry must reach).
    resolution: float = 1e-6


class Judge:
    """Applies the verdict model to the entries of one tensor."""

    def __init__(self, pert: Perturber, opts: CheckOptions, dtype: str, numeric_dtype: str) -> None:
        """``opts``: resolved (every default filled in); ``dtype``: the network's, which the
        analytic gradients are computed in; ``numeric_dtype``: the numerical reference's."""
        assert opts.eps is not None and opts.rtol is not None and opts.atol is not None
        self.pert, self.method, self.eps = pert, opts.method, opts.eps
        promise = opts.resolution if opts.resolution is not None else 10 * opts.rtol
        self.tol = Tolerance(opts.rtol, opts.atol, resolution=promise)
        self.dtype, self.strict, self.top = dtype, opts.strict, opts.top
        self.numeric_dtype = numeric_dtype
        self.seed = 0 if opts.seed is None else opts.seed
        self._noise: dict[str, NoiseLevel] = {}
        self._quanta: dict[str, str | None] = {}
        #: Called with the number of evaluations added beyond the plan (the progress total);
        #: the checker sets its plan's.
        self.grow: Callable[[int], None] = lambda n: None
        #: The same backward run on the float64 reference (float32 networks): the difference is
        #: the measured rounding of the float32 forward + backward, not a guess from magnitudes.
        self._twin = twin_gradients(pert.net) if numeric_dtype != dtype else None
        #: Otherwise: the analytic gradient's own rounding, measured by moving the input at the
        #: round-off level (cancellation in forward caches and backward, e.g. batchnorm's).
        #: (computed on first use, inside the check: it runs the forward three more times)
        self._jitter: Any = None
        self._jitter_done = self._twin is not None

    def quantum(self, ref: ParamRef) -> str | None:
        """The precision the computation rounds ``ref`` to inside (a function that casts its
        float64 input to float32), measured once per tensor (``precision.input_quantum``)."""
        if ref.name not in self._quanta:
            self._quanta[ref.name] = None
            theta = self.pert.array(ref)
            if self.method != "complex" and theta.dtype == np.float64:
                def loss_at(v: Array) -> float:
                    self.grow(1)  # each probe is one loss evaluation, counted as it runs
                    return float(np.real(self.pert.along(ref, v - theta, np.ones(1))[0]))

                self._quanta[ref.name] = input_quantum(
                    loss_at, theta, float(np.real(self.pert.f0)), self.seed
                )
        return self._quanta[ref.name]

    def noise(self, ref: ParamRef) -> NoiseLevel:
        """ε_f of the loss near θ along ``ref`` (measured once per tensor). A computation that
        rounds ``ref`` to a lower precision inside (``quantum``) works in that precision: its
        rounding floor is that precision's."""
        if ref.name not in self._noise:
            low = self.quantum(ref) if self.method != "complex" else None
            self.grow(6)  # at least one table (more are counted as they run)
            u = UNIT_ROUNDOFF[low or self.numeric_dtype]
            h0 = min(self.eps, 1e-3) / 10 if self.method != "complex" else 1e-6
            self._noise[ref.name] = measure_noise(self.pert, ref, h0, u, self.seed)
            self.grow(self._noise[ref.name].evaluations - 6)
        return self._noise[ref.name]

    def __call__(
        self,
        ref: ParamRef,
        shape: tuple[int, ...],
        analytic: Array,
        idx: Array,
        scale: float = 0.0,
    ) -> ParamResult:
        a = np.asarray(analytic, dtype=np.float64).reshape(-1)[idx]
        floor = np.full(
            len(idx),
            NOISE_FACTOR
            * UNIT_ROUNDOFF[self.dtype]
            * (float(np.max(np.abs(a), initial=0.0)) + scale),
        )
        twin = self._twin_of(ref, self._twin, idx)
        if twin is not None:  # measured rounding of the float32 computation, with margin 2
            # (it replaces the a-priori bound u·S, which is far too pessimistic for small inputs)
            floor = np.maximum(
                NOISE_FACTOR * UNIT_ROUNDOFF[self.dtype] * float(np.max(np.abs(a), initial=0.0)),
                TWIN_FACTOR * np.abs(a - twin),
            )
        if not self._jitter_done:
            self._jitter_done = True
            self._jitter = jitter_gradients(self.pert.net, self.pert.x, self.dtype)
        jit = self._twin_of(ref, self._jitter, idx)
        if jit is not None:
            # a jump far above any rounding is a discontinuity crossed (a max-pool tie, ReLU
            # at 0), not the rounding of the gradient: ignored
            size = float(np.max(np.abs(a), initial=0.0)) + scale
            rounding = jit <= min(JUMP * UNIT_ROUNDOFF[self.dtype], 1e-4) * size
            floor = np.maximum(floor, NOISE_FACTOR * np.where(rounding, jit, 0.0))
        est = estimate(self.pert, ref, idx, self.method, self.eps, self.numeric_dtype)
        n = np.asarray(est.numeric, dtype=np.float64).copy()
        step = np.full(len(idx), self.eps)
        if self.method == "complex":
            if not n.any() and a.any():
                culprit = complex_blind_layer(
                    self.pert, ref, int(idx[np.argmax(np.abs(a))]), self.eps
                )
                raise PluginError(
                    f"--method complex: Im L stayed exactly 0 for every entry of {ref.name}; "
                    f"{culprit} drops the imaginary part (or does not read its parameters from params)",
                    hint="make it complex-safe (use the real part only for comparisons and max) or "
                    "use --method central / five-point",
                )
            error = NOISE_FACTOR * est.roundoff
            eps_f = 0.0
        else:
            # First with the rounding floor as the noise: entries that agree at that tight
            # tolerance could only do so by coincidence if the noise were larger. The noise is
            # measured (ECnoise) only when some entry needs a second look.
            eps_f = rounding_floor(self.pert, UNIT_ROUNDOFF[self.numeric_dtype])
            gain = float(np.sum(np.abs(STENCILS[self.method].weights)))
            error = NOISE_FACTOR * np.maximum(est.roundoff, eps_f * gain / self.eps)
        if not n.any() and a.any() and np.all(np.isfinite(n)):
            unread = not_read(self.pert, ref, shape)
            if unread is not None:
                return unread
        need, ok = self._needs(a, n, error, floor)
        if len(need) and self.method != "complex":
            eps_f = max(eps_f, self.noise(ref).level)
            error = NOISE_FACTOR * np.maximum(est.roundoff, eps_f * gain / self.eps)
            need, ok = self._needs(a, n, error, floor)
        status = np.where(ok, "pass", "fail").astype(object)
        labels = np.full(len(idx), "", dtype=object)
        if len(need) and self.method != "complex":
            fin = np.isfinite(n)
            mag = max(
                float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n[fin]), initial=0.0))
            )
            want = self.tol.resolution * mag - floor  # what the estimate's error may be
            # Worst first, in chunks: once an entry is confirmed wrong the tensor fails, and the
            # rest keep their first estimate (labelled), instead of a ladder for every entry.
            with np.errstate(divide="ignore", invalid="ignore"):
                worst = np.nan_to_num(np.abs(a - n) / self._tol(a, n, error, floor), nan=np.inf)
            need = need[np.argsort(-worst[need], kind="stable")]
            for lo in range(0, len(need), SECOND_LOOK_CHUNK):
                part = need[lo : lo + SECOND_LOOK_CHUNK]
                self.grow(2 * LEVELS * len(part))
                look = second_look(self, ref, idx[part], a[part], floor[part], eps_f, want[part])
                n[part], error[part], step[part] = look.numeric, look.error, look.step
                status[part], labels[part] = look.status, look.labels
                rest = need[lo + SECOND_LOOK_CHUNK :]
                if (look.status == "fail").any() and len(rest):
                    labels[rest] = "not re-checked: the tensor already fails"
                    break
        tol = self._tol(a, n, error, floor)
        for jf in np.flatnonzero(status == "fail"):
            j = int(jf)
            if a[j] == 0.0:
                labels[j] = "missing (analytic is 0)"
            elif abs(n[j]) <= error[j]:
                labels[j] = "spurious (L is flat here)"
        res = self._result(
            ref.name, shape, idx, a, n, tol, error, status, labels, len(need), step, floor
        )
        low = self._quanta.get(ref.name)
        if low is not None:  # what the steps were taken as, said next to the verdict
            said = (f"the computation rounds {ref.name} to {low} inside: the steps are taken as "
                    f"realised in {low}, and its {low} rounding limits the resolution")  # fmt: skip
            res = replace(res, note=f"{res.note}; {said}" if res.note else said)
        return res

    def _needs(self, a: Array, n: Array, error: Array, floor: Array) -> tuple[Array, Array]:
        """Entries needing a second look (disagree, not finite, or not resolved to the promise)
        and which agree."""
        finite = np.isfinite(n)
        ok = np.abs(a - n) <= self._tol(a, n, error, floor)  # NaN: not ok
        mag = max(
            float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n[finite]), initial=0.0))
        )
        # a step can improve error, not floor (but a finer error can still expose a bug)
        unresolved = error + floor > self.tol.resolution * mag
        return np.flatnonzero(~ok | ~finite | unresolved), ok

    def _twin_of(self, ref: ParamRef, pair: Any, idx: Array) -> Array | None:
        if pair is None:
            return None
        dx, grads = pair
        g = dx if ref.key is None else (grads[ref.layer] if ref.layer < len(grads) else None)
        if isinstance(g, dict):
            g = g.get(ref.key)
        if not isinstance(g, np.ndarray) or g.size != self.pert.array(ref).size:
            return None
        out = np.asarray(g, dtype=np.float64).reshape(-1)[idx]
        return out if np.all(np.isfinite(out)) else None

    def _tol(self, a: Array, n: Array, error: Array, floor: Array) -> Array:
        with np.errstate(invalid="ignore"):
            return self.tol.atol + self.tol.rtol * np.maximum(np.abs(a), np.abs(n)) + error + floor

    def _result(
        self,
        name: str,
        shape: tuple[int, ...],
        idx: Array,
        a: Array,
        n: Array,
        tol: Array,
        error: Array,
        status: Array,
        labels: Array,
        refined: int,
        step: Array,
        floor: Array,
    ) -> ParamResult:
        err = np.abs(a - n)
        fails = int(np.sum(status == "fail"))
        kinks = int(np.sum(status == "kink"))
        lost = status == "inconclusive"  # no usable step at all (outside the domain)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tol > 0, err / tol, np.where(err > 0, np.inf, 0.0))
        ratio = np.where((status == "kink") | lost, np.minimum(np.nan_to_num(ratio), 1.0), ratio)
        order = np.lexsort((-np.nan_to_num(ratio, nan=np.inf), status != "fail"))[: self.top]
        worst = tuple(
            Entry(
                tuple(int(i) for i in np.unravel_index(idx[j], shape)),
                float(a[j]), float(n[j]), float(err[j]), float(tol[j]), float(error[j]),
                str(status[j]), str(labels[j]), step=float(step[j]),
            )
            for j in order
        )  # fmt: skip
        judged = ~lost & (status != "kink")  # a kink's claim is its slopes, not a resolution
        e, fl = error[judged], floor[judged]
        vanish = (np.abs(a[judged]) <= e + fl) & (np.abs(n[judged]) <= e + fl)
        big = float(np.max(np.maximum(np.abs(a), np.abs(n))[~lost], initial=0.0))
        # the numerical estimate's error and the analytic's own rounding both limit what is seen
        worst_e = float(np.max(e + fl, initial=0.0))
        resolution = worst_e / big if big > 0 else (0.0 if worst_e == 0 else float("inf"))
        if lost.any():
            resolution = float("inf")
        note = None
        if fails:
            verdict = "fail"
        elif vanish.all() and not lost.any() and not kinks:
            verdict = "zero"
            note = f"zero: analytic and numeric both vanish at this resolution (|a|, |n| ≤ {worst_e:.2g})"
        elif resolution > self.tol.resolution:
            verdict = "inconclusive"
            edge = np.array([str(lb).startswith("L not finite") for lb in labels]) & lost
            why = (
                f"{int(lost.sum())} entr{'y' if lost.sum() == 1 else 'ies'}: "
                + ("L is not finite at any step tried (outside the domain)" if edge.any() else
                   "no step tried shows evidence of resolution (successive estimates that "
                   "agree within their error bound)")
                if lost.any()
                else f"resolved to {resolution:.1g} of max|g| (a pass needs "
                f"{self.tol.resolution:.0e}): the estimate's error ~{worst_e:.2g} is too large "
                "for this gradient at every step tried"
            )
            note = f"inconclusive: {why}"
        elif kinks:
            verdict = "kink"
            note = f"{kinks} entr{'y' if kinks == 1 else 'ies'} at a kink (analytic is a one-sided slope)"
        else:
            verdict = "pass"
        passed = verdict in ("pass", "zero") or (
            verdict in ("kink", "inconclusive") and not self.strict
        )
        full, numeric, tolerance = np.full((3, int(np.prod(shape))), np.nan)
        full[idx] = ratio
        numeric[idx], tolerance[idx] = n, np.where(status == "kink", np.inf, tol)
        fin = np.isfinite(n)
        denom = max(
            float(np.linalg.norm(a[fin]) + np.linalg.norm(n[fin])), np.finfo(np.float64).tiny
        )
        strict_extra = kinks + int(verdict == "inconclusive") * len(idx) if self.strict else 0
        return ParamResult(
            name=name,
            shape=shape,
            passed=passed,
            rel_error=float(np.linalg.norm(a[fin] - n[fin])) / denom,
            max_abs_error=float(np.nan_to_num(err, nan=0.0).max(initial=0.0)),
            checked=len(idx),
            failed=fails + strict_extra,
            worst=worst,
            verdict=verdict,
            kinks=kinks,
            refined=refined,
            noise_floor=float(e.max(initial=0.0)),
            note=note,
            ratios=full.reshape(shape),
            numeric=numeric.reshape(shape),
            tolerance=tolerance.reshape(shape),
            resolution=resolution,
        )

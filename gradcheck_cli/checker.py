"""check_network / check_layer: the phases of one check, in order (docs/architecture.md).

1. options (``options.py``), the input (integer ids or not) and the network's dtype
2. the unperturbed pass: loss, determinism, backward, structural checks (``engine/structure.py``)
3. what to check: tensors selected, mode, budget and plan (``plan/``: selection, modes, plan)
4. the numerical reference (float64 for a float32 network: ``engine/precision.py``) and the
   engine (``engine/numeric.py``)
5. judge each tensor: entries (``verdict/judge.py``: steps from ``verdict/steps.py``, second look
   in ``verdict/kinks.py``), probes (``plan/directional.py``) and, after a failed probe, a bounded
   search for the entries behind it (``plan/localise.py``)
6. for each failing tensor, the bug fingerprint that explains it (``verdict/diagnosis.py``)
7. on failure, attribution to a layer (``verdict/attribution.py``)
Results: ``results.py``; what people and machines read of them: ``report/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.engine import structure
from gradcheck_cli.engine.contracts import scalar
from gradcheck_cli.engine.network import Network, ParamRef, rng_for
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.engine.precision import promoted
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.plan.limits import check_step
from gradcheck_cli.plan.passes import judge_all
from gradcheck_cli.plan.plan import Plan, Progress, make_plan
from gradcheck_cli.plan.selection import select
from gradcheck_cli.results import (
    CheckResult,
    ParamResult,
    analytic_gradient,
    spurious_grads,
)
from gradcheck_cli.verdict.attribution import with_attribution
from gradcheck_cli.verdict.diagnosis import Context, diagnose
from gradcheck_cli.verdict.evidence import problem_sizes
from gradcheck_cli.verdict.floors import backward_scales, tensor_scale
from gradcheck_cli.verdict.judge import Judge

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions


def check_network(
    network: Network,
    x: Array | None = None,
    target: Array | None = None,
    *,
    options: CheckOptions | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] | None = None,
    **given: Any,
) -> CheckResult:
    """Check every parameter (and the input, unless ``inputs=False``) of ``network``.

    Settings come as ``options`` and/or keyword arguments over them (the fields of
    :class:`~gradcheck_cli.options.CheckOptions`: method, eps, rtol, atol, inputs, strict, mode,
    samples, probes, budget, include, exclude, seed, top, attribute, discrete, chunk_bytes),
    validated like a config's ``check:`` section (ConfigError naming the option).
    ``x``/``target`` default to the ones the network was built with. Parameters are perturbed in
    place and restored exactly; the caller's ``x`` is never modified. ``progress(done, planned)``
    is called as loss evaluations complete. Ctrl-C during the check returns the tensors finished
    so far with ``interrupted=True``. ``clock`` (default ``time.perf_counter``) measures a
    ``budget``; nothing else reads it.
    """
    clock = clock or time.perf_counter
    started = clock()
    if options is not None and not given:
        opts = options
    else:
        from gradcheck_cli.options import CheckOptions

        opts = CheckOptions.build(options, **given)
    if target is not None:
        network.target = target
    x_arr, discrete, notes = _prepare_input(network, x, opts)
    dtype = _dtype(network, x_arr, discrete)
    differentiate_input = opts.inputs and not discrete
    if opts.method != "complex":
        check_step(network, x_arr, opts.resolved(dtype).eps or 0.0, inputs=differentiate_input)
    base = _unperturbed_pass(network, x_arr, opts.chunk_bytes)
    if isinstance(base, str):  # the forward is not deterministic: nothing else can be judged
        return _result(network, opts.resolved(dtype), dtype, dtype, problems=(base,), loss=None)
    refs = _selected(network, opts, include_input=differentiate_input)
    with ExitStack() as stack:
        pert, reference, why_not = base.pert, dtype, None
        if dtype == "float32":  # float64 numerics for a float32 network, when its layers allow
            why_not = stack.enter_context(promoted(network))
            if why_not:
                notes.append(f"numerics in float32: {why_not}")
            else:
                reference = "float64"
                x64 = x_arr if discrete else x_arr.astype(np.float64)
                pert = Perturber(network, x64, chunk_bytes=opts.chunk_bytes)
        resolved = opts.resolved(dtype, reference)
        judge = Judge(pert, resolved, dtype, reference)
        plan = make_plan(judge, refs, resolved, progress, clock=clock, started=started)
        judge.grow = plan.grow  # second looks (noise tables, step ladders) add evaluations
        if plan.mode == "directional" and resolved.method != "central":
            notes.append(f"directional probes use central differences along v, not {resolved.method}")
        results: list[ParamResult] = []
        interrupted = False
        try:
            _judge_all(network, judge, base, refs, plan, results)
        except KeyboardInterrupt:
            interrupted = True
        short = [p.name for p in results if p.cut is not None and p.verdict != "not checked"]
        missed = [p.name for p in results if p.verdict == "not checked"]
        if short or missed:
            notes.append(plan.budget_note(short, missed))
    results = _diagnosed(network, base, results)
    result = _result(
        network, resolved, dtype, reference, problems=tuple(base.problems), loss=base.pert.f0,
        params=tuple(results), plan=plan,
        notes=tuple(notes + list(network.findings) + network.fp.notes()),
        interrupted=interrupted,
    )  # fmt: skip
    wrong = result.problems or any(p.outcome == "disagree" for p in result.params)
    if opts.attribute and wrong and not interrupted and len(network.layers) > 1:
        if plan.expired():  # attribution is extra: it never stretches a budget that ran out
            note = "not attributed to a layer: the budget ran out (a larger --budget attributes it)"
            return replace(result, notes=(*result.notes, note))
        # Each layer on its own: its dx is always checked; selection names the network's tensors.
        update: dict[str, Any] = {"attribute": False, "inputs": True, "include": None, "exclude": None}
        if plan.deadline is not None:  # the layers share what is left of the budget
            left = max(plan.deadline - clock(), 1e-3)
            update["budget"] = left / len(network.layers)
        per_layer = opts.model_copy(update=update)
        layers = _LayerChecks(per_layer, plan, progress)
        result = with_attribution(result, network, layers, discrete=discrete)
        layers.finish()
    return result


class _LayerChecks:
    """The per-layer checks attribution runs, their work in the same progress count: what the
    main check planned but never needed is dropped, each layer's plan is added as it starts, so
    the count never shows more done than planned and ends full (``finish``)."""

    def __init__(self, opts: CheckOptions, plan: Plan, progress: Progress | None) -> None:
        self.opts, self.progress, self.done = opts, progress, plan.done
        self.clock = plan.clock

    def __call__(self, one: Network) -> CheckResult:
        if self.progress is None:
            return check_network(one, options=self.opts, clock=self.clock)
        stage = getattr(self.progress, "stage", None)
        if stage is not None:
            stage("attribution: each layer on its own", one.name)
        report, last = self.progress, [0]

        def sub(done: int, planned: int) -> None:
            last[0] = done
            report(self.done + done, self.done + planned)

        res = check_network(one, options=self.opts, progress=sub, clock=self.clock)
        self.done += last[0]
        return res

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.done)


def _prepare_input(
    network: Network, x: Array | None, opts: CheckOptions
) -> tuple[Array, bool, list[str]]:
    """A private copy of the input, whether it is discrete ids (no input gradient), and notes.

    Integer inputs are ids only when something says so: ``discrete=True``, a network built from a
    config with ``input.integers``, or a first layer that takes ids (``takes_ids = True``, as
    ``embedding``). Otherwise integer values are converted to float and dx is checked."""
    x_in = network.x if x is None else x
    if x_in is None:
        raise ValueError("check_network needs an input x (the network has none bound)")
    x_arr = np.array(x_in, copy=True)
    notes: list[str] = []
    if not np.issubdtype(x_arr.dtype, np.integer):
        return x_arr, False, notes
    first = network.layers[0] if network.layers else None
    discrete = opts.discrete
    if discrete is None:
        discrete = network.discrete or getattr(first, "takes_ids", False) is True
    if not discrete:
        x_arr = x_arr.astype(np.float64)
        notes.append(
            "integer input converted to float64 and its gradient checked (pass discrete=True, "
            "or input.integers in a config, if the values are ids)"
        )
    return x_arr, bool(discrete), notes


def _dtype(network: Network, x_arr: Array, discrete: bool) -> str:
    """The network's dtype: the input's, or for ids the first parameter's."""
    first = next((p for la in network.layers for p in la.params.values()), x_arr)
    return "float32" if (first if discrete else x_arr).dtype == np.float32 else "float64"


@dataclass
class _Base:
    """The unperturbed pass: the engine at θ, the analytic gradients, structural problems."""

    pert: Perturber
    dx: Any
    grads: list[dict[str, Array] | str]
    problems: list[str]
    scales: list[float]
    originals: dict[str, Array]


def _unperturbed_pass(network: Network, x_arr: Array, chunk_bytes: int) -> _Base | str:
    """Loss at θ (twice: a forward that is not deterministic is the one problem reported, as a
    string), the backward, and the structural checks (mutated inputs, non-linear backward)."""
    network.watch, network.mutated = True, set()
    try:
        pert = Perturber(network, x_arr, chunk_bytes=chunk_bytes)
    finally:
        network.watch = False
    if not np.isfinite(np.asarray(pert.f0, dtype=complex)):
        raise network.explain_nonfinite(x_arr, pert.f0)
    again = scalar(network.loss_value(x_arr), network.loss_label)
    problem = structure.nondeterminism(pert.f0, again)
    if problem:
        return problem
    dx, grads = network.backward()
    problems = structure.mutations(network) + structure.backward_consistency(network, grads, dx)
    originals = {ref.name: pert.array(ref) for ref in network.parameters()}
    return _Base(pert, dx, grads, problems, backward_scales(network), originals)


def _selected(network: Network, opts: CheckOptions, *, include_input: bool) -> list[ParamRef]:
    refs = network.parameters(include_input=include_input)
    chosen = set(select([r.name for r in refs], opts.include, opts.exclude))
    return [r for r in refs if r.name in chosen]


def _result(
    network: Network,
    opts: CheckOptions,
    dtype: str,
    reference: str,
    *,
    loss: Any,
    plan: Plan | None = None,
    **fields: Any,
) -> CheckResult:
    """The CheckResult of ``network`` under the resolved ``opts`` (the options that ran)."""
    assert opts.eps is not None and opts.rtol is not None and opts.atol is not None
    mode = plan.mode if plan is not None else opts.mode or "full"
    ran = opts.model_copy(
        update={
            "mode": mode,
            "samples": plan.samples if plan is not None and mode == "sample" else None,
            "probes": plan.probes if plan is not None and mode in ("directional", "sample") else None,
        }
    )
    return CheckResult(
        name=network.name, seed=opts.seed, method=opts.method, eps=opts.eps, rtol=opts.rtol,
        atol=opts.atol, dtype=dtype, strict=opts.strict, reference=reference,
        loss=float(np.real(loss)) if loss is not None else float("nan"), mode=mode,
        samples=ran.samples, probes=ran.probes,
        estimate=plan.estimate if plan is not None else None,
        options=ran.model_dump(mode="json", exclude={"chunk_bytes"}),
        **fields,
    )  # fmt: skip


def _judge_all(
    network: Network,
    judge: Judge,
    base: _Base,
    refs: list[ParamRef],
    plan: Plan,
    results: list[ParamResult],
) -> None:
    """Judge every tensor of ``refs`` in the plan's two passes (passes.py), appending to
    ``results`` (so a Ctrl-C keeps what is done); ``base.originals`` are the arrays as the
    network holds them outside any float64 reference (their dtype is what the gradients must
    match)."""

    def gradient(ref: ParamRef) -> tuple[Any, str | None]:
        analytic, why = analytic_gradient(ref, base.dx, base.grads, base.originals[ref.name])
        if why and "NaN/Inf" in why and network.backward_nonfinite:
            why += f"; NaN/Inf first appear in {network.backward_nonfinite}"
        return analytic, why

    shapes = {ref.name: tuple(base.originals[ref.name].shape) for ref in refs}
    # the size of what each tensor's backward multiplies (its analytic round-off floor)
    scales = {ref.name: tensor_scale(network, ref, base.scales) for ref in refs}
    judge_all(judge, refs, plan, shapes, gradient, scales, results)
    results += spurious_grads(network, base.grads)


def _diagnosed(network: Network, base: _Base, results: list[ParamResult]) -> list[ParamResult]:
    """Each failing tensor with the arrays its judge kept gets a diagnosis: the fingerprint of
    a known bug that explains the disagreement, or None (arrays only: no loss evaluations)."""
    refs = {ref.name: ref for ref in network.parameters()}
    x = base.originals.get("input")
    batch = int(x.shape[0]) if x is not None and x.ndim else None
    outputs = int(network.douts[-1].size) if network.douts else None
    x_in = np.asarray(base.pert.x)
    batch = batch if batch is not None else (int(x_in.shape[0]) if x_in.ndim else None)
    sizes = problem_sizes(x_in.shape, tuple(np.shape(base.pert.outputs[-1])))
    out = []
    for res in results:
        ref = refs.get(res.name)
        if res.passed or ref is None or res.numeric is None or res.tolerance is None:
            out.append(res)
            continue
        theta = base.originals[res.name]
        analytic, why = analytic_gradient(ref, base.dx, base.grads, theta)
        ctx = Context(res.name, theta, batch, outputs, sizes)
        found = None if why else diagnose(analytic, res.numeric, res.tolerance, ctx)
        out.append(replace(res, diagnosis=found))
    return out


def check_layer(
    layer: Any,
    x: Array,
    *,
    dout: Array | None = None,
    seed: int = 0,
    label: str | None = None,
    options: CheckOptions | None = None,
    progress: Progress | None = None,
    **given: Any,
) -> CheckResult:
    """Check one layer on input ``x`` with L = Σ out ⊙ g (g = ``dout`` or random from ``seed``).
    Settings as for :func:`check_network`. The layer is named as in the CLI: its registry name
    (``linear``) for a built-in, else its class name."""
    from gradcheck_cli.layers.registry import check_layer_contract, is_plugin, registered_name

    label = label or registered_name(type(layer)) or type(layer).__name__
    check_layer_contract(layer, label)
    trusted = [not is_plugin(label) and type(layer).__module__.startswith("gradcheck_cli.")]
    net = Network([layer], None, labels=[label], x=np.asarray(x), name=label, trusted=trusted)
    if dout is None:
        out = net.forward(np.array(x, copy=True))
        dout = rng_for(seed, "upstream").standard_normal(out.shape).astype(out.dtype)
    net.loss, net.loss_label = WeightedSum(np.asarray(dout)), "Σ out⊙g"
    from gradcheck_cli.options import CheckOptions

    opts = CheckOptions.build(options, seed=seed, **given)
    return check_network(net, options=opts, progress=progress)


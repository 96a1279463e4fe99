"""Config → Network: load the input and target, instantiate every layer and the loss (built-in,
plugin or function pair) within the memory limits, with one forward pass to fit the shapes. Every
error names the config file and the field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.engine.contracts import check_loss_behaviour, check_output_dtype
from gradcheck_cli.engine.network import Network, first_nonfinite, rng_for
from gradcheck_cli.engine.spec_arrays import footprint, input_shape, load_array
from gradcheck_cli.errors import (
    ConfigError,
    GradcheckError,
    NumericError,
    PluginError,
    ShapeError,
)
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.layers.registry import (
    LOSSES,
    check_layer_contract,
    check_loss_contract,
    instantiate,
    is_plugin,
    resolve,
)
from gradcheck_cli.plan.limits import (
    Limits,
    MemoryPlan,
    array_bytes,
    estimate_layer,
    estimate_workspace,
)
from gradcheck_cli.spec.trust import refusing_code

if TYPE_CHECKING:
    from gradcheck_cli.spec.config import Config, TargetSpec


def _context(err: GradcheckError, cfg: Config, field: str) -> GradcheckError:
    if err.file is None:
        err.file = cfg.source
    if err.field is None:
        err.field = field
    return err


def build_network(
    cfg: Config, *, limits: Limits | None = None, probes: int = 0, inputs: bool | None = None
) -> Network:
    """Build the layers in order, each sized by the output of the one before (run on the input).

    Memory is counted from the spec first (``spec_arrays.footprint``: every array the config
    describes, before any is drawn), then budgeted again as the build goes (``limits``, default
    ``Limits()``), measuring what only building can tell (a plugin without an estimate): over
    the limit is a ``LimitError`` before the allocation. A NaN/Inf input or layer output at this
    unperturbed point is a ``NumericError``. ``probes``: directional probes the check will draw
    (of the input when ``inputs``, default the config's ``check.inputs``), refused from the spec
    too. A config loaded with ``no_plugins`` imports nothing (``refusing_code``)."""
    with refusing_code(cfg.no_plugins):
        checked = cfg.check.inputs if inputs is None else inputs
        footprint(cfg, MemoryPlan(limits or Limits(), cfg.source), probes=probes, inputs=checked)
        return _build(cfg, MemoryPlan(limits or Limits(), cfg.source))


def _build(cfg: Config, plan: MemoryPlan) -> Network:
    shape = input_shape(cfg)
    if shape is not None:
        plan.add("input", array_bytes(shape, cfg.dtype), "input")
    x = load_array(cfg.input, cfg, "input")
    if x is None:
        assert cfg.input.shape is not None
        rng = rng_for(cfg.seed, "input")
        if cfg.input.integers is None:
            x = rng.standard_normal(cfg.input.shape)
        else:
            x = rng.integers(0, cfg.input.integers, cfg.input.shape)
    if x.ndim < 2:
        raise ShapeError(
            f"the input needs a batch axis: shape (batch, features...), got {x.shape}",
            file=cfg.source,
            field="input",
        )
    if x.size == 0:
        raise ConfigError(
            f"the input is empty (shape {x.shape}): there is nothing to check",
            file=cfg.source,
            field="input",
        )
    if shape is None:
        plan.add("input", float(x.nbytes), "input")
    bad = first_nonfinite(x)
    if bad:
        raise ConfigError(f"the input is not finite: {bad}", file=cfg.source, field="input")
    x = x.astype(cfg.dtype, copy=False) if cfg.input.integers is None else _integer_ids(x, cfg)
    layers: list[Any] = []
    labels: list[str] = []
    trusted: list[bool] = []
    out = x
    net = Network(
        layers, None, labels=labels, trusted=trusted, name=cfg.name,
        discrete=cfg.input.integers is not None,
    )  # fmt: skip
    for i, spec in enumerate(cfg.layers):
        field = f"layers[{i}]"
        try:
            if spec.fn is not None:  # a function pair: gradcheck_cli/functions/check.py
                from gradcheck_cli.functions.check import layer_factory

                cls: Any = layer_factory(spec.fn, cfg.base_dir, field)
            else:
                cls = resolve(spec.type, "layer", cfg.base_dir)
            in_shape = tuple(out.shape[1:])
            est = estimate_layer(cls, in_shape, spec.args)
            if est is not None:
                n_params, out_shape = est
                plan.add(f"layer {i} ({spec.type}) parameters", n_params * out.itemsize, field)
                plan.add(
                    f"layer {i} output", array_bytes((out.shape[0], *out_shape), cfg.dtype), field
                )
            data_bytes = getattr(cls, "data_bytes", None)  # an fn: entry's data files
            if callable(data_bytes):
                plan.add(f"layer {i} ({spec.type}) data", data_bytes(spec.args), field)
            work = estimate_workspace(cls, in_shape, spec.args)
            if work:
                plan.peak(
                    f"layer {i} temporaries", float(out.shape[0]) * work * out.itemsize, field
                )
            layer = instantiate(
                cls,
                f"layer {i} ({spec.type})",
                spec.args,
                input_shape=tuple(out.shape[1:]),
                rng=rng_for(cfg.seed, f"layer{i}"),
                dtype=cfg.dtype,
                base_dir=cfg.base_dir,
            )
            check_layer_contract(layer, f"layer {i} ({spec.type})")
            if est is None:
                n_bytes = sum(float(np.asarray(v).nbytes) for v in layer.params.values())
                plan.add(f"layer {i} ({spec.type}) parameters", n_bytes, field)
            layers.append(layer)
            labels.append(spec.type)
            trusted.append(not is_plugin(spec.type))
            try:
                out = net.forward(out, start=i) if i else net.forward(x)
            except PluginError as exc:
                if any(w in str(exc) for w in ("shape", "align", "broadcast", "dimension")):
                    own = ", ".join(f"{k} {np.shape(v)}" for k, v in layer.params.items())
                    raise ShapeError(
                        f"layer {i} ({spec.type}) cannot take input of shape {net.inputs[i].shape}"
                        + (f" (its parameters: {own})" if own else "")
                        + f": {exc.message}"
                    ) from exc
                raise
            check_output_dtype(net, i, net.inputs[i], out)
            if est is None:
                plan.add(f"layer {i} output", float(out.nbytes), field)
            bad = first_nonfinite(out)
            if bad:
                raise NumericError(
                    f"the output of layer {i} ({spec.type}) is not finite though its input is: "
                    f"{bad}" + (f" ({'; '.join(net.fp.notes())})" if net.fp.counts else ""),
                    hint="no gradient can be checked where the loss is not finite; "
                    "use smaller inputs or initial weights",
                )
        except GradcheckError as err:
            if i and isinstance(err, ShapeError) and err.hint and "the input" in err.hint:
                # Not the config's input: the previous layer's output is what does not fit.
                prev = f"layers[{i - 1}] ({cfg.layers[i - 1].type})"
                hint = err.hint.replace("flatten the input first", "add {type: flatten} before it")
                hint = hint.replace("give the input a", "change the layers before it to output a")
                err.hint = f"{prev} outputs per-sample shape {tuple(out.shape[1:])}; {hint}"
            raise _context(err, cfg, field) from err.__cause__
    net.loss, net.loss_label, net.target = _build_loss(cfg, out, plan)
    net.x = x
    if cfg.loss is not None:
        try:
            check_loss_behaviour(net)
        except GradcheckError as err:
            raise _context(err, cfg, "loss") from err.__cause__
    try:
        loss = net.loss_value(x)
    except GradcheckError as err:
        raise _context(err, cfg, "loss") from err.__cause__
    if _is_number(loss) and not np.isfinite(np.asarray(loss, dtype=complex)).all():
        raise _context(net.explain_nonfinite(x, loss), cfg, "loss")
    return net


def _is_number(v: Any) -> bool:
    try:
        np.asarray(v, dtype=complex)
    except (TypeError, ValueError):
        return False
    return np.size(v) == 1


def _integer_ids(x: Array, cfg: Config) -> Array:
    """Given ids (input.values/file with input.integers) as int64, each in [0, integers)."""
    n = cfg.input.integers
    assert n is not None
    if not np.all(x == np.round(x)) or x.min() < 0 or x.max() >= n:
        raise ConfigError(
            f"input ids must be integers in 0…{n - 1} (input.integers is {n})",
            file=cfg.source,
            field="input",
        )
    return x.astype(np.int64)


def _build_loss(
    cfg: Config, out: Array, plan: MemoryPlan | None = None
) -> tuple[Any, str, Array | None]:
    tgt = cfg.target
    if cfg.loss is None:
        if tgt.kind != "none":
            raise ConfigError(
                f"target.kind is '{tgt.kind}' but there is no loss",
                file=cfg.source,
                field="target.kind",
                hint="add a loss (e.g. loss: {type: softmax_cross_entropy}) or drop the target",
            )
        g = rng_for(cfg.seed, "upstream").standard_normal(out.shape).astype(cfg.dtype)
        return WeightedSum(g), "Σ out⊙g", None
    label = cfg.loss.type
    try:
        if cfg.loss.fn is not None:  # a loss function: gradcheck_cli/functions/check.py
            from gradcheck_cli.functions.check import loss_factory

            cls: Any = loss_factory(cfg.loss.fn, cfg.base_dir, "loss")
            if plan is not None:  # its data files, before they are read
                plan.add("loss data", cls.data_bytes(cfg.loss.args), "loss.data")
        else:
            cls = resolve(label, "loss", cfg.base_dir)
        loss = instantiate(cls, f"loss ({label})", cfg.loss.args)
        check_loss_contract(loss, f"loss ({label})")
    except GradcheckError as err:
        raise _context(err, cfg, "loss") from err.__cause__
    kinds = getattr(cls, "target_kinds", None)
    if label in LOSSES and kinds is not None and tgt.kind not in kinds:
        raise ConfigError(
            f"loss '{label}' needs a target of kind {' or '.join(kinds)}, got '{tgt.kind}'",
            file=cfg.source,
            field="target.kind",
        )
    return loss, label, _build_target(cfg, tgt, out, loss)


def _build_target(cfg: Config, tgt: TargetSpec, out: Array, loss: Any = None) -> Array | None:
    if tgt.kind == "none":
        return None
    given = load_array(tgt, cfg, "target")
    if tgt.kind == "classes" and getattr(loss, "per_position_targets", False):
        return _position_labels(cfg, tgt, out, given, getattr(loss, "ignore_index", None))
    if tgt.kind == "classes":
        if out.ndim != 2:
            raise ShapeError(
                f"class targets need a network output of shape (batch, classes), got {out.shape}",
                file=cfg.source,
                field="target",
                hint="for per-position logits (batch, time, classes) use "
                "loss: {type: sequence_cross_entropy}"
                if out.ndim > 2
                else None,
            )
        width = out.shape[1]
        if tgt.classes is not None and tgt.classes != width:
            raise ShapeError(
                f"target.classes is {tgt.classes} but the network outputs {width} columns "
                f"(output shape {out.shape})",
                file=cfg.source,
                field="target.classes",
                hint=f"set classes: {width}, or make the last layer output {tgt.classes}",
            )
        if given is None:
            labels: Array = np.asarray(
                rng_for(cfg.seed, "target").integers(0, width, size=out.shape[0])
            )
            return labels
        if given.shape != (out.shape[0],) or np.any(given != np.round(given)):
            raise ShapeError(
                f"class labels must be {out.shape[0]} integers (one per sample), got shape {given.shape}",
                file=cfg.source,
                field="target",
            )
        if given.min() < 0 or given.max() >= width:
            raise ConfigError(
                f"class labels must lie in 0…{width - 1}, got {int(given.min())}…{int(given.max())}",
                file=cfg.source,
                field="target",
            )
        return given.astype(int)
    if given is None:
        rng = rng_for(cfg.seed, "target")
        draw = getattr(loss, "random_target", None)  # a loss may say what a fitting target is
        values = draw(rng, out.shape) if callable(draw) else rng.standard_normal(out.shape)
        return np.asarray(values).astype(cfg.dtype)
    if given.shape != out.shape:
        raise ShapeError(
            f"target values have shape {given.shape} but the network output has shape {out.shape}",
            file=cfg.source,
            field="target",
        )
    return given.astype(cfg.dtype)


def _position_labels(
    cfg: Config, tgt: TargetSpec, out: Array, given: Array | None, ignore: int | None
) -> Array:
    """Class labels (N, T) for logits (N, T, C) (any (N, …, C)): random, or given integers in
    0…C−1 or equal to the loss's ignore_index."""
    if out.ndim < 2:
        raise ShapeError(
            f"per-position class targets need logits of shape (batch, …, classes), got {out.shape}",
            file=cfg.source,
            field="target",
        )
    width, lead = out.shape[-1], out.shape[:-1]
    if tgt.classes is not None and tgt.classes != width:
        raise ShapeError(
            f"target.classes is {tgt.classes} but the network outputs {width} classes "
            f"(output shape {out.shape})",
            file=cfg.source,
            field="target.classes",
            hint=f"set classes: {width}, or make the last layer output {tgt.classes}",
        )
    if given is None:
        labels: Array = np.asarray(rng_for(cfg.seed, "target").integers(0, width, size=lead))
        return labels
    if given.shape != lead or np.any(given != np.round(given)):
        raise ShapeError(
            f"class labels must be integers of shape {lead} (one per position), got shape "
            f"{given.shape}",
            file=cfg.source,
            field="target",
        )
    valid = ((given >= 0) & (given < width)) | (given == ignore)
    if not valid.all():
        bad = given[~valid][0]
        also = f" or {ignore} (ignore_index)" if ignore is not None else ""
        raise ConfigError(
            f"class labels must lie in 0…{width - 1}{also}, got {bad:g}",
            file=cfg.source,
            field="target",
        )
    return given.astype(np.int64)

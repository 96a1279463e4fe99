"""CheckOptions: every setting of a check, validated once, however it was given.

A config's ``check:`` section is a :class:`CheckSpec`; CLI flags over a config, the Python API and
the pytest plugin build a :class:`CheckOptions` (the spec plus what only a caller sets) through
:meth:`CheckOptions.build`, so all of them meet the same rules and the same messages. The checker
takes nothing else. Defaults live here: :meth:`CheckOptions.resolved` fills in ε, tolerances and
the mode's sizes for the dtype a check runs in, and that resolved copy is what the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gradcheck_cli.defaults import (  # the constants are re-exported: callers know them here
    CHUNK_BYTES,
    DEFAULT_EPS,
    DEFAULT_PROBES,
    DEFAULT_RTOL,
    DEFAULT_SAMPLES,
    KEEP_WORST,
    MAX_EPS,
    MAX_PROBES,
    MAX_SAMPLES,
    MODE_SIZES,
    Method,
    Mode,
    ModeChoice,
    Resolving,
)
from gradcheck_cli.errors import ConfigError

#: Allowed range of each real-valued option, and how to say it.
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "eps": (lambda v: 0 < v <= MAX_EPS, f"the step ε must lie in (0, {MAX_EPS:g}]"),
    "rtol": (lambda v: 0 <= v <= 1, "must lie in [0, 1]"),
    "atol": (lambda v: v >= 0, "must be >= 0"),
    "budget": (lambda v: v > 0, "must be > 0 seconds"),
    "resolution": (lambda v: 0 < v < 1, "must lie in (0, 1): the relative size of bug to see"),
}


class CheckSpec(ModeChoice, BaseModel):
    """How to check: method, step, tolerances, which tensors, how much (mode, samples, probes,
    budget). A config's ``check:`` section; None means "the default for this method and dtype"."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    method: Method = "central"
    eps: float | None = None
    rtol: float | None = None
    atol: float | None = None
    inputs: bool = True
    strict: bool = False
    mode: Mode | None = None
    samples: int | None = Field(default=None, ge=1, le=MAX_SAMPLES)
    probes: int | None = Field(default=None, ge=1, le=MAX_PROBES)
    budget: float | None = None
    #: Relative size of bug a pass promises to see: every checked entry's numerical error bound
    #: must be below resolution × the tensor's largest gradient, else the step is adapted and,
    #: if nothing resolves it, the verdict is "inconclusive". None: 10 × rtol.
    resolution: float | None = None
    #: Parameter-name glob patterns (``*.W``, ``0.*``, ``input``); see gradcheck_cli/plan/selection.py.
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    @field_validator("eps", "rtol", "atol", "budget", "resolution", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        # Strict mode refuses ints for floats; 1 is as good a budget as 1.0 (bools are not numbers).
        if isinstance(v, int) and not isinstance(v, bool):
            try:
                return float(v)
            except OverflowError:
                raise ValueError(f"number too large ({len(str(v))} digits)") from None
        return v

    @field_validator("eps", "rtol", "atol", "budget", "resolution")
    @classmethod
    def _in_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None:
            return v
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
        inside, rule = _RANGES[info.field_name or ""]
        if not inside(v):
            raise ValueError(f"{rule}, got {v:g}")
        return v

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _patterns(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError("give a non-empty list of glob patterns, e.g. ['*.W']")
        if not all(isinstance(p, str) and p.strip() for p in v):
            raise ValueError(f"patterns must be non-empty strings, got {list(v)!r}")
        return tuple(v)

    @model_validator(mode="after")
    def _consistent(self) -> CheckSpec:
        if self.samples is not None and self.mode not in ("sample", "auto", None):
            raise ValueError(f"samples applies to mode sample (or auto), not mode {self.mode}")
        if self.probes is not None and self.mode not in ("directional", "sample", "auto", None):
            raise ValueError(
                f"probes applies to mode directional or sample (or auto), not mode {self.mode}"
            )
        return self


class CheckOptions(Resolving, CheckSpec):
    """A :class:`CheckSpec` plus what only the caller of a check sets."""

    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    #: Worst entries kept per tensor.
    top: int = Field(default=KEEP_WORST, ge=0, le=10_000)
    #: Re-check each layer on its own to name the one at fault when a network check fails.
    attribute: bool = True
    #: Integer inputs are ids (no input gradient): None = only when the network says so (a
    #: config's ``input.integers``, or a first layer that takes ids such as ``embedding``).
    discrete: bool | None = None
    chunk_bytes: int = Field(default=CHUNK_BYTES, ge=1)
    #: Where ε came from, for the report: "default", "config", "--eps"/"given", or why a
    #: config's ε was not used (it belongs to another method).
    eps_source: str | None = None

    @classmethod
    def build(
        cls,
        base: CheckSpec | None = None,
        *,
        flags: bool = False,
        **given: Any,
    ) -> CheckOptions:
        """Options from keyword arguments over ``base`` (a config's ``check:``): a value of
        None takes the base's. A method given without ``eps`` drops the base's ε (it belongs to
        the base's method). Errors are :class:`ConfigError` naming the option (``--name`` when
        ``flags``)."""
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown check option '{unknown[0]}'",
                field=unknown[0],
                hint=f"options are: {', '.join(cls.model_fields)}",
            )
        values = dict(base.model_dump(exclude_unset=True)) if base is not None else {}
        given = {k: v for k, v in given.items() if v is not None}
        if values.get("eps") is not None and "eps_source" not in values:
            values["eps_source"] = "config"
        if "method" in given and "eps" not in given and values.get("eps") is not None:
            dropped, old = values.pop("eps"), values.get("method", "central")
            values["eps_source"] = f"default; the config's ε={dropped:g} is for {old}"
        if "eps" in given:
            values["eps_source"] = "--eps" if flags else "given"
        if "mode" in given:  # the base's sizes belong to the base's mode, as its ε to its method
            uses = MODE_SIZES.get(given["mode"], ())
            for key in ("samples", "probes"):
                if key not in given and key not in uses:
                    values.pop(key, None)
        values.update(given)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise option_error(exc, flags) from None


def option_error(exc: ValidationError, flags: bool = False) -> ConfigError:
    """A ConfigError for the first problem of ``exc``, naming the option as given."""
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "mode"
    msg = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] == "literal_error":
        msg = f"{msg}, got {value!r}"
    elif first["loc"] and first["type"] != "value_error" and not isinstance(value, Mapping):
        msg = f"{msg} (got {value!r})"
    hint = None
    if name == "eps":
        hint = "ε is an absolute step; 1e-5 suits float64, 1e-3 float32"
    return ConfigError(msg, field=f"--{name}" if flags else name, hint=hint)


__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_EPS",
    "DEFAULT_PROBES",
    "DEFAULT_RTOL",
    "DEFAULT_SAMPLES",
    "KEEP_WORST",
    "MAX_EPS",
    "MAX_PROBES",
    "MAX_SAMPLES",
    "MODE_SIZES",
    "CheckOptions",
    "CheckSpec",
    "Method",
    "Mode",
    "option_error",
]

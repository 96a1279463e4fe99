"""The defaults and limits of a check's options, and the methods the options share, without
pydantic: the default `gradcheck run` (spec/builtin.py) and the engine read them without importing
it. The validated models are gradcheck_cli/options.py (which re-exports these names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from typing_extensions import Self

Method = Literal["central", "forward", "five-point", "complex"]
Mode = Literal["full", "sample", "directional", "auto"]

#: Largest finite-difference step accepted. ε is an absolute step; at ε ~ 1 the central
#: difference of any curved function measures curvature, not slope (truncation ε²·f'''/6 is
#: O(1)), so a larger value is a typo (1e5 for 1e-5), not a choice.
MAX_EPS = 1.0
#: Upper bounds for ``samples`` and ``probes`` per tensor: far more than any check needs (a wrong
#: backward shows up in a handful), small enough that a typo cannot plan days of work.
MAX_SAMPLES = 100_000
MAX_PROBES = 10_000
#: Default ε per method and dtype: near each method's optimum for O(1) scales (error model table).
DEFAULT_EPS = {
    ("central", "float64"): 1e-5,
    ("central", "float32"): 1e-3,
    ("forward", "float64"): 1e-8,
    ("forward", "float32"): 3e-4,
    ("five-point", "float64"): 1e-3,
    ("five-point", "float32"): 1e-2,
    ("complex", "float64"): 1e-20,
    ("complex", "float32"): 1e-20,
}
#: Relative tolerance per (method, dtype of the network): the smallest relative gradient error
#: we promise to catch (calibration: benchmarks/calibrate_tolerance.py). A float32 network is
#: compared against float64 numerics, so its rtol reflects float32 round-off in the backward.
DEFAULT_RTOL = {
    ("central", "float64"): 1e-7,
    ("five-point", "float64"): 1e-7,
    ("forward", "float64"): 1e-5,
    ("complex", "float64"): 1e-11,
    ("central", "float32"): 1e-5,
    ("five-point", "float32"): 1e-5,
    ("forward", "float32"): 1e-5,
    ("complex", "float32"): 1e-5,
}
#: Entries per tensor in sample mode, probes per tensor in directional mode.
DEFAULT_SAMPLES = 16
DEFAULT_PROBES = 2
#: How many of the worst entries a result keeps by default.
KEEP_WORST = 5
#: Memory the engine may use for perturbed copies at once.
CHUNK_BYTES = 64 * 2**20


#: The per-tensor sizes each mode reads (``samples``, ``probes``).
MODE_SIZES = {
    "sample": ("samples", "probes"),  # sample mode also runs directional probes
    "directional": ("probes",),
    "auto": ("samples", "probes"),
}


class ModeChoice:
    """``chosen_mode`` of a check spec (CheckSpec and its pre-validated record)."""

    if TYPE_CHECKING:  # the fields it reads (not annotations pydantic would collect)
        mode: Mode | None
        samples: int | None
        probes: int | None

    @property
    def chosen_mode(self) -> Mode | None:
        """The mode asked for: ``samples`` selects sample mode (which also runs ``probes``
        directional probes per tensor), ``probes`` alone directional mode; otherwise ``mode``
        (None: full for small checks, else auto)."""
        if self.mode is None and self.samples is not None:
            return "sample"
        if self.mode is None and self.probes is not None:
            return "directional"
        return self.mode


class Resolving(ModeChoice):
    """``resolved`` of check options (CheckOptions and its pre-validated record)."""

    if TYPE_CHECKING:
        method: Method
        eps: float | None
        rtol: float | None
        atol: float | None
        eps_source: str | None

    def resolved(self, dtype: str, reference: str | None = None) -> Self:
        """A copy with every default filled in for a network of ``dtype`` whose numerics run in
        ``reference`` (float64 for a float32 network when its layers allow)."""
        ref = reference or dtype
        fill: dict[str, Any] = {
            "eps": DEFAULT_EPS[self.method, ref] if self.eps is None else self.eps,
            "eps_source": self.eps_source or "default",
            "rtol": DEFAULT_RTOL[self.method, dtype] if self.rtol is None else self.rtol,
            "atol": 0.0 if self.atol is None else self.atol,
            "mode": self.chosen_mode,
        }
        copy: Self = self.model_copy(update=fill)  # type: ignore[attr-defined]
        return copy

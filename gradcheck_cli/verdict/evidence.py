"""The evidence a diagnosis works on and what it reports: the result type (Diagnosis), what the
fingerprints may use besides a and n (Context), the arrays of one failing tensor with the fit test
every fingerprint passes (Data), and the words for entries and slices. See diagnosis.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array

#: Fraction of the squared disagreement a fingerprint must explain.
EXPLAINED = 0.99
@dataclass(frozen=True)
class Diagnosis:
    """The fingerprint that explains a failing tensor: ``kind`` (missing, spurious, mask, sign,
    scale, transpose, layout, param_term, axis, few_entries), its fitted ``params`` (e.g.
    ``factor``, ``lambda``, ``axis``), the fraction of Σ(a − n)² it explains, and a sentence."""

    kind: str
    params: dict[str, Any]
    explained: float
    sentence: str


@dataclass(frozen=True)
class Context:
    """What the fingerprints may use besides a and n."""

    name: str  # report name, e.g. "0.linear.W" or "input"
    theta: Array | None = None  # the tensor's values (the parameter, or the input x)
    batch: int | None = None  # N, the batch size
    outputs: int | None = None  # elements of the network output (what the loss reduces over)
    #: Other sizes of the problem a factor may equal, in the user's terms: (size, what it is),
    #: e.g. (3, "the number of outputs per sample"), (12, "the sequence length T")
    #: (``problem_sizes``).
    sizes: tuple[tuple[int, str], ...] = ()


def problem_sizes(x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    """The sizes a constant factor in a gradient is most often equal to, named as a user knows
    them: from the prediction the loss reduces over (the network's output; for a function that
    returns the loss itself, its first array argument, e.g. CS231n's scores x of svm_loss):
    (N, K) → the number of outputs (classes) per sample K; (N, T, D) → the sequence length T and
    the features per step D. The batch size N and the number of elements are ``Context.batch``
    and ``Context.outputs``."""
    pred = out_shape if len(out_shape) >= 2 else x_shape
    out: list[tuple[int, str]] = []
    if len(pred) == 2:
        out.append((int(pred[1]), "the number of outputs (classes) per sample"))
    elif len(pred) == 3:
        out += [(int(pred[1]), "the sequence length T"), (int(pred[2]), "the features per step")]
    return tuple((v, w) for v, w in out if v >= 2)


@dataclass
class Data:
    a: Array  # analytic, float64, tensor-shaped
    n: Array  # numeric, NaN where not checked
    tol: Array  # tolerance, NaN where not checked, inf at kinks
    known: Array  # n checked (bool)
    use: Array  # n checked and a reference (not a kink)
    d: Array  # a − n, 0 where not known
    total: float  # Σ d² over ``use``
    fail: Array  # |a − n| > tol
    ctx: Context

    @property
    def full(self) -> bool:
        return bool(self.known.all())

    def explained(self, residual: Array) -> float:
        return 1.0 - float(np.sum(np.where(self.use, residual, 0.0) ** 2)) / self.total

    def fits(self, residual: Array, tol: Array | None = None, fitted: int = 0) -> float | None:
        """The explained fraction when ``residual`` = a − model (tensor-shaped, compared where
        ``use``) is within the tolerance everywhere and explains enough, and the model is
        confirmed: it departs from n by more than the tolerance on at least ``fitted`` + 2
        entries (a model with as many numbers as entries it explains is no evidence)."""
        t = self.tol if tol is None else tol
        inside = ~self.use | (np.abs(residual) <= t)
        if not inside.all():
            return None
        departs = self.use & (np.abs(self.d - residual) > np.where(self.use, self.tol, np.inf))
        if int(departs.sum()) < fitted + 2:
            return None
        share = self.explained(residual)
        return share if share >= EXPLAINED else None


def idx(flat: int, shape: tuple[int, ...]) -> list[int]:
    return [int(i) for i in np.unravel_index(flat, shape)] if shape else []


def in_words(mask: Array, limit: int = 5) -> str:
    """The entries of ``mask`` in words: 'entry [0, 2]', or '7 entries: [0, 1], [2, 3], …'."""
    flat = np.flatnonzero(mask)
    shown = ", ".join(str(idx(int(j), mask.shape)) for j in flat[:limit])
    more = ", …" if len(flat) > limit else ""
    return f"entry {shown}" if len(flat) == 1 else f"{len(flat)} entries: {shown}{more}"


def slices(mask: Array, cover: Array) -> tuple[int, list[int]] | None:
    """The fewest whole slices along one axis (``cover`` true on all of each) that contain every
    entry of ``mask``: (axis, slice indices), or None when no axis does it with fewer slices than
    the axis has."""
    best: tuple[int, list[int]] | None = None
    for k in range(mask.ndim):
        if mask.shape[k] < 2 or mask.ndim < 2:
            continue
        others = tuple(i for i in range(mask.ndim) if i != k)
        hit = np.flatnonzero(mask.any(axis=others))
        whole = np.asarray(cover.all(axis=others))
        if len(hit) == mask.shape[k] or not whole[hit].all():
            continue
        if best is None or len(hit) < len(best[1]):
            best = (k, [int(i) for i in hit])
    return best


def slice_words(axis: int, hit: list[int], ndim: int) -> str:
    """'row 2 (axis 0)', 'columns 1, 3 (axis 1)', 'channel 0', 'index 2 of axis 3'."""
    which = ", ".join(map(str, hit))
    if ndim == 2:
        word = "row" if axis == 0 else "column"
        return f"{word}{'s' if len(hit) > 1 else ''} {which} (axis {axis})"
    if axis == 1:
        return f"channel{'s' if len(hit) > 1 else ''} {which}"
    return f"index {which} of axis {axis}"


# -- fingerprints -------------------------------------------------------------------------------

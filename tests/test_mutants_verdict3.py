"""The diagnosis of a failing gradient, fingerprint by fingerprint (issue 28): for each known
bug shape the kind, the fitted numbers and the words a user reads, and the near misses that must
not be given that fingerprint. Pure NumPy on arrays (``diagnose``): milliseconds per test."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.verdict.diagnosis import Context, diagnose

TOL = 1e-6


def _n(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A numeric gradient with every entry well away from 0 (|n| ≥ 0.5)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.5, 2.0, shape)
    return v * np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _tol(n: np.ndarray) -> np.ndarray:
    return np.full(n.shape, TOL)


# -- zeros: missing, spurious, mask -------------------------------------------------------------


def test_zero_where_l_changes_and_nonzero_where_it_is_flat_is_a_mask() -> None:
    n = _n((4, 5))
    n[0, 1] = n[3, 3] = 0.0
    a = n.copy()
    a[2, 2] = a[1, 4] = 0.0  # missing where L changes
    a[0, 1] = a[3, 3] = 0.7  # spurious where L is flat
    found = diagnose(a, n, _tol(n), Context("W"))
    assert found is not None and found.kind == "mask", found
    assert found.params == {"missing": 2, "spurious": 2}
    assert "0 at 2 entries: [1, 4], [2, 2] where L changes" in found.sentence
    assert "nonzero at 2 entries: [0, 1], [3, 3] where L is flat" in found.sentence


def test_a_gradient_zero_everywhere_is_missing_everywhere() -> None:
    n = _n((3, 4))
    found = diagnose(np.zeros_like(n), n, _tol(n), Context("W"))
    assert found is not None and found.kind == "missing"
    assert found.params == {"entries": 12, "where": "everywhere"}
    assert found.sentence.startswith("W is 0 everywhere while the numeric gradient is not")


def test_a_gradient_missing_on_one_row_is_named_by_its_row() -> None:
    n = _n((4, 5))
    a = n.copy()
    a[2] = 0.0
    found = diagnose(a, n, _tol(n), Context("W"))
    assert found is not None and found.kind == "missing"
    assert found.params == {"entries": 5, "axis": 0, "slices": [2]}
    assert "W is 0 on row 2 (axis 0) where the numeric gradient is not" in found.sentence


def test_a_gradient_missing_at_scattered_entries_is_named_by_its_entries() -> None:
    n = _n((4, 5))
    a = n.copy()
    a[0, 0] = a[1, 3] = a[3, 1] = 0.0
    found = diagnose(a, n, _tol(n), Context("W"))
    assert found is not None and found.kind == "missing"
    assert found.params == {"entries": 3}
    assert "W is 0 on 3 entries: [0, 0], [1, 3], [3, 1] where" in found.sentence


def test_a_gradient_where_l_is_flat_is_spurious() -> None:
    n = _n((6,))
    n[[1, 4]] = 0.0
    a = n.copy()
    a[[1, 4]] = [0.3, -2.0]
    found = diagnose(a, n, _tol(n), Context("b"))
    assert found is not None and found.kind == "spurious"
    assert found.params == {"entries": 2}
    assert "b is nonzero at 2 entries: [1], [4] where L does not change" in found.sentence


def test_zeros_that_leave_most_of_the_disagreement_unexplained_are_not_a_mask() -> None:
    """One entry missing (error 1) but every other entry off by 0.5: the zero explains ~8 % of
    Σ(a − n)², far below 99 %: not "missing"."""
    n = np.full(6, 1.0)
    a = n + 0.5
    a[0] = 0.0
    found = diagnose(a, n, _tol(n), Context("b"))
    assert found is None or found.kind != "missing", found


# -- a constant factor: named when it is a size of the problem ----------------------------------


@pytest.mark.parametrize(
    "factor, ctx, kind, named, words",
    [
        (8.0, Context("W", batch=8), "scale", "8 = N, the batch size", "a missing 1/N"),
        (1 / 8, Context("W", batch=8), "scale", "0.125 = 1/N (N = 8, the batch size)",
         "did you average over the batch where the loss sums?"),
        (2.0, Context("W", batch=2), "scale", "2", "an extra factor 2 (e.g. d(r²)/dr = 2r"),
        (0.5, Context("W", batch=8), "scale", "0.5", "a factor 2 missing"),
        (3.0, Context("W", batch=8, sizes=((3, "the number of outputs (classes) per sample"),)),
         "scale", "3 = 3, the number of outputs (classes) per sample",
         "a missing 1/3: a loss that averages over the number of outputs"),
        (1 / 3, Context("W", batch=8, sizes=((3, "the sequence length T"),)), "scale",
         "0.3333 = 1/3 (one over the sequence length T)", "a mean over the sequence length T"),
        (2.0, Context("W", batch=8, sizes=((2, "the features per step"),)), "scale",
         "2 = 2, the features per step", "(or an extra factor 2, e.g. d(r²)/dr = 2r applied"),
        (8.0, Context("W", batch=8, sizes=((8, "the sequence length T"),)), "scale",
         "8 = N, the batch size", "a missing 1/N"),
        (12.0, Context("W", batch=4, outputs=12), "scale",
         "12, the number of output elements", "a missing 1/n of a loss that averages over every"),
        (1 / 12, Context("W", batch=4, outputs=12), "scale",
         "0.08333 = 1/12, one over the number of output elements", "a mean over every element"),
        (-1.0, Context("W", batch=8), "sign", None, "the sign is flipped"),
    ],
)  # fmt: skip
def test_a_constant_factor_is_named_by_the_size_it_equals(
    factor: float, ctx: Context, kind: str, named: str | None, words: str
) -> None:
    n = _n((8, 3))
    found = diagnose(factor * n, n, _tol(n), ctx)
    assert found is not None and found.kind == kind, found
    assert found.params["factor"] == factor
    if named is not None:
        assert found.params["named"] == named
    assert words in found.sentence


@pytest.mark.parametrize("outputs", [8, 2, 3])
def test_the_number_of_outputs_is_not_named_when_it_is_another_size(outputs: int) -> None:
    """outputs = N (batch 8), outputs ≤ 2, or outputs equal to a named size: a factor equal to
    it is never called "the number of output elements"."""
    ctx = Context("W", batch=8, outputs=outputs, sizes=((3, "the sequence length T"),))
    n = _n((8, 3))
    found = diagnose(float(outputs) * n, n, _tol(n), ctx)
    assert found is not None and found.kind == "scale"
    assert "output elements" not in found.sentence


@pytest.mark.parametrize("factor", [0.37, -0.37, 5.5])
def test_an_unnamed_factor_is_reported_with_its_value(factor: float) -> None:
    n = _n((4, 5))
    found = diagnose(factor * n, n, _tol(n), Context("W", batch=4))
    assert found is not None and found.kind == "scale"
    assert found.params == {"factor": pytest.approx(factor, rel=1e-12)}
    assert f"W ≈ {factor:.6g} × numeric everywhere" in found.sentence
    assert found.sentence.endswith("and the sign flipped)" if factor < 0 else "a step?)")


def test_a_named_factor_tolerates_the_scaled_tolerance_only() -> None:
    """a = 8·n + δ: the model scales n by 8, so its residual may be up to 8·tol per entry (the
    tolerance scaled like the model); 9·tol is beyond it."""
    n = _n((8, 3))
    sign = np.where(np.random.default_rng(1).random(n.shape) < 0.5, -1.0, 1.0)
    ok = diagnose(8 * n + 7.5 * TOL * sign, n, _tol(n), Context("W", batch=8))
    assert ok is not None and ok.kind == "scale" and ok.params["factor"] == 8.0
    off = diagnose(8 * n + 9 * TOL * sign, n, _tol(n), Context("W", batch=8))
    assert off is None or off.params.get("factor") != 8.0, off


# -- layout, parameter terms, axes, few entries --------------------------------------------------


def test_a_transposed_square_gradient_is_a_transpose() -> None:
    n = _n((4, 4))
    found = diagnose(n.T.copy(), n, _tol(n), Context("W"))
    assert found is not None and found.kind == "transpose"
    assert found.sentence.startswith("W = numericᵀ: the gradient is transposed")


def test_a_permuted_and_a_flipped_gradient_are_layouts() -> None:
    n = _n((2, 3, 4))
    found = diagnose(np.ascontiguousarray(n.transpose(0, 2, 1)).reshape(2, 3, 4), n,
                     _tol(n), Context("x"))  # fmt: skip
    assert found is not None and found.kind == "layout"
    assert found.params["map"].startswith("numeric.")
    assert "the right values in the wrong layout" in found.sentence
    k = _n((3, 3, 2, 2))
    flipped = diagnose(np.flip(k, (2, 3)).copy(), k, _tol(k), Context("W"))
    assert flipped is not None and flipped.kind == "layout"
    assert flipped.params == {"map": "numeric flipped along axes (2, 3)"}
    assert "a kernel flipped by 180°" in flipped.sentence


def test_layouts_are_tried_up_to_four_axes_and_need_every_entry() -> None:
    n5 = _n((2, 2, 2, 2, 3))
    found = diagnose(np.flip(n5, 4).copy(), n5, _tol(n5), Context("x"))
    assert found is None or found.kind not in ("layout", "transpose"), found
    n = _n((4, 4))
    part = n.copy()
    part[0, 0] = np.nan  # one entry not checked
    found = diagnose(n.T.copy(), part, _tol(n), Context("W"))
    assert found is None or found.kind != "transpose", found


@pytest.mark.parametrize("lam", [0.01, -0.02])
def test_a_weight_decay_term_is_named_with_its_lambda(lam: float) -> None:
    n = _n((4, 5))
    theta = _n((4, 5), seed=3)
    found = diagnose(n + lam * theta, n, _tol(n), Context("W", theta=theta))
    assert found is not None and found.kind == "param_term"
    assert found.params == {"lambda": pytest.approx(lam, rel=1e-9), "form": "θ"}
    why = "the backward adds" if lam > 0 else "the loss has a weight-decay"
    assert why in found.sentence and f"λ = {lam:.4g}" in found.sentence


def test_an_l1_term_on_the_input_is_named_in_x() -> None:
    n = _n((4, 5))
    theta = _n((4, 5), seed=3) * np.linspace(0.1, 3, 20).reshape(4, 5)
    found = diagnose(n + 0.05 * np.sign(theta), n, _tol(n), Context("input", theta=theta))
    assert found is not None and found.kind == "param_term"
    assert found.params["form"] == "sign(x)"
    assert "input − numeric ≈ λ·sign(x) with λ = 0.05: the backward adds an L1 term" in (
        found.sentence
    )


def test_an_offset_constant_along_an_axis_is_named_by_the_axis() -> None:
    n = _n((4, 5))
    off = np.linspace(0.2, 1.0, 5)  # the same for every row: does not vary along axis 0
    found = diagnose(n + off, n, _tol(n), Context("input"))
    assert found is not None and found.kind == "axis" and found.params == {"axis": 0}
    assert "input − numeric does not vary along axis 0 (the batch axis)" in found.sentence
    found = diagnose(n + off[:4, None], n, _tol(n), Context("W"))  # constant along axis 1
    assert found is not None and found.kind == "axis" and found.params == {"axis": 1}
    assert "W − numeric does not vary along axis 1:" in found.sentence


@pytest.mark.parametrize("count, few", [(1, True), (2, True), (4, True), (5, False)])
def test_a_few_wrong_entries_are_named_up_to_four(count: int, few: bool) -> None:
    n = _n((5, 6))
    a = n.copy()
    where = [(0, 1), (2, 3), (4, 0), (1, 5), (3, 2)][:count]
    for i, j in where:
        a[i, j] += 0.9
    found = diagnose(a, n, _tol(n), Context("W"))
    if few:
        assert found is not None and found.kind == "few_entries", found
        assert found.params == {"entries": sorted([list(w) for w in where])}
        assert "the error of W is confined to" in found.sentence
    else:
        assert found is None or found.kind != "few_entries", found


@pytest.mark.parametrize("rows, few", [([1], True), ([0, 4], True), ([0, 2, 4], False)])
def test_whole_wrong_rows_are_few_up_to_two_and_a_third_of_the_axis(
    rows: list[int], few: bool
) -> None:
    n = _n((6, 4))
    a = n.copy()
    a[rows] += np.linspace(0.5, 1.5, 4)[::-1] * np.arange(1, len(rows) + 1)[:, None] ** 0.5
    found = diagnose(a, n, _tol(n), Context("W"))
    if few:
        assert found is not None and found.kind == "few_entries", found
        assert found.params == {"axis": 0, "slices": rows}
        which = ", ".join(map(str, rows))
        assert f"confined to row{'s' if len(rows) > 1 else ''} {which} (axis 0)" in found.sentence
    else:
        assert found is None or found.kind != "few_entries", found

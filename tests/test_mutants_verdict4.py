"""Survivors of the verdict-room mutation sample (issue 28, seed 28): each test pins a behaviour
a mutant changed without any test noticing. Small and quick: NumPy on arrays, or one tiny check."""

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


# -- diagnosis -----------------------------------------------------------------------------------


def test_exact_agreement_at_zero_tolerance_is_nothing_to_diagnose() -> None:
    """A tolerance of 0 occurs where a, n and every bound are 0 (a dead unit): a = n there is
    agreement, not a failure to explain."""
    n = np.array([0.0, 0.0, 1.0, -2.0])
    assert diagnose(n.copy(), n, np.array([0.0, 0.0, TOL, TOL]), Context("W")) is None
    z = np.zeros(4)
    assert diagnose(z.copy(), z, np.zeros(4), Context("W")) is None


@pytest.mark.parametrize("shape, axes", [((5,), (0,)), ((3, 4), (1,)), ((4, 3), (0,))])
def test_a_gradient_reversed_along_one_axis_is_a_flip(
    shape: tuple[int, ...], axes: tuple[int, ...]
) -> None:
    """A 1-D kernel reversed (convolution vs cross-correlation) or one axis reversed: a flip
    along that one axis, named by it."""
    n = _n(shape)
    found = diagnose(np.flip(n, axes).copy(), n, np.full(shape, TOL), Context("W"))
    assert found is not None and found.kind == "layout", found
    assert found.params == {"map": f"numeric flipped along axes {axes}"}


def test_an_offset_along_an_axis_needs_more_departing_entries_than_offsets_fitted() -> None:
    """a − n constant down each column: one offset per active column is fitted, so it is
    evidence only when at least (active columns + 2) entries depart from n. A (2, 1) tensor
    (1 offset, 2 entries) is not; two shifted columns of a (2, 6) tensor (2 offsets, 4 entries)
    are — the columns left alone are not fitted numbers."""
    rng = np.random.default_rng(0)
    n = rng.uniform(0.5, 2, (2, 1))
    assert diagnose(n + 0.3, n, np.full(n.shape, TOL), Context("W")) is None
    n = rng.uniform(0.5, 2, (2, 6))
    a = n.copy()
    a[:, [1, 4]] += [0.3, 0.7]
    found = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert found is not None and found.kind == "axis" and found.params == {"axis": 0}, found


def test_few_wrong_entries_are_named_only_when_every_entry_was_checked() -> None:
    """One entry not checked (numeric NaN): the error may sit there too; no "confined to"."""
    n = _n((4, 5))
    a = n.copy()
    a[1, 2] += 0.5
    full = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert full is not None and full.kind == "few_entries"
    n[3, 3] = np.nan
    assert diagnose(a, n, np.full(n.shape, TOL), Context("W")) is None

"""Every candidate mutant of verdict/noise.py (ECnoise, the noise search) and verdict/wide.py
(the 8th-order wide stencil and its bound), issue 28: the survivors of a ``--max 0`` run,
killed by behaviour: a measured level or verdict against the published algorithm, an
evaluation count, a bound that covers the real error or equals its closed form."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.verdict.noise import ecnoise, rounding_floor
from tests.test_mutants_verdict2 import Elementwise, _ecnoise_reference


@pytest.mark.parametrize("nf", [8, 10])
def test_ecnoise_calls_a_table_flat_when_exactly_half_its_differences_are_zero(nf: int) -> None:
    """Moré & Wild: h is too small when at least nf/2 of the first differences are 0. With an
    even number of values, exactly nf/2 zero differences is possible, and is flat (info 2):
    the same answer as the published code, not a noise level from the other half."""
    rng = np.random.default_rng(nf)
    steps = np.zeros(nf - 1)
    moving = rng.choice(nf - 1, nf - 1 - nf // 2, replace=False)
    steps[moving] = rng.choice([-1.0, 1.0], len(moving)) * rng.uniform(1, 2, len(moving))
    table = np.concatenate([[0.0], np.cumsum(steps)])
    assert int(np.sum(np.diff(table) == 0)) == nf // 2
    assert _ecnoise_reference([float(v) for v in table]) == (0.0, 2)
    assert ecnoise(table) == (0.0, 2)


def _sixth_difference_zero(seed: int) -> np.ndarray:
    """White noise on 7 values, the middle one set so that the 6th difference is 0."""
    f = np.random.default_rng(seed).standard_normal(7)
    c = np.array([1.0, -6.0, 15.0, -20.0, 15.0, -6.0, 1.0])  # the 6th difference's weights
    f[3] = -(c @ f - c[3] * f[3]) / c[3]
    assert abs(np.diff(f, 6)[0]) < 1e-12
    return f


@pytest.mark.parametrize(
    "table",
    [
        *(_sixth_difference_zero(seed) for seed in range(3)),
        np.arange(-3.0, 4.0) ** 3 - 8 * np.arange(-3.0, 4.0),
    ],
)
def test_ecnoise_judges_three_neighbouring_levels_not_the_whole_table(table: np.ndarray) -> None:
    """Levels 1–3 agree within 4× and the first differences change sign: ECnoise reports level
    1, as the published code does, whatever the levels past the window show. Two tables whose
    later levels vanish: white noise whose 6th difference happens to be 0, and t³ − 8t at
    t = −3…3 (levels 5.34, 3.46, 1.34, then 0 from the 4th on: a cubic, within 4×)."""
    want = _ecnoise_reference([float(v) for v in table])
    assert want[1] == 1 and want[0] > 0.1
    got = ecnoise(table)
    assert got[1] == 1 and got[0] == pytest.approx(want[0], rel=1e-12)


def test_an_output_of_flags_adds_nothing_to_the_rounding_floor() -> None:
    """The last layer outputs booleans (θ > 0), summed with weights 1e-3: the loss rounds
    numbers of size |L| only, so the floor is u·|L| = u·3e-3; a flag's "magnitude" 1 is not a
    number the loss's arithmetic works on (counting it would make the floor u, 300× larger)."""
    x = np.array([0.5, -0.25, 0.75, 2.0])
    net = Network([Elementwise(lambda t: t > 0)], WeightedSum(np.full(4, 1e-3)), x=x,
                  trusted=[False])  # fmt: skip
    net.loss_value(x)
    net.backward()
    pert = Perturber(net, x)
    assert float(pert.f0) == pytest.approx(3e-3, rel=1e-12)
    assert rounding_floor(pert, 2.0**-53) == 2.0**-53 * float(pert.f0)

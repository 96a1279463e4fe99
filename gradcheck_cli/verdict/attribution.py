"""Attribution: when a network check fails, re-check each layer on its own cached input with the
upstream gradient it received, and name the layers whose own backward is wrong.

Each layer gets the input kind it had in the network: integer ids stay ids (their gradient is not
checked), floats stay floats. Attribution never replaces the verdict: a layer that cannot be
re-checked alone (its forward raises on its cached input, nothing to check, ...) is named in a note
and the network's verdict and exit code stand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.results import CheckResult


def with_attribution(
    result: CheckResult,
    network: Network,
    check_one: Callable[[Network], CheckResult],
    *,
    discrete: bool = False,
) -> CheckResult:
    """Check each layer on its own cached input with the upstream gradient it received
    (``check_one``: the same check as the network's, without attribution); name the layers whose
    own backward is wrong (a wrong layer also corrupts every dx below it). ``discrete``: the
    network's input is integer ids (so is layer 0's re-check input)."""
    if network.x is not None:
        network.loss_value(network.x)  # caches from the unperturbed pass at the network's dtype
    inputs, douts = list(network.inputs), list(network.douts)
    if len(douts) != len(network.layers):
        return result
    culprits: list[str] = []
    notes: list[str] = []
    for i, layer in enumerate(network.layers):
        if douts[i].size == 0:  # below a backward that returned a wrong-shaped dx: no upstream
            continue
        single = Network(
            [layer], WeightedSum(douts[i]), labels=[network.labels[i]], x=inputs[i],
            trusted=[network.trusted[i]], name=network.describe(i),
            discrete=_ids(inputs[i], first=i == 0, discrete=discrete),
        )  # fmt: skip
        try:
            own = check_one(single)
        except Exception as exc:  # a re-check never replaces the verdict
            what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            notes.append(
                f"attribution: {network.describe(i)} could not be re-checked alone ({what}); "
                "the verdict above stands"
            )
            continue
        # Named only on evidence: a tensor whose own re-check *fails* (same resolution-aware
        # rules as the network's), or a structural problem. Inconclusive, zero or kink re-checks
        # (even under --strict) are not evidence that this layer is wrong.
        wrong = [p for p in own.params if not p.passed and p.verdict == "fail"]
        if wrong or own.problems:
            bad = [p.name.split(".", 1)[-1] if p.name != "input" else "dx" for p in wrong]
            culprits.append(
                f"{network.describe(i)} fails on its own ({', '.join(bad) or '; '.join(own.problems)})"
            )
    # Re-run the network pass so its caches match the unperturbed parameters again.
    network.loss_value(network.x if network.x is not None else inputs[0])
    return replace(result, attribution=tuple(culprits), notes=result.notes + tuple(notes))


def _ids(x: Array, *, first: bool, discrete: bool) -> bool:
    """Whether a layer's cached input is integer ids: the network's input when the check took it
    as ids, or any integer array reaching a later layer (only ids are integer inside a network)."""
    return bool(np.issubdtype(np.asarray(x).dtype, np.integer) and (discrete or not first))

"""Attribution: when a network check fails, re-check each layer on its own cached input with the
upstream gradient it received, and name the layers whose own backward is wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.results import CheckResult


def with_attribution(
    result: CheckResult, network: Network, check_one: Callable[[Network], CheckResult]
) -> CheckResult:
    """Check each layer on its own cached input with the upstream gradient it received
    (``check_one``: the same check as the network's, without attribution); name the layers whose
    own backward is wrong (a wrong layer also corrupts every dx below it)."""
    if network.x is not None:
        network.loss_value(network.x)  # caches from the unperturbed pass at the network's dtype
    inputs, douts = list(network.inputs), list(network.douts)
    if len(douts) != len(network.layers):
        return result
    culprits = []
    for i, layer in enumerate(network.layers):
        if douts[i].size == 0:  # below a backward that returned a wrong-shaped dx: no upstream
            continue
        single = Network(
            [layer], WeightedSum(douts[i]), labels=[network.labels[i]], x=inputs[i],
            trusted=[network.trusted[i]], name=network.describe(i),
        )  # fmt: skip
        own = check_one(single)
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
    return replace(result, attribution=tuple(culprits))

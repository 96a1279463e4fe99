"""Numbers → a verdict: the loss's noise (noise), steps and error estimates (steps, wide), the
analytic side's rounding (floors), one tensor judged (judge), the second look at entries that
disagree (kinks), what a failure looks like (diagnosis, evidence), and which layer is to blame
(attribution, handed its per-layer check by checker.py).

Imports engine, plan's directions, results and errors; imported by checker.
"""

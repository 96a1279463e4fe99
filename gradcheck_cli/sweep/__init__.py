"""Looks at one gradient beyond a single ε: the error against ε (vcurve), the Taylor-remainder
test (taylor) and the terminal plots both draw (plot).

Imports engine, plan, verdict and results; imported by the commands.
"""

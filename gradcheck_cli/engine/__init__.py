"""L at perturbed copies: a config built into a network (build; every array the spec describes is
counted first, and the given ones loaded, in spec_arrays), the network itself (network),
finite differences in batches (numeric, chunks, lowrank, precision), stencils (methods), and what a
layer must honour before the engine relies on it (probes, structure, contracts).

Imports spec, layers, safety and errors; imported by plan, verdict, functions, sweep and checker.
"""

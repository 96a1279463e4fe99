"""How much to check in how much time: the mode and its cost (modes), which entries or probes
of which tensors (plan, selection), directional probes and localising a failed one (directional,
localise), and the limits checked before anything is allocated (limits).

Imports engine, spec and errors; imported by checker, suite and the commands.
"""

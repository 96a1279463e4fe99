"""Functions checked like layers: CS231n pairs, (loss, grads…) functions and SciPy-style
f + grad found in a file (pairs), wrapped as layers and losses (adapters), checked with the usual
checker (check: ``check_function``), and the ``gradcheck fn`` arguments (arguments).

Imports checker, engine, spec and plan; imported by the commands, testing and the public API.
"""

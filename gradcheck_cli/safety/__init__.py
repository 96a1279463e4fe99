"""Keeping user code and outputs in their place: user code cannot end the process or write
into the report (isolation); no output replaces an input of the run, and files are written atomically
(outputs).

Imports only errors and the standard library; every room may import it.
"""

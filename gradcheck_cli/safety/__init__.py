"""Keeping user code and outputs in their place: user code cannot end the process or write
into the report (isolation); every file a run reads is registered by the reader that opens it
(inputs); no output replaces an input of the run, and files are written atomically with the
umask's mode (outputs).

Imports only errors and the standard library (NumPy inside the array readers); every room may
import it.
"""

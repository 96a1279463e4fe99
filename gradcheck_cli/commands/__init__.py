"""The commands of `gradcheck` (app.py registers them on the Typer app; cli.py is the console
script, which answers `--version` itself).

app.py       the Typer app, the root `--version`, the app run under the supervisor
flags.py     every option declared once (and the help's look: no type tags after flags)
delivery.py  consoles, stdout width, error handling and exit codes, report delivery, replay
check.py     run, layer, fn: a check and its report
sweep.py     sweep: error against ε
tools.py     list, validate, init, schema

Start-up matters (`gradcheck --version` must not wait for NumPy): these modules import only
Typer and Rich's console at the top; each command imports the core it needs when it runs.
"""

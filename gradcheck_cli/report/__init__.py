"""Results → what people and machines read: Rich renderables for one check (tables) and several
(console), JSON (jsondoc, json_suite), JUnit XML (junit), GitHub workflow commands (github), plain
text for assertion messages (text), and what goes to stdout and which files (emit).

Nothing here prints or computes. Imports results, options and safety; imported by the commands,
testing and the pytest plugin.
"""

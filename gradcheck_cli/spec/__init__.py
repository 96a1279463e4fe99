"""What the user wrote, as data: a config file read safely (reading), validated into a frozen
spec (config), the built-in network's validated snapshot for the default `gradcheck run` (builtin,
read into the plain records of records), the JSON Schemas gradcheck publishes (schemas), and what
a config may not do (trust).

Imports only errors, options/defaults, safety and the standard library / pydantic; every other
room may import it.
"""

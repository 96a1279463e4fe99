"""What the user wrote, as data: a config file read safely (reading), validated into a frozen
spec (config), the JSON Schemas gradcheck publishes (schemas), and what a config may not do (trust).

Imports only errors, safety and the standard library / pydantic; every other room may import it.
"""

"""Which tensors to check: ``include``/``exclude`` glob patterns on parameter names.

Names are the report's (``input``, ``0.linear.W``, …); patterns are shell globs matched
case-sensitively against the whole name (``*.W``, ``0.*``, ``input``). A name is checked when it
matches some include pattern (or there are none) and no exclude pattern. An include pattern that
matches nothing is an error (almost always a typo); an exclude pattern that matches nothing is not
(one pattern is often shared by several configs).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from gradcheck_cli.errors import ConfigError


def select(
    names: Sequence[str],
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> list[str]:
    """The names to check, in their original order."""
    include = list(include or [])
    exclude = list(exclude or [])
    if not names:
        raise ConfigError(
            "there is nothing to check: no layer has parameters and the input is not checked",
            field="check.inputs",
            hint="check the input (inputs: true / drop --no-inputs) or add a layer with parameters",
        )
    for pattern in include:
        if not any(fnmatchcase(n, pattern) for n in names):
            raise ConfigError(
                f"include pattern '{pattern}' matches no parameter",
                field="check.include",
                hint=f"parameters: {', '.join(names)}",
            )
    chosen = [
        n
        for n in names
        if (not include or any(fnmatchcase(n, p) for p in include))
        and not any(fnmatchcase(n, p) for p in exclude)
    ]
    if not chosen:
        raise ConfigError(
            "include/exclude leave no parameter to check",
            field="check.exclude" if exclude else "check.include",
            hint=f"parameters: {', '.join(names)}",
        )
    return chosen

"""How the text of a ``FINCAT_*`` variable becomes a flag or a number.

:class:`gateway.settings.Settings` and :class:`gateway.graphql.config.GraphQLSettings`
both read their variables with these, so that every variable takes the same words.
"""

from __future__ import annotations

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def flag(name: str, text: str) -> bool:
    """``text`` as a boolean, in any case; raises ValueError naming ``name`` for any
    other word, so that a typo never turns a switch off unseen."""
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError(f"{name} must be 1, true, yes or on, or 0, false, no or off, not {text!r}")


def number(name: str, text: str, kind: type[int] | type[float]) -> int | float:
    """``text`` as an int or a float; raises ValueError naming ``name``.

    Only the syntax is checked here: the range (which refuses NaN) is the setting's own.
    """
    try:
        return kind(text.strip())
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, not {text!r}") from None
